"""What the dialog runtime keeps between turns, in `ConversationState.dialog`:
a small JSON value saved with each turn, so a conversation survives restarts
and follows the customer across channels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.core.model import Button, Outbound
from dialogs import model as m

STATE_VERSION = 1
# Flows a side question may stack up: a question inside a question inside one.
MAX_INTERRUPTIONS = 3
# The bot messages "say that again" repeats: the last turn's, at most these.
MAX_REPEATED = 3


@dataclass(slots=True)
class Frame:
    """A flow put aside by a side question, waiting at its open question."""

    flow: str
    step: int
    slots: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"flow": self.flow, "step": self.step, "slots": self.slots}

    @classmethod
    def from_json(cls, data: Any) -> Frame | None:
        if not isinstance(data, dict) or not isinstance(data.get("flow"), str):
            return None
        return cls(data["flow"], int(data.get("step", 0)), dict(data.get("slots") or {}))


@dataclass(slots=True)
class DialogState:
    """The active flow and its slots; the flows it interrupted (`stack`); the
    last flow finished, which a correction may redo (`done`); and the last
    bot messages, which "say that again" repeats (`last`)."""

    flow: str | None = None
    step: int = 0
    waiting: bool = False
    slots: dict[str, Any] = field(default_factory=dict)
    fallbacks: int = 0
    stack: list[Frame] = field(default_factory=list)
    done: Frame | None = None
    last: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(cls, data: dict[str, Any], dialogs: m.Dialogs) -> DialogState:
        if data.get("v") != STATE_VERSION:
            return cls()
        state = cls(
            flow=data.get("flow"),
            step=int(data.get("step", 0)),
            waiting=bool(data.get("waiting", False)),
            slots=dict(data.get("slots") or {}),
            fallbacks=int(data.get("fallbacks", 0)),
            stack=[f for f in map(Frame.from_json, data.get("stack") or []) if f is not None],
            done=Frame.from_json(data.get("done")),
            last=[r for r in data.get("last") or [] if isinstance(r, dict)],
        )
        known = dialogs.flows
        if state.flow is not None and state.flow not in known:
            # The flows changed since this was saved: start afresh, keep nothing stale.
            return cls(fallbacks=state.fallbacks, last=state.last)
        state.stack = [f for f in state.stack if f.flow in known]
        if state.done is not None and state.done.flow not in known:
            state.done = None
        return state

    def dump(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "v": STATE_VERSION,
            "flow": self.flow,
            "step": self.step,
            "waiting": self.waiting,
            "slots": self.slots,
            "fallbacks": self.fallbacks,
        }
        if self.stack:
            data["stack"] = [f.to_json() for f in self.stack]
        if self.done is not None:
            data["done"] = self.done.to_json()
        if self.last:
            data["last"] = self.last
        return data

    def start(self, flow: str) -> None:
        self.flow, self.step, self.waiting, self.slots = flow, 0, False, {}

    def end(self) -> None:
        self.flow, self.step, self.waiting, self.slots = None, 0, False, {}

    def forget_everything(self) -> None:
        self.end()
        self.stack, self.done, self.last = [], None, []

    def put_aside(self) -> bool:
        """The waiting flow, kept to come back to; False if too many are."""
        if self.flow is None or len(self.stack) >= MAX_INTERRUPTIONS:
            return False
        self.stack.append(Frame(self.flow, self.step, dict(self.slots)))
        return True

    def take_up(self) -> bool:
        """The flow last put aside, active again at its question; False if none."""
        if not self.stack:
            return False
        frame = self.stack.pop()
        self.flow, self.step, self.slots, self.waiting = frame.flow, frame.step, frame.slots, False
        return True

    def remember(self, replies: list[Outbound]) -> None:
        self.last = [
            {"text": r.text, "buttons": [[b.title, b.payload] for b in r.buttons]}
            for r in replies[-MAX_REPEATED:]
        ]

    def repeated(self) -> list[Outbound]:
        return [
            Outbound(text=str(r.get("text", "")),
                     buttons=tuple(Button(str(t), str(p)) for t, p in r.get("buttons") or []))
            for r in self.last
        ]
