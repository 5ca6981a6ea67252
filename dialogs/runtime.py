"""The dialog policy: understands a message, moves the active flow, runs actions.

Every flow bends the same ways (dialogs/README.md, "Conversation repair"):
cancel, correction, a side question and back, "I don't know", "say that
again", small talk, "which of these did you mean?", and a destructive flow
that starts only when meant and acts only on an explicit yes. All flow state
lives in `ConversationState.dialog` (see `dialogs.state`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

from bot.core.errors import DialogError
from bot.core.model import Button, Outbound
from bot.core.policy import HANDOFF_ASKED, TurnContext
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
from dialogs.nlu import Nlu, NluResult
from dialogs.responses import Responses
from dialogs.state import DialogState, Frame
from dialogs.understanding import AFFIRM, DENY, Understanding, sounds_like_correction

log = logging.getLogger(__name__)

MAX_STEPS_PER_TURN = 64
DEFAULT_FALLBACK = "Sorry, I didn't get that."
DEFAULT_ACTION_FAILED = "Sorry, something went wrong on our side. Please try again in a moment."
# The repair patterns' wording (dialogs/patterns/*/responses.yml).
CANCELLED = "utter_pattern_cancelled"
NOTHING_TO_CANCEL = "utter_pattern_nothing_to_cancel"
CANNOT_ANSWER = "utter_pattern_cannot_answer"
CLARIFY = "utter_pattern_clarify"
CORRECTED = "utter_pattern_corrected"
RESUME = "utter_pattern_resume"
NOTHING_TO_REPEAT = "utter_pattern_nothing_to_repeat"


@dataclass(slots=True)
class _Turn:
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


class DialogPolicy:
    """Runs the flows of `dialogs` (see dialogs/README.md)."""

    def __init__(
        self, *, dialogs: m.Dialogs, nlu: Nlu, actions: ActionRunner | None, threshold: float
    ) -> None:
        self.dialogs = dialogs
        self.patterns = dialogs.patterns
        self.nlu = nlu
        self.actions = actions
        self.threshold = threshold
        self.responses = Responses(dialogs.responses)
        self.domain = domain_of(dialogs)
        self.flow_of_intent = {i: f for f in dialogs.flows.values() for i in f.triggers}
        self.understanding = Understanding(dialogs, nlu, threshold)

    async def decide(self, context: TurnContext) -> list[Outbound]:
        state = DialogState.load(context.state.dialog, self.dialogs)
        nlu, locale = await self.understanding.read(context)
        run = _Turn(context, state, nlu, locale)
        if state.waiting:
            await self._while_waiting(run)
        else:
            await self._route(run)
        if run.replies and not run.repeated:
            state.remember(run.replies)
        context.state.dialog = state.dump()
        return run.replies

    # Routing a message.

    async def _route(self, run: _Turn) -> None:
        """A message that answers no open question."""
        intent, patterns = run.nlu.intent, self.patterns
        if intent is not None and intent == patterns.cancel:
            self._say(run, NOTHING_TO_CANCEL)
        elif intent is not None and intent == patterns.repeat:
            self._repeat(run)
        elif await self._correct(run, run.state.done, finished=True):
            pass
        elif self._clarify(run):
            pass
        elif intent is not None and intent in self.flow_of_intent:
            flow = self.flow_of_intent[intent]
            if not self._may_start(run, flow):
                self._fallback(run)
                return
            run.state.fallbacks = 0
            await self._start(run, flow)
        elif intent is not None and intent in patterns.chitchat:
            run.state.fallbacks = 0
            self._say(run, patterns.chitchat[intent])
        else:
            self._fallback(run)

    async def _while_waiting(self, run: _Turn) -> None:
        """A message while a flow waits for the answer to its question."""
        state, patterns, intent = run.state, self.patterns, run.nlu.intent
        step = self._current(state)
        if not isinstance(step, m.Ask) or state.flow is None:
            state.waiting = False
            await self._route(run)
            return
        slot, flow = self.dialogs.slots[step.slot], self.dialogs.flows[state.flow]
        if flow.destructive and slot.type == "bool":
            await self._confirm(run, slot)
            return
        if intent is not None and intent == patterns.cancel:
            await self._cancel(run)
            return
        value = self._value_for(slot, run.nlu, run.text)
        if value is not None:
            await self._fill(run, slot, value)
        elif await self._correct(run, Frame(state.flow, state.step, state.slots)):
            pass
        elif intent is not None and intent == patterns.repeat:
            self._repeat(run)
        elif intent is not None and intent == patterns.cannot_answer:
            self._say(run, slot.help or CANNOT_ANSWER)
        elif self._clarify(run):
            pass
        elif intent is not None and intent in patterns.chitchat:
            self._say(run, patterns.chitchat[intent])
            self._ask_again(run)
        elif intent is not None and intent in self.flow_of_intent:
            await self._interrupt(run, self.flow_of_intent[intent])
        else:
            self._reprompt(run)

    async def _interrupt(self, run: _Turn, flow: m.Flow) -> None:
        """A side question: answered by its own flow, then the open one is asked again."""
        state = run.state
        if flow.name == state.flow or not self._may_start(run, flow):
            self._reprompt(run)
            return
        state.fallbacks = 0
        if not (self.patterns.interruption and state.put_aside()):
            state.end()
        await self._start(run, flow)

    # Slots.

    async def _fill(self, run: _Turn, slot: m.Slot, value: Any) -> None:
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

    def _ask_again(self, run: _Turn) -> None:
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

    async def _confirm(self, run: _Turn, slot: m.Slot) -> None:
        """A destructive flow's question: only an explicit yes is a yes;
        anything else, "cancel" included, is a no, and a message that asked
        for something else is then answered too."""
        if self.understanding.is_explicit_yes(run.context):
            await self._fill(run, slot, True)
            return
        other = self.flow_of_intent.get(run.nlu.intent or "")
        if other is None or other.destructive or run.nlu.intent in (AFFIRM, DENY):
            await self._fill(run, slot, False)
            return
        state = run.state
        # The refusal first, without taking up a flow underneath: the other
        # request interrupts that one in turn.
        underneath, state.stack = state.stack, []
        await self._fill(run, slot, False)
        state.stack = underneath
        if state.flow is None and state.take_up():
            await self._interrupt(run, other)
        elif state.flow is None:
            await self._start(run, other)

    # Repair.

    async def _cancel(self, run: _Turn) -> None:
        run.state.end()
        self._say(run, CANCELLED)
        if run.state.take_up():
            await self._resume(run)

    def _repeat(self, run: _Turn) -> None:
        run.repeated = True
        again = run.state.repeated()
        if again:
            run.replies.extend(again)
        else:
            self._say(run, NOTHING_TO_REPEAT)
            run.repeated = False

    async def _correct(self, run: _Turn, frame: Frame | None, *, finished: bool = False) -> bool:
        """A new value for a slot the flow already has ("no, I meant A1003"):
        the slot is changed and the flow redone from where it asked for it."""
        if frame is None or not self.patterns.correction:
            return False
        intent = run.nlu.intent
        other = self.flow_of_intent.get(intent or "")
        if other is not None and other.name != frame.flow:
            return False  # a request of its own, not a correction
        if other is not None and finished and not sounds_like_correction(run.text):
            return False  # the same request again, for another order
        flow = self.dialogs.flows[frame.flow]
        asks = [(i, s) for i, s in enumerate(flow.steps) if isinstance(s, m.Ask)]
        for index, ask in asks:
            slot = self.dialogs.slots[ask.slot]
            old = frame.slots.get(slot.name)
            if slot.type != "text" or slot.entity is None or old is None:
                continue
            new = self._value_for(slot, run.nlu, run.text)
            if new is None or new == old:
                continue
            later = {a.slot for i, a in asks if i > index}
            slots = {k: v for k, v in frame.slots.items() if k not in later}
            slots[slot.name] = new
            self._say(run, CORRECTED, value=new, previous=old)
            state = run.state
            if finished:
                state.start(frame.flow)
            state.flow, state.step, state.slots, state.waiting = frame.flow, index, slots, False
            state.fallbacks = 0
            await self._run_steps(run)
            return True
        return False

    def _clarify(self, run: _Turn) -> bool:
        """Two flows' intents about as likely: ask which, with a button for each."""
        nlu, margin = run.nlu, self.patterns.clarify_margin
        if margin <= 0 or run.context.inbound.payload is not None or len(nlu.ranking) < 2:
            return False
        (first, best), (second, next_best) = nlu.ranking[0], nlu.ranking[1]
        if best < self.threshold or best - next_best >= margin:
            return False
        flows = [self.flow_of_intent.get(first), self.flow_of_intent.get(second)]
        if flows[0] is None or flows[1] is None or flows[0] is flows[1]:
            return False
        titles = [self.dialogs.title_of(i, run.locale) for i in (first, second)]
        if titles[0] is None or titles[1] is None:
            return False
        question = self._render(run, CLARIFY)
        buttons = (Button(titles[0], first), Button(titles[1], second))
        run.replies.append(replace(question, buttons=buttons))
        return True

    def _may_start(self, run: _Turn, flow: m.Flow) -> bool:
        """A destructive flow starts on a button, or a sure and specific match."""
        if not flow.destructive or run.context.inbound.payload is not None:
            return True
        nlu = run.nlu
        if not nlu.ranking:
            return False
        lead = nlu.ranking[0][1] - (nlu.ranking[1][1] if len(nlu.ranking) > 1 else 0.0)
        return (nlu.confidence >= self.patterns.destructive_confidence and nlu.specific
                and lead >= self.patterns.clarify_margin)

    # Flows.

    async def _start(self, run: _Turn, flow: m.Flow) -> None:
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

    async def _run_steps(self, run: _Turn) -> None:
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

    async def _finish(self, run: _Turn) -> None:
        """The flow is done; a flow it interrupted takes up its question again."""
        state = run.state
        if state.flow is not None and state.slots:
            state.done = Frame(state.flow, 0, dict(state.slots))
        state.end()
        if state.take_up():
            await self._resume(run)

    async def _resume(self, run: _Turn) -> None:
        step = self._current(run.state)
        if isinstance(step, m.Ask) and run.state.slots.get(step.slot) is None:
            self._ask_again(run)
            run.state.waiting = True
        else:
            await self._run_steps(run)

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
                state.forget_everything()

    def _render(self, run: _Turn, response: str, **values: Any) -> Outbound:
        slots = {**run.state.slots, **values} if values else run.state.slots
        return self.responses.render(response, run.channel, slots, run.locale)

    def _say(self, run: _Turn, response: str, **values: Any) -> None:
        run.replies.append(self._render(run, response, **values))

    def _handoff(self, run: _Turn, reason: str, response: str | None) -> None:
        """A person takes over. A flow the request interrupted stays open:
        when the person hands back, its question is asked again."""
        if response is not None:
            self._say(run, response)
        run.context.handoff_reason = reason
        run.state.end()
        if run.state.take_up():
            run.state.waiting = True

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
            reply = self.responses.of_action(message, run.channel, run.state.slots, run.locale)
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
        "text": run.text,
        "intent": {"name": nlu.intent, "confidence": nlu.confidence},
        "entities": [{"entity": e.entity, "value": e.value} for e in nlu.entities],
        "metadata": {"locale": run.locale},
    }
