"""The dialog definition as loaded from YAML: frozen, and each part knows its file and line."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from bot.core.model import Button, Image, Link
from dialogs.source import Where

SlotType = Literal["text", "bool"]
# A `{slot}` in a response's text.
PLACEHOLDER = re.compile(r"\{(\w+)\}")
Normalize = Literal["upper", "lower", "none"]


@dataclass(frozen=True, slots=True)
class Intent:
    """Something a customer wants, learnt from example phrases in one language.
    `title` names it on a button, when the bot asks which of two was meant."""

    name: str
    examples: tuple[str, ...]
    where: Where
    title: str | None = None
    locale: str = "en"


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
    # Said when the customer cannot answer ("I don't know my order number").
    help: str | None = None


@dataclass(frozen=True, slots=True)
class Variant:
    """What a response shows on one channel."""

    text: str
    buttons: tuple[Button, ...] = ()
    images: tuple[Image, ...] = ()
    links: tuple[Link, ...] = ()


@dataclass(frozen=True, slots=True)
class Response:
    """A named bot message with optional per-channel variants, in the default
    language; `translations` holds the same response in other languages."""

    name: str
    default: Variant
    channels: dict[str, Variant]
    where: Where
    translations: dict[str, Response] = field(default_factory=dict)

    def for_channel(self, channel: str, locale: str | None = None) -> Variant:
        chosen = self.translations.get(locale, self) if locale is not None else self
        return chosen.channels.get(channel, chosen.default)


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
    # Its triggers start it only on a sure, specific match; its yes/no
    # questions take only an explicit yes for yes.
    destructive: bool = False


@dataclass(frozen=True, slots=True)
class Fallback:
    """What happens when no intent is recognised."""

    response: str | None
    handoff_after: int
    handoff_response: str | None
    action_failed: str | None
    where: Where


DEFAULT_CHITCHAT: dict[str, str] = {
    "greet": "utter_pattern_greet",
    "thanks": "utter_pattern_thanks",
    "bot_challenge": "utter_pattern_bot_challenge",
    "how_are_you": "utter_pattern_how_are_you",
    # "ok", "no thanks" to "Anything else?": no flow to answer, no misunderstanding.
    "affirm": "utter_pattern_affirm",
    "deny": "utter_pattern_deny",
}


@dataclass(frozen=True, slots=True)
class Patterns:
    """The conversation-repair patterns (see dialogs/README.md). An intent set
    to None turns its pattern off; the wording is the `utter_pattern_*`
    responses, which a bot may define itself."""

    cancel: str | None = "cancel"
    repeat: str | None = "repeat"
    cannot_answer: str | None = "cannot_answer"
    # Small talk answered in one line, which leaves an open question open.
    chitchat: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_CHITCHAT))
    # Two flows' intents closer than this: ask which one (0: never ask).
    clarify_margin: float = 0.1
    correction: bool = True
    interruption: bool = True
    # A destructive flow starts only at this confidence or above.
    destructive_confidence: float = 0.75
    where: Where | None = None


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
    # The first is the default: the language of files without `locale:`.
    languages: tuple[str, ...] = ("en",)
    patterns: Patterns = field(default_factory=Patterns)
    # The intents' examples in the other languages: locale -> name -> intent.
    translated_intents: dict[str, dict[str, Intent]] = field(default_factory=dict)

    @property
    def default_language(self) -> str:
        return self.languages[0]

    def intents_in(self, locale: str) -> dict[str, Intent]:
        if locale == self.default_language:
            return self.intents
        return self.translated_intents.get(locale, {})

    def title_of(self, intent: str, locale: str | None) -> str | None:
        """The intent's button title in `locale`, else in the default language."""
        translated = self.translated_intents.get(locale or "", {}).get(intent)
        if translated is not None and translated.title:
            return translated.title
        default = self.intents.get(intent)
        return default.title if default is not None else None
