"""The dialog policy: understands a message, moves the active flow, runs actions.

All flow state lives in `ConversationState.dialog` (a small JSON value saved
with the turn), so a conversation survives restarts and follows the customer
across channels.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from bot.core.errors import ConfigError, DialogError
from bot.core.model import Outbound
from bot.core.policy import HANDOFF_ASKED, TurnContext
from dialogs import model as m
from dialogs.actions import (
    ActionFailed,
    ActionRunner,
    Followup,
    InProcessActions,
    Pause,
    RemoteActions,
    ResetSlots,
    SetSlot,
    domain_of,
    webhook_payload,
)
from dialogs.check import check_dialogs
from dialogs.nlu import BuiltinNlu, EntityExtractor, Nlu, NluResult, RasaNlu
from dialogs.responses import Responses

log = logging.getLogger(__name__)

MAX_STEPS_PER_TURN = 64
STATE_VERSION = 1
DEFAULT_FALLBACK = "Sorry, I didn't get that."
DEFAULT_ACTION_FAILED = "Sorry, something went wrong on our side. Please try again in a moment."
AFFIRM, DENY = "affirm", "deny"


@dataclass(slots=True)
class DialogState:
    """What the runtime keeps between turns, as stored in `ConversationState.dialog`."""

    flow: str | None = None
    step: int = 0
    waiting: bool = False
    slots: dict[str, Any] = field(default_factory=dict)
    fallbacks: int = 0

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
        )
        if state.flow is not None and state.flow not in dialogs.flows:
            # The flows changed since this was saved: start afresh, keep nothing stale.
            return cls(fallbacks=state.fallbacks)
        return state

    def dump(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            "flow": self.flow,
            "step": self.step,
            "waiting": self.waiting,
            "slots": self.slots,
            "fallbacks": self.fallbacks,
        }

    def start(self, flow: str) -> None:
        self.flow, self.step, self.waiting, self.slots = flow, 0, False, {}

    def end(self) -> None:
        self.flow, self.step, self.waiting, self.slots = None, 0, False, {}


@dataclass(slots=True)
class _Turn:
    """One turn in progress: the customer's message, its understanding, the replies."""

    context: TurnContext
    state: DialogState
    nlu: NluResult
    replies: list[Outbound] = field(default_factory=list)
    steps_run: int = 0

    @property
    def channel(self) -> str:
        return self.context.inbound.channel


