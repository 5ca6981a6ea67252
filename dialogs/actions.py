"""Running custom actions: in-process through rasa-sdk's `ActionExecutor`, or on a
remote Rasa action server. Both get the same webhook payload (`next_action`,
`sender_id`, `tracker`, `domain`, `version`) and answer in the same shape, so a
stock action server works unchanged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import rasa_sdk
from rasa_sdk.executor import ActionExecutor

from bot.core.errors import DialogError
from bot.core.model import Button
from dialogs.check import action_classes
from dialogs.model import Dialogs

log = logging.getLogger(__name__)


class ActionFailed(DialogError):
    """An action could not run or gave an unusable answer."""


@dataclass(frozen=True, slots=True)
class SetSlot:
    name: str
    value: Any


@dataclass(frozen=True, slots=True)
class Followup:
    """Run this action (or start this flow) next."""

    name: str


@dataclass(frozen=True, slots=True)
class Pause:
    """Rasa's way for an action to hand the conversation to a person."""


@dataclass(frozen=True, slots=True)
class ResetSlots:
    pass


Event = SetSlot | Followup | Pause | ResetSlots


@dataclass(frozen=True, slots=True)
class ActionMessage:
    """A reply from an action: its own text and buttons, or a named response."""

    text: str | None
    buttons: tuple[Button, ...] = ()
    image: str | None = None
    response: str | None = None
    # Rasa's `utter_message(response=..., **kwargs)`: values for the
    # response's {placeholders}.
    variables: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ActionResult:
    events: tuple[Event, ...]
    messages: tuple[ActionMessage, ...]

    @classmethod
    def from_json(cls, body: Any) -> ActionResult:
        """Reads the action server's answer; unknown events are ignored, as Rasa does
        for events that do not concern it."""
        if not isinstance(body, dict):
            raise ActionFailed(f"the action answer is not a JSON object: {type(body).__name__}")
        events = tuple(e for e in map(_event, body.get("events") or []) if e is not None)
        messages = tuple(_message(r) for r in body.get("responses") or [] if isinstance(r, dict))
        return cls(events, messages)


def _event(raw: Any) -> Event | None:
    if not isinstance(raw, dict):
        return None
    match raw.get("event"):
        case "slot" if isinstance(raw.get("name"), str):
            return SetSlot(raw["name"], raw.get("value"))
        case "followup" if isinstance(raw.get("name"), str):
            return Followup(raw["name"])
        case "pause":
            return Pause()
        case "reset_slots" | "restart":
            return ResetSlots()
    log.debug("ignoring action event %r", raw.get("event"))
    return None


def _message(raw: dict[str, Any]) -> ActionMessage:
    buttons = tuple(
        Button(str(b.get("title", "")), str(b.get("payload", "")))
        for b in raw.get("buttons") or []
        if isinstance(b, dict)
    )
    text = raw.get("text")
    variables = tuple(
        (str(k), str(v)) for k, v in raw.items()
        if k not in _MESSAGE_KEYS and isinstance(v, str | int | float) and not isinstance(v, bool)
    )
    return ActionMessage(
        text=str(text) if text else None,
        buttons=buttons,
        image=raw.get("image") or None,
        response=raw.get("response") or raw.get("template") or None,
        variables=variables,
    )


# The keys of a message that are not placeholder values.
_MESSAGE_KEYS = frozenset(
    {"text", "buttons", "elements", "custom", "template", "response", "image", "attachment",
     "recipient_id"}
)


def domain_of(dialogs: Dialogs) -> dict[str, Any]:
    """The dialogs described as a Rasa domain, sent with every action call."""
    return {
        "version": "3.1",
        "intents": sorted(dialogs.intents),
        "entities": sorted(dialogs.entities),
        "slots": {
            name: {"type": slot.type if slot.type == "text" else "bool", "mappings": []}
            for name, slot in dialogs.slots.items()
        },
        "responses": {
            name: [{"text": r.default.text}] for name, r in sorted(dialogs.responses.items())
        },
        "actions": sorted(dialogs.actions.names),
        "session_config": {"session_expiration_time": 0, "carry_over_slots_to_new_session": True},
    }


def webhook_payload(
    *,
    action: str,
    sender_id: str,
    slots: dict[str, Any],
    latest_message: dict[str, Any],
    domain: dict[str, Any],
) -> dict[str, Any]:
    """The standard action server request body."""
    return {
        "next_action": action,
        "sender_id": sender_id,
        "tracker": {
            "sender_id": sender_id,
            "slots": slots,
            "latest_message": latest_message,
            "events": [],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": "action_listen",
        },
        "domain": domain,
        "version": rasa_sdk.__version__,
    }


class ActionRunner(Protocol):
    """Runs one action call (a webhook payload); raises `ActionFailed`."""

    async def run(self, payload: dict[str, Any]) -> ActionResult: ...


class InProcessActions:
    """Actions of one module, run by rasa-sdk's own executor in this process.

    An action class may offer `from_settings(settings)` to be built from
    Segue's settings; otherwise it is built without arguments.
    """

    def __init__(self, executor: ActionExecutor) -> None:
        self.executor = executor

    @classmethod
    def from_module(cls, module: str, settings: Any = None) -> InProcessActions:
        executor = ActionExecutor()
        for action_class in action_classes(module).values():
            factory = getattr(action_class, "from_settings", None)
            executor.register_action(factory(settings) if factory and settings else action_class())
        return cls(executor)

    async def run(self, payload: dict[str, Any]) -> ActionResult:
        try:
            result = await self.executor.run(payload)
        except Exception as exc:  # the action is user code: any failure is its failure
            name = payload["next_action"]
            raise ActionFailed(f"action {name!r} failed: {type(exc).__name__}: {exc}") from exc
        if result is None:
            raise ActionFailed("the action call named no action")
        return ActionResult.from_json({"events": result.events, "responses": result.responses})


class RemoteActions:
    """A Rasa action server, called at its webhook URL."""

    def __init__(self, url: str, *, timeout_seconds: float) -> None:
        self.url = url
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)

    async def run(self, payload: dict[str, Any]) -> ActionResult:
        action = payload["next_action"]
        # A session per call: the policy has no shutdown hook to close a shared one.
        try:
            async with aiohttp.ClientSession(timeout=self.timeout) as http:
                async with http.post(self.url, json=payload) as response:
                    if response.status != 200:
                        detail = (await response.text())[:200]
                        raise ActionFailed(
                            f"action server answered {response.status} to {action!r}: {detail}"
                        )
                    body = await response.json(content_type=None)
        except TimeoutError as exc:
            raise ActionFailed(f"action server timed out running {action!r}") from exc
        except aiohttp.ClientError as exc:
            raise ActionFailed(f"action server unreachable running {action!r}: {exc}") from exc
        except ValueError as exc:
            raise ActionFailed(f"action server sent invalid JSON for {action!r}") from exc
        return ActionResult.from_json(body)
