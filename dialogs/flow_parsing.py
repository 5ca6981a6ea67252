"""The `flows` section: each flow's steps, checked for shape as they are read."""

from __future__ import annotations

from typing import Any, Literal

from dialogs import model as m
from dialogs.sections import Report
from dialogs.source import Located, LocatedList, Where

STEP_KINDS = ("say", "ask", "action", "branch", "goto", "handoff", "erase")


def parse_flow(name: str, body: Any, where: Where, problem: Report) -> m.Flow | None:
    if not isinstance(body, Located) or not isinstance(body.get("steps"), LocatedList):
        problem(where, f"flow {name!r} needs a list of steps")
        return None
    triggers = body.get("triggers") or []
    if not isinstance(triggers, list):
        problem(body.at("triggers"), f"triggers of flow {name!r} must be a list")
        triggers = []
    steps: list[m.Step] = []
    labels: dict[str, int] = {}
    for index, raw in enumerate(body["steps"]):
        step = _step(raw, body["steps"].at(index), problem)
        if step is None:
            continue
        if step.id is not None:
            if step.id in labels:
                problem(step.where, f"step id {step.id!r} is used twice in flow {name!r}")
            labels[step.id] = len(steps)
        steps.append(step)
    destructive = body.get("destructive", False)
    if not isinstance(destructive, bool):
        problem(body.at("destructive"), f"destructive of flow {name!r} must be true "
                                             "or false")
        destructive = False
    return m.Flow(name, tuple(str(t) for t in triggers), tuple(steps), where, labels,
                  destructive)

def _step(raw: Any, where: Where, problem: Report) -> m.Step | None:
    if not isinstance(raw, Located):
        problem(where, "a step must be a mapping such as {say: utter_greet}")
        return None
    kinds = [k for k in STEP_KINDS if k in raw]
    if len(kinds) != 1:
        problem(where, f"a step needs exactly one of: {', '.join(STEP_KINDS)}")
        return None
    kind, value, step_id = kinds[0], raw[kinds[0]], _opt_str(raw.get("id"))
    response = _opt_str(raw.get("response"))
    if kind == "branch":
        return _branch(value, raw.at("branch"), step_id, problem)
    if not isinstance(value, str | bool) or value == "":
        problem(raw.at(kind), f"{kind} needs a name")
        return None
    text = str(value)
    match kind:
        case "say":
            return m.Say(text, where, step_id)
        case "ask":
            return m.Ask(text, response, where, step_id)
        case "action":
            return m.RunAction(text, where, step_id)
        case "goto":
            return m.Goto(text, where, step_id)
        case "handoff":
            return m.Handoff(text, response, where, step_id)
        case _:
            return m.Erase(None if value is True else text, where, step_id)

def _branch(value: Any, where: Where, step_id: str | None, problem: Report) -> m.Branch | None:
    if not isinstance(value, LocatedList):
        problem(where, "branch needs a list of cases")
        return None
    cases: list[m.Case] = []
    otherwise: str | None = None
    for index, case in enumerate(value):
        at = value.at(index)
        if isinstance(case, Located) and "else" in case:
            otherwise = str(case["else"])
            continue
        test = case.get("if") if isinstance(case, Located) else None
        if not isinstance(test, Located) or "slot" not in test or "goto" not in case:
            problem(at, "a case needs `if: {slot: …, equals|set: …}` and `goto`")
            continue
        op: Literal["equals", "set", "unset"] = "equals"
        operand = test.get("equals")
        if "equals" not in test:
            op = "set" if test.get("set", True) else "unset"
        cases.append(m.Case(str(test["slot"]), op, operand, str(case["goto"]), at))
    return m.Branch(tuple(cases), otherwise, where, step_id)


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)
