"""Running flows: their steps, slots and actions, for one turn at a time.

`FlowRunner` moves the active flow of a `DialogState` until it waits for an
answer or ends; a flow a side question put aside is taken up again when that
one ends. What a message means for the flow is decided by `DialogPolicy`
(`dialogs.runtime`).
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass, field, replace
from typing import Any

from bot.core import catalog
from bot.core.errors import DialogError
from bot.core.model import Outbound
from bot.core.policy import TurnContext
from dialogs import model as m
from dialogs.actions import (
    ActionFailed,
    ActionRunner,
    Followup,
    Pause,
    ResetSlots,
    SetSlot,
    domain_of,
    webhook_payload,
)
from dialogs.nlu import NluResult
from dialogs.responses import Responses
from dialogs.state import DialogState, Frame
from dialogs.understanding import AFFIRM, DENY

log = logging.getLogger(__name__)

MAX_STEPS_PER_TURN = 64
DEFAULT_FALLBACK = "Sorry, I didn't get that."
DEFAULT_ACTION_FAILED = "Sorry, something went wrong on our side. Please try again in a moment."
# Said before the open question when it is asked again (dialogs/patterns/*/responses.yml).
RESUME = "utter_pattern_resume"


@dataclass(slots=True)
class Turn:
    """One turn in progress: the customer's message, its understanding, the replies."""

    context: TurnContext
    state: DialogState
    nlu: NluResult
    locale: str
    replies: list[Outbound] = field(default_factory=list)
    steps_run: int = 0
    repeated: bool = False

    @property
    def channel(self) -> str:
        return self.context.inbound.channel

    @property
    def text(self) -> str:
        return self.context.inbound.text