class DialogPolicy:
    """Runs the flows of `dialogs` (see dialogs/README.md)."""

    def __init__(
        self, *, dialogs: m.Dialogs, nlu: Nlu, actions: ActionRunner | None, threshold: float
    ) -> None:
        self.dialogs = dialogs
        self.nlu = nlu
        self.actions = actions
        self.threshold = threshold
        self.responses = Responses(dialogs.responses)
        self.domain = domain_of(dialogs)
        self.flow_of_intent = {i: f for f in dialogs.flows.values() for i in f.triggers}

    async def decide(self, context: TurnContext) -> list[Outbound]:
        state = DialogState.load(context.state.dialog, self.dialogs)
        run = _Turn(context, state, await self._understand(context))
        if not (state.waiting and await self._answer(run)):
            await self._route(run)
        context.state.dialog = state.dump()
        return run.replies

    async def _route(self, run: _Turn) -> None:
        """A message that answers no pending question: a new flow, or help."""
        intent = run.nlu.intent
        if intent is not None and intent in self.flow_of_intent:
            run.state.fallbacks = 0
            await self._start(run, self.flow_of_intent[intent])
        elif run.state.waiting:
            self._reprompt(run)
        else:
            self._fallback(run)

    async def _understand(self, turn: TurnContext) -> NluResult:
        inbound = turn.inbound
        if inbound.payload is not None:
            # A button names its intent ("human", or Rasa's "/human"): no guessing.
            name = inbound.payload.removeprefix("/")
            if name in self.dialogs.intents:
                return NluResult(name, 1.0)
        result = await self.nlu.parse(inbound.text)
        if result.confidence < self.threshold:
            return NluResult(None, result.confidence, result.entities)
        return result

    # Slots.

    async def _answer(self, run: _Turn) -> bool:
        """Fills the awaited slot from the message; False if the message does not answer."""
        step = self._current(run.state)
        if not isinstance(step, m.Ask):
            run.state.waiting = False
            return False
        slot = self.dialogs.slots[step.slot]
        value = self._value_for(slot, run.nlu, run.context.inbound.text)
        if value is None:
            return False
        run.state.slots[slot.name] = value
        run.state.waiting, run.state.fallbacks = False, 0
        run.state.step += 1
        await self._run_steps(run)
        return True

    def _value_for(self, slot: m.Slot, nlu: NluResult, text: str) -> Any:
        if slot.type == "bool":
            return {AFFIRM: True, DENY: False}.get(nlu.intent or "")
        raw = nlu.entity(slot.entity) if slot.entity is not None else text.strip()
        if raw is None:
            return None
        value = raw.upper() if slot.normalize == "upper" else raw
        value = value.lower() if slot.normalize == "lower" else value
        if slot.validate is not None and not slot.validate.fullmatch(value):
            return None
        return value

    def _reprompt(self, run: _Turn) -> None:
        step = self._current(run.state)
        assert isinstance(step, m.Ask)
        slot = self.dialogs.slots[step.slot]
        name = slot.invalid or step.response or slot.prompt
        if name is not None:
            self._say(run, name)

    # Flows.

    async def _start(self, run: _Turn, flow: m.Flow) -> None:
        run.state.start(flow.name)
        # "Where is order A1002?" answers the question before it is asked.
        for slot in self.dialogs.slots.values():
            if slot.entity is not None and slot.type == "text":
                value = self._value_for(slot, run.nlu, run.context.inbound.text)
                if value is not None:
                    run.state.slots[slot.name] = value
        await self._run_steps(run)

    def _current(self, state: DialogState) -> m.Step | None:
        if state.flow is None:
            return None
        steps = self.dialogs.flows[state.flow].steps
        return steps[state.step] if state.step < len(steps) else None

    async def _run_steps(self, run: _Turn) -> None:
        state = run.state
        while state.flow is not None:
            run.steps_run += 1
            if run.steps_run > MAX_STEPS_PER_TURN:
                state.end()
                raise DialogError(f"flow {state.flow!r} looped for {MAX_STEPS_PER_TURN} steps")
            flow = self.dialogs.flows[state.flow]
            if state.step >= len(flow.steps):
                state.end()
                return
            await self._step(run, flow, flow.steps[state.step])
            if state.waiting:
                return

    async def _step(self, run: _Turn, flow: m.Flow, step: m.Step) -> None:
        state = run.state
        match step:
            case m.Say(response=response):
                self._say(run, response)
                state.step += 1
            case m.Ask(slot=slot_name, response=response):
                if state.slots.get(slot_name) is not None:
                    state.step += 1
                    return
                name = response or self.dialogs.slots[slot_name].prompt
                if name is not None:
                    self._say(run, name)
                state.waiting = True
            case m.RunAction(action=action):
                state.step += 1
                await self._action(run, action)
            case m.Branch(cases=cases, otherwise=otherwise):
                target = next((c.goto for c in cases if _holds(c, state.slots)), otherwise)
                state.step = flow.labels[target] if target is not None else state.step + 1
            case m.Goto(target=target):
                state.step = flow.labels[target]
            case m.Handoff(reason=reason, response=response):
                self._handoff(run, reason, response)
            case m.Erase(response=response):
                if response is not None:
                    self._say(run, response)
                run.context.erase_customer = True
                state.end()

    def _say(self, run: _Turn, response: str) -> None:
        run.replies.append(self.responses.render(response, run.channel, run.state.slots))

    def _handoff(self, run: _Turn, reason: str, response: str | None) -> None:
        if response is not None:
            self._say(run, response)
        run.context.handoff_reason = reason
        run.state.end()

    def _fallback(self, run: _Turn) -> None:
        fallback, state = self.dialogs.fallback, run.state
        state.fallbacks += 1
        if fallback.handoff_after and state.fallbacks >= fallback.handoff_after:
            state.fallbacks = 0
            if fallback.handoff_response is None:
                run.replies.append(Outbound(text=HANDOFF_ASKED))
            reason = "the bot did not understand twice in a row"
            self._handoff(run, reason, fallback.handoff_response)
        elif fallback.response is not None:
            self._say(run, fallback.response)
        else:
            run.replies.append(Outbound(text=DEFAULT_FALLBACK))

    # Actions.

    async def _action(self, run: _Turn, action: str, depth: int = 0) -> None:
        if self.actions is None:
            raise DialogError(f"action {action!r} called but no action runner is configured")
        payload = webhook_payload(
            action=action,
            sender_id=run.context.customer_id,
            slots=dict(run.state.slots),
            latest_message=_latest_message(run),
            domain=self.domain,
        )
        try:
            result = await self.actions.run(payload)
        except ActionFailed as exc:
            # The customer gets a polite answer and the flow ends, so nothing waits forever.
            log.error("custom action failed for customer %s: %s", run.context.customer_id, exc)
            run.state.end()
            failed = self.dialogs.fallback.action_failed
            if failed is not None:
                self._say(run, failed)
            else:
                run.replies.append(Outbound(text=DEFAULT_ACTION_FAILED))
            return
        for message in result.messages:
            reply = self.responses.of_action(message, run.channel, run.state.slots)
            if reply is not None:
                run.replies.append(reply)
        await self._apply(run, action, result.events, depth)

    async def _apply(self, run: _Turn, action: str, events: tuple[Any, ...], depth: int) -> None:
        for event in events:
            match event:
                case SetSlot(name=name, value=value):
                    run.state.slots[name] = value
                case ResetSlots():
                    run.state.slots.clear()
                case Pause():
                    self._handoff(run, f"action {action} asked for a person", None)
                    return
                case Followup(name=name) if name in self.dialogs.flows:
                    await self._start(run, self.dialogs.flows[name])
                    return
                case Followup(name=name) if name in self.dialogs.actions.names and depth < 4:
                    await self._action(run, name, depth + 1)


