"""Starting a flow the customer did not ask for (the business writes first):
which flows may be started so, and the slot values given with it."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

from bot.core.errors import BadInput
from dialogs import model as m

MAX_SLOT_TEXT = 1000


def startable_flow(dialogs: m.Dialogs, name: object) -> m.Flow:
    """The flow named `name`, if the business may start it: any flow of the
    bot but a destructive one (only the customer may ask to lose data)."""
    flow = dialogs.flows.get(name) if isinstance(name, str) else None
    if flow is None:
        raise BadInput("unknown_flow", f"there is no flow named {name!r}")
    if flow.destructive:
        raise BadInput("unknown_flow", f"the flow {name!r} only starts at the customer's request")
    return flow


def checked_slots(dialogs: m.Dialogs, flow: m.Flow, slots: object) -> dict[str, Any]:
    """The slot values, each checked as if the customer had given it: a slot
    the flow asks for (not one its actions set), of its type, normalised and
    valid."""
    if slots is None:
        return {}
    if not isinstance(slots, Mapping):
        raise BadInput("bad_slots", "'slots' must be an object of slot names and values")
    asked = {step.slot for step in flow.steps if isinstance(step, m.Ask)}
    values: dict[str, Any] = {}
    for name, value in slots.items():
        slot = dialogs.slots.get(name)
        if slot is None or name not in asked:
            raise BadInput("bad_slots", f"the flow {flow.name!r} asks for no slot named "
                                        f"{name!r} (it asks for: {', '.join(sorted(asked))})")
        values[name] = _checked(slot, value)
    return values


def _checked(slot: m.Slot, value: object) -> Any:
    if slot.type == "bool":
        if not isinstance(value, bool):
            raise BadInput("bad_slots", f"the slot {slot.name!r} takes true or false")
        return value
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_SLOT_TEXT:
        raise BadInput("bad_slots", f"the slot {slot.name!r} takes a non-empty text of at "
                                    f"most {MAX_SLOT_TEXT} characters")
    text = unicodedata.normalize("NFKC", value.strip())
    text = text.upper() if slot.normalize == "upper" else text
    text = text.lower() if slot.normalize == "lower" else text
    if slot.validate is not None and not slot.validate.fullmatch(text):
        raise BadInput("bad_slots", f"{value!r} is not a valid value of the slot {slot.name!r}")
    return text
