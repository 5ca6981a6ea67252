"""The dialog policy: understands a message, moves the active flow, runs actions.

Every flow bends the same ways (dialogs/README.md, "Conversation repair"):
cancel, correction, a side question and back, "I don't know", "say that
again", small talk, "which of these did you mean?", and a destructive flow
that starts only when meant and acts only on an explicit yes. All flow state
lives in `ConversationState.dialog` (see `dialogs.state`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from bot.core.model import Button, HistoryEntry, Outbound
from bot.core.policy import TurnContext
from dialogs import model as m
from dialogs.actions import ActionRunner
from dialogs.flow_runner import FlowRunner, Turn
from dialogs.nlu import Nlu, NluResult
from dialogs.proactive import checked_slots, startable_flow
from dialogs.state import DialogState, Frame
from dialogs.understanding import (
    AFFIRM,
    DENY,
    Understanding,
    sounds_like_correction,
    sounds_unsure,
)

# The repair patterns' wording (dialogs/patterns/*/responses.yml).
CANCELLED = "utter_pattern_cancelled"
NOTHING_TO_CANCEL = "utter_pattern_nothing_to_cancel"
CANNOT_ANSWER = "utter_pattern_cannot_answer"
CLARIFY = "utter_pattern_clarify"
CORRECTED = "utter_pattern_corrected"
NOTHING_TO_REPEAT = "utter_pattern_nothing_to_repeat"


class DialogPolicy(FlowRunner):
    """What each message means for the flows of `dialogs` (dialogs/README.md)."""

    def __init__(
        self, *, dialogs: m.Dialogs, nlu: Nlu, actions: ActionRunner | None, threshold: float
    ) -> None:
        super().__init__(dialogs=dialogs, actions=actions)
        self.patterns = dialogs.patterns
        self.nlu = nlu
        self.threshold = threshold
        self.understanding = Understanding(dialogs, nlu, threshold)

    async def decide(self, context: TurnContext) -> list[Outbound]:
        state = DialogState.load(context.state.dialog, self.dialogs)
        nlu, locale = await self.understanding.read(context)
        run = Turn(context, state, nlu, locale)
        if state.waiting:
            await self._while_waiting(run)
        else:
            await self._route(run)
        if run.replies and not run.repeated:
            state.remember(run.replies)
        context.state.dialog = state.dump()
        question = self.open_question(run)
        context.state.question = None if question is None else HistoryEntry.of_outbound(
            question, run.channel, time.time())
        return run.replies

    def protected_payloads(self) -> frozenset[str]:
        return frozenset(i for f in self.dialogs.flows.values() if f.destructive
                         for i in f.triggers)

    async def start_flow(self, context: TurnContext, flow: str,
                         slots: Mapping[str, Any]) -> list[Outbound]:
        """Start `flow` without a message from the customer (the business
        writes first), `slots` filled in as if the customer had said them. A
        flow waiting for an answer is put aside and asked again afterwards,
        as after a side question."""
        chosen = startable_flow(self.dialogs, flow)
        values = checked_slots(self.dialogs, chosen, slots)
        state = DialogState.load(context.state.dialog, self.dialogs)
        locale = context.state.locale or self.dialogs.default_language
        run = Turn(context, state, NluResult(intent=None, confidence=0.0), locale)
        if state.flow == chosen.name or not (self.patterns.interruption and state.put_aside()):
            state.end()
        state.start(chosen.name)
        state.slots.update(values)
        state.fallbacks = 0
        await self._run_steps(run)
        state.remember(run.replies)
        context.state.dialog = state.dump()
        question = self.open_question(run)
        context.state.question = None if question is None else HistoryEntry.of_outbound(
            question, run.channel, time.time())
        return run.replies

    # Routing a message.

    async def _route(self, run: Turn) -> None:
        """A message that answers no open question."""
        intent, patterns = run.nlu.intent, self.patterns
        if await self._correct(run, run.state.done, finished=True):
            pass  # first: "sorry, I meant A1002" is no request to repeat
        elif intent is not None and intent == patterns.cancel:
            self._say(run, NOTHING_TO_CANCEL)
        elif intent is not None and intent == patterns.repeat:
            self._repeat(run)
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

    async def _while_waiting(self, run: Turn) -> None:
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

    async def _interrupt(self, run: Turn, flow: m.Flow) -> None:
        """A side question: answered by its own flow, then the open one is asked again."""
        state = run.state
        if flow.name == state.flow or not self._may_start(run, flow):
            self._reprompt(run)
            return
        state.fallbacks = 0
        if not (self.patterns.interruption and state.put_aside()):
            state.end()
        await self._start(run, flow)

    async def _confirm(self, run: Turn, slot: m.Slot) -> None:
        """A destructive flow's question: only an explicit yes is a yes;
        anything else, "cancel" included, is a no, and a message that asked
        for something else is then answered too."""
        if self.understanding.is_explicit_yes(run.context):
            await self._fill(run, slot, True)
            return
        intent = run.nlu.intent or ""
        other = self.flow_of_intent.get(intent)
        chitchat = self.patterns.chitchat.get(intent) if intent not in (AFFIRM, DENY) else None
        if chitchat is not None and other is None:
            await self._fill(run, slot, False)  # the refusal, then the small talk answered
            self._say(run, chitchat)
            return
        if other is not None and other.name == run.state.flow:
            question = self.open_question(run)  # "forget me" again: the question again
            if question is not None:
                run.replies.append(question)
            return
        if other is None or other.destructive or intent in (AFFIRM, DENY):
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

    async def _cancel(self, run: Turn) -> None:
        run.state.end()
        self._say(run, CANCELLED)
        if run.state.take_up():
            await self._resume(run)

    def _repeat(self, run: Turn) -> None:
        run.repeated = True
        again = run.state.repeated()
        if again:
            run.replies.extend(again)
        else:
            self._say(run, NOTHING_TO_REPEAT)
            run.repeated = False

    async def _correct(self, run: Turn, frame: Frame | None, *, finished: bool = False) -> bool:
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

    def _clarify(self, run: Turn) -> bool:
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

    def _may_start(self, run: Turn, flow: m.Flow) -> bool:
        """A destructive flow starts on a button, or a sure and specific match."""
        if not flow.destructive or run.context.inbound.payload is not None:
            return True
        nlu = run.nlu
        if not nlu.ranking or sounds_unsure(run.text):
            return False  # "please do not delete my data", "how do I delete my data?"
        lead = nlu.ranking[0][1] - (nlu.ranking[1][1] if len(nlu.ranking) > 1 else 0.0)
        return (nlu.confidence >= self.patterns.destructive_confidence and nlu.specific
                and lead >= self.patterns.clarify_margin)
