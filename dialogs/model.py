"""The dialog definition as loaded from YAML: frozen, and each part knows its file and line."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from bot.core.model import Button, Image, Link
from dialogs.source import Where

SlotType = Literal["text", "bool"]
Normalize = Literal["upper", "lower", "none"]


@dataclass(frozen=True, slots=True)
class Intent:
    """Something a customer wants, learnt from example phrases."""

    name: str
    examples: tuple[str, ...]
    where: Where


@dataclass(frozen=True, slots=True)
class Entity:
    """A value found in a message, by regular expression or by a list of words."""

    name: str
    regex: re.Pattern[str] | None
    lookup: tuple[str, ...]
    where: Where


@dataclass(frozen=True, slots=True)
class Slot:
    """A value a flow collects. `validate` must match the whole (normalised) value;
    `prompt` asks for it and `invalid` asks again after a bad answer."""

    name: str
    type: SlotType
    entity: str | None
    validate: re.Pattern[str] | None
    normalize: Normalize
    prompt: str | None
    invalid: str | None
    where: Where


@dataclass(frozen=True, slots=True)
class Variant:
    """What a response shows on one channel."""

    text: str
    buttons: tuple[Button, ...] = ()
    images: tuple[Image, ...] = ()
    links: tuple[Link, ...] = ()


@dataclass(frozen=True, slots=True)
class Response:
    """A named bot message with optional per-channel variants."""

    name: str
    default: Variant
    channels: dict[str, Variant]
    where: Where

    def for_channel(self, channel: str) -> Variant:
        return self.channels.get(channel, self.default)


@dataclass(frozen=True, slots=True)
class Say:
    response: str
    where: Where
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Ask:
    """Waits for `slot` unless it is already filled."""

    slot: str
    response: str | None
    where: Where
    id: str | None = None


@dataclass(frozen=True, slots=True)
class RunAction:
    action: str
    where: Where
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Case:
    """`slot` compared with `value` (op "equals"), or tested for a value ("set"/"unset")."""

    slot: str
    op: Literal["equals", "set", "unset"]
    value: Any
    goto: str
    where: Where


@dataclass(frozen=True, slots=True)
class Branch:
    """The first matching case jumps; with none, `otherwise` or the next step."""

    cases: tuple[Case, ...]
    otherwise: str | None
    where: Where
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Goto:
    target: str
    where: Where
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Handoff:
    """Ends the flow and hands the conversation to a person."""

    reason: str
    response: str | None
    where: Where
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Erase:
    """Ends the flow and erases the customer's data once the reply is saved."""

    response: str | None
    where: Where
    id: str | None = None


Step = Say | Ask | RunAction | Branch | Goto | Handoff | Erase
TERMINAL = (Handoff, Erase, Goto)


@dataclass(frozen=True, slots=True)
class Flow:
    """Steps run in order from the first; started by any of its trigger intents."""

    name: str
    triggers: tuple[str, ...]
    steps: tuple[Step, ...]
    where: Where
    labels: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Fallback:
    """What happens when no intent is recognised."""

    response: str | None
    handoff_after: int
    handoff_response: str | None
    action_failed: str | None
    where: Where


@dataclass(frozen=True, slots=True)
class ActionsConfig:
    """Custom actions the flows may run, and the module that implements them."""

    module: str | None
    names: dict[str, Where]


@dataclass(frozen=True, slots=True)
class Dialogs:
    """Everything the dialog files define, merged across files."""

    intents: dict[str, Intent]
    entities: dict[str, Entity]
    slots: dict[str, Slot]
    responses: dict[str, Response]
    actions: ActionsConfig
    flows: dict[str, Flow]
    fallback: Fallback