class FlowRunner:
    """The steps of the flows of `dialogs`, run for one turn (`Turn`)."""

    def __init__(self, *, dialogs: m.Dialogs, actions: ActionRunner | None) -> None:
        self.dialogs = dialogs
        self.actions = actions
        self.responses = Responses(dialogs.responses)
        self.domain = domain_of(dialogs)
        self.flow_of_intent = {i: f for f in dialogs.flows.values() for i in f.triggers}

    # Slots.

    async def _fill(self, run: Turn, slot: m.Slot, value: Any) -> None:
        run.state.slots[slot.name] = value
        run.state.waiting, run.state.fallbacks = False, 0
        run.state.step += 1
        await self._run_steps(run)

    def _value_for(self, slot: m.Slot, nlu: NluResult, text: str) -> Any:
        if slot.type == "bool":
            return {AFFIRM: True, DENY: False}.get(nlu.intent or "")
        raw = nlu.entity(slot.entity) if slot.entity is not None else text.strip()
        if raw is None:
            return None
        # "Ａ１００１" typed on a phone's full-width keyboard is A1001.
        raw = unicodedata.normalize("NFKC", raw)
        value = raw.upper() if slot.normalize == "upper" else raw
        value = value.lower() if slot.normalize == "lower" else value
        if slot.validate is not None and not slot.validate.fullmatch(value):
            return None
        return value

    def _reprompt(self, run: Turn) -> None:
        step = self._current(run.state)
        assert isinstance(step, m.Ask)
        slot = self.dialogs.slots[step.slot]
        name = slot.invalid or step.response or slot.prompt
        if name is not None:
            self._say(run, name)

    def open_question(self, run: Turn) -> Outbound | None:
        """The question the flow waits for an answer to, rendered for this turn."""
        step = self._current(run.state)
        if not run.state.waiting or not isinstance(step, m.Ask):
            return None
        name = step.response or self.dialogs.slots[step.slot].prompt
        return self._render(run, name) if name is not None else None

    def _ask_again(self, run: Turn) -> None:
        """The open question once more, after a side question: "Where we left off: …"."""
        step = self._current(run.state)
        if not isinstance(step, m.Ask):
            return
        name = step.response or self.dialogs.slots[step.slot].prompt
        if name is None:
            return
        question = self._render(run, name)
        resumed = self._render(run, RESUME, question=question.text)
        run.replies.append(replace(question, text=resumed.text))

    # Flows.

    async def _start(self, run: Turn, flow: m.Flow) -> None:
        run.state.start(flow.name)
        # "Where is order A1002?" answers the question before it is asked.
        for slot in self.dialogs.slots.values():
            if slot.entity is not None and slot.type == "text":
                value = self._value_for(slot, run.nlu, run.text)
                if value is not None:
                    run.state.slots[slot.name] = value
        await self._run_steps(run)

    def _current(self, state: DialogState) -> m.Step | None:
        if state.flow is None:
            return None
        steps = self.dialogs.flows[state.flow].steps
        return steps[state.step] if state.step < len(steps) else None

    async def _run_steps(self, run: Turn) -> None:
        state = run.state
        while state.flow is not None:
            run.steps_run += 1
            if run.steps_run > MAX_STEPS_PER_TURN:
                looped = state.flow
                state.forget_everything()
                raise DialogError(f"flow {looped!r} looped for {MAX_STEPS_PER_TURN} steps")
            flow = self.dialogs.flows[state.flow]
            if state.step >= len(flow.steps):
                await self._finish(run)
                if state.waiting:  # a flow taken up again asked its question
                    return
                continue
            await self._step(run, flow, flow.steps[state.step])
            if state.waiting:
                return

    async def _finish(self, run: Turn) -> None:
        """The flow is done; a flow it interrupted takes up its question again."""
        state = run.state
        if state.flow is not None and state.slots:
            state.done = Frame(state.flow, 0, dict(state.slots))
        state.end()
        if state.take_up():
            await self._resume(run)

    async def _resume(self, run: Turn) -> None:
        step = self._current(run.state)
        if isinstance(step, m.Ask) and run.state.slots.get(step.slot) is None:
            self._ask_again(run)
            run.state.waiting = True
        else:
            await self._run_steps(run)

    async def _step(self, run: Turn, flow: m.Flow, step: m.Step) -> None:
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
                state.forget_everything()

    def _render(self, run: Turn, response: str, **values: Any) -> Outbound:
        slots = {**run.state.slots, **values} if values else run.state.slots
        return self.responses.render(response, run.channel, slots, run.locale)

    def _say(self, run: Turn, response: str, **values: Any) -> None:
        run.replies.append(self._render(run, response, **values))

    def _handoff(self, run: Turn, reason: str, response: str | None) -> None:
        """A person takes over. A flow the request interrupted stays open:
        when the person hands back, its question is asked again."""
        if response is not None:
            self._say(run, response)
        run.context.handoff_reason = reason
        run.state.end()
        if run.state.take_up():
            run.state.waiting = True

    def _fallback(self, run: Turn) -> None:
        fallback, state = self.dialogs.fallback, run.state
        state.fallbacks += 1
        if fallback.handoff_after and state.fallbacks >= fallback.handoff_after:
            state.fallbacks = 0
            if fallback.handoff_response is None:
                run.replies.append(Outbound(text=catalog.text("handoff_asked", run.locale)))
            reason = "the bot did not understand twice in a row"
            self._handoff(run, reason, fallback.handoff_response)
        elif fallback.response is not None:
            self._say(run, fallback.response)
        else:
            run.replies.append(Outbound(text=DEFAULT_FALLBACK))

    # Actions.

    async def _action(self, run: Turn, action: str, depth: int = 0) -> None:
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
            reply = self.responses.of_action(message, run.channel, run.state.slots, run.locale)
            if reply is not None:
                run.replies.append(reply)
        await self._apply(run, action, result.events, depth)

    async def _apply(self, run: Turn, action: str, events: tuple[Any, ...], depth: int) -> None:
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


def _latest_message(run: Turn) -> dict[str, Any]:
    nlu = run.nlu
    return {
        "text": run.text,
        "intent": {"name": nlu.intent, "confidence": nlu.confidence},
        "entities": [{"entity": e.entity, "value": e.value} for e in nlu.entities],
        "metadata": {"locale": run.locale},
    }
