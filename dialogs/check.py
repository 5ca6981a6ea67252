"""Validation of loaded dialogs: every name a flow uses exists, and every step can run."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any

from rasa_sdk import Action

from dialogs import model as m
from dialogs.flows import load_dialogs
from dialogs.source import Problem, Where


def check_dialogs(
    dialogs_dir: str | Path, *, in_process_actions: bool = True
) -> tuple[m.Dialogs | None, list[Problem]]:
    """Load and cross-check the dialog files; the dialogs only if there is no problem."""
    dialogs, problems = load_dialogs(dialogs_dir)
    if dialogs is None:
        return None, problems
    problems.extend(_Checker(dialogs).run())
    if in_process_actions:
        problems.extend(check_action_module(dialogs.actions))
    errors = [p for p in problems if not p.warning]
    return (dialogs if not errors else None), problems


def action_classes(module_name: str) -> dict[str, type[Action]]:
    """The concrete `rasa_sdk.Action` classes defined in a module, by action name."""
    module = importlib.import_module(module_name)
    found: dict[str, type[Action]] = {}
    for _, cls in inspect.getmembers(module, inspect.isclass):
        if issubclass(cls, Action) and cls.__module__ == module.__name__:
            if not inspect.isabstract(cls):
                instance: Any = cls()
                found[str(instance.name())] = cls
    return found


def check_action_module(actions: m.ActionsConfig) -> list[Problem]:
    if not actions.names:
        return []
    first = next(iter(actions.names.values()))
    if actions.module is None:
        return [Problem(first, "actions are declared but no actions module is set")]
    try:
        implemented = action_classes(actions.module)
    except Exception as exc:  # any import-time failure of user code is a config problem
        return [Problem(first, f"cannot import actions module {actions.module!r}: {exc}")]
    return [
        Problem(where, f"action {name!r} is not implemented in {actions.module}")
        for name, where in actions.names.items()
        if name not in implemented
    ]


# What the runtime fills in besides slots: the repair patterns' values.
PATTERN_VALUES = frozenset({"value", "previous", "question"})


def placeholders(text: str) -> set[str]:
    return set(m.PLACEHOLDER.findall(text))


class _Checker:
    def __init__(self, dialogs: m.Dialogs) -> None:
        self.d = dialogs
        self.problems: list[Problem] = []

    def run(self) -> list[Problem]:
        for slot in self.d.slots.values():
            if slot.entity is not None and slot.entity not in self.d.entities:
                self._bad(slot.where, f"slot {slot.name!r} uses unknown entity {slot.entity!r}")
            self._response(slot.prompt, slot.where)
            self._response(slot.invalid, slot.where)
            self._response(slot.help, slot.where)
        fallback = self.d.fallback
        for name in (fallback.response, fallback.handoff_response, fallback.action_failed):
            self._response(name, fallback.where)
        for flow in self.d.flows.values():
            self._flow(flow)
        self._patterns()
        self._translations()
        return self.problems

    def _bad(self, where: Where, message: str) -> None:
        self.problems.append(Problem(where, message))

    def _warn(self, where: Where, message: str) -> None:
        self.problems.append(Problem(where, message, warning=True))

    def _patterns(self) -> None:
        patterns, default = self.d.patterns, m.Patterns()
        where = patterns.where or self.d.fallback.where
        triggers = {i: f for f in self.d.flows.values() for i in f.triggers}
        for key in ("cancel", "repeat", "cannot_answer"):
            name = getattr(patterns, key)
            if name is None:
                continue
            if name not in self.d.intents:
                message = (f"the {key} pattern's intent {name!r} has no examples in "
                           f"{self.d.default_language}")
                if name == getattr(default, key):
                    self._warn(where, message + ": the pattern is off")
                else:
                    self._bad(where, message)
            elif name in triggers:
                self._bad(where, f"the {key} pattern's intent {name!r} also starts flow "
                                 f"{triggers[name].name!r}: give the pattern an intent of its own")
        for intent, response in patterns.chitchat.items():
            self._response(response, where)
            if intent not in self.d.intents and intent not in m.DEFAULT_CHITCHAT:
                self._bad(where, f"chitchat names unknown intent {intent!r}")

    def _translations(self) -> None:
        """Every response and intent in every language the bot speaks."""
        for locale in self.d.languages[1:]:
            intents = self.d.intents_in(locale)
            for name, intent in intents.items():
                if name not in self.d.intents:
                    self._bad(intent.where, f"intent {name!r} of locale {locale} has no "
                                            f"examples in {self.d.default_language}")
            for name, intent in self.d.intents.items():
                if name not in intents:
                    self._warn(intent.where, f"intent {name!r} has no examples in {locale}")
                elif intent.title and not intents[name].title:
                    self._warn(intents[name].where, f"intent {name!r} has a title in "
                               f"{self.d.default_language} but none in {locale}")
            for name, response in self.d.responses.items():
                translated = response.translations.get(locale)
                if translated is None:
                    self._warn(response.where, f"response {name!r} has no {locale} version "
                                               f"(the {self.d.default_language} one is said)")
                else:
                    self._same_shape(response, translated, locale)
        for name, response in self.d.responses.items():
            unknown = placeholders(response.default.text) - set(self.d.slots) - PATTERN_VALUES
            if unknown:
                listed = ", ".join("{" + u + "}" for u in sorted(unknown))
                self._warn(response.where, f"response {name!r} has {listed}, which is no slot "
                                           "(an action must pass it, or it is shown as typed)")

    def _same_shape(self, response: m.Response, translated: m.Response, locale: str) -> None:
        """A translation says the same with other words: the same placeholders
        and, on each channel, the same button payloads."""
        name = response.name
        for channel in (None, *response.channels):
            ours = response.for_channel(channel or "", None)
            theirs = translated.for_channel(channel or "", None)
            on = f" on {channel}" if channel else ""
            if placeholders(theirs.text) != placeholders(ours.text):
                self._bad(translated.where, f"response {name!r} in {locale}{on} has placeholders "
                          f"{sorted(placeholders(theirs.text))}, not "
                          f"{sorted(placeholders(ours.text))}")
            if [b.payload for b in theirs.buttons] != [b.payload for b in ours.buttons]:
                self._bad(translated.where, f"response {name!r} in {locale}{on}: button payloads "
                          f"{[b.payload for b in theirs.buttons]} differ from "
                          f"{[b.payload for b in ours.buttons]}")

    def _response(self, name: str | None, where: Where) -> None:
        if name is not None and name not in self.d.responses:
            self._bad(where, f"unknown response {name!r}")

    def _slot(self, name: str, where: Where) -> None:
        if name not in self.d.slots:
            self._bad(where, f"unknown slot {name!r}")

    def _target(self, flow: m.Flow, target: str, where: Where) -> None:
        if target not in flow.labels:
            self._bad(where, f"unknown goto target {target!r} in flow {flow.name!r}")

    def _flow(self, flow: m.Flow) -> None:
        for intent in flow.triggers:
            if intent not in self.d.intents:
                message = f"flow {flow.name!r} is triggered by unknown intent {intent!r}"
                self._bad(flow.where, message)
        if not flow.steps:
            self._bad(flow.where, f"flow {flow.name!r} has no steps")
        for step in flow.steps:
            self._step(flow, step)
        reachable = reachable_steps(flow)
        for index, step in enumerate(flow.steps):
            if index not in reachable:
                self._bad(step.where, f"unreachable step in flow {flow.name!r}")

    def _step(self, flow: m.Flow, step: m.Step) -> None:
        match step:
            case m.Say(response=response):
                self._response(response, step.where)
            case m.Ask(slot=slot, response=response):
                self._slot(slot, step.where)
                self._response(response, step.where)
                known = self.d.slots.get(slot)
                if response is None and known is not None and known.prompt is None:
                    self._bad(step.where, f"ask {slot!r} has no response and the slot no prompt")
            case m.RunAction(action=action):
                if action not in self.d.actions.names:
                    message = f"unknown action {action!r} (declare it in actions.names)"
                    self._bad(step.where, message)
            case m.Branch(cases=cases, otherwise=otherwise):
                for case in cases:
                    self._slot(case.slot, case.where)
                    self._target(flow, case.goto, case.where)
                if otherwise is not None:
                    self._target(flow, otherwise, step.where)
            case m.Goto(target=target):
                self._target(flow, target, step.where)
            case m.Handoff(response=response) | m.Erase(response=response):
                self._response(response, step.where)


def successors(flow: m.Flow, index: int) -> list[int]:
    """Steps that can run right after step `index` (an index past the end ends the flow)."""
    step = flow.steps[index]
    labels = flow.labels
    match step:
        case m.Goto(target=target):
            return [labels[target]] if target in labels else []
        case m.Handoff() | m.Erase():
            return []
        case m.Branch(cases=cases, otherwise=otherwise):
            nexts = [labels[c.goto] for c in cases if c.goto in labels]
            if otherwise is None:
                nexts.append(index + 1)
            elif otherwise in labels:
                nexts.append(labels[otherwise])
            return nexts
        case _:
            return [index + 1]


def reachable_steps(flow: m.Flow) -> set[int]:
    seen: set[int] = set()
    todo = [0] if flow.steps else []
    while todo:
        index = todo.pop()
        if index in seen or index >= len(flow.steps):
            continue
        seen.add(index)
        todo.extend(successors(flow, index))
    return seen