def _holds(case: m.Case, slots: dict[str, Any]) -> bool:
    value = slots.get(case.slot)
    if case.op == "equals":
        return bool(value == case.value)
    return (value is not None) == (case.op == "set")


def _latest_message(run: _Turn) -> dict[str, Any]:
    nlu = run.nlu
    return {
        "text": run.context.inbound.text,
        "intent": {"name": nlu.intent, "confidence": nlu.confidence},
        "entities": [{"entity": e.entity, "value": e.value} for e in nlu.entities],
    }


def build_dialog_policy(settings: Any) -> DialogPolicy:
    """The policy from Segue's settings: dialogs loaded and checked, NLU trained,
    actions in-process or on the configured action server."""
    remote = settings.action_server_url
    dialogs, problems = check_dialogs(settings.dialogs_dir, in_process_actions=remote is None)
    if dialogs is None:
        raise ConfigError("invalid dialogs:\n" + "\n".join(str(p) for p in problems))
    nlu: Nlu
    if settings.nlu_url:
        extractor = EntityExtractor(dialogs.entities.values())
        nlu = RasaNlu(
            settings.nlu_url, extractor=extractor, timeout_seconds=settings.action_timeout_seconds
        )
    else:
        nlu = BuiltinNlu(dialogs.intents.values(), dialogs.entities.values())
    actions: ActionRunner | None = None
    if remote:
        actions = RemoteActions(remote, timeout_seconds=settings.action_timeout_seconds)
    elif dialogs.actions.module is not None:
        actions = InProcessActions.from_module(dialogs.actions.module, settings)
    return DialogPolicy(
        dialogs=dialogs, nlu=nlu, actions=actions, threshold=settings.nlu_threshold
    )
