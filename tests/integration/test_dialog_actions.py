"""The action payload, the in-process executor and reading action answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.core.model import Button
from bot.core.settings import Settings
from dialogs.actions import (
    ActionFailed,
    ActionMessage,
    ActionResult,
    Followup,
    InProcessActions,
    Pause,
    ResetSlots,
    SetSlot,
    webhook_payload,
)


def payload(action: str, order_id: str) -> dict[str, object]:
    return webhook_payload(
        action=action, sender_id="c1", slots={"order_id": order_id},
        latest_message={"text": order_id}, domain={"intents": []},
    )


def test_the_payload_is_the_standard_webhook_body() -> None:
    body = payload("action_order_status", "A1001")
    assert set(body) == {"next_action", "sender_id", "tracker", "domain", "version"}
    tracker = body["tracker"]
    assert isinstance(tracker, dict) and tracker["slots"] == {"order_id": "A1001"}
    json.dumps(body)  # it goes over HTTP as is


async def test_the_demo_action_reads_the_configured_orders(tmp_path: Path) -> None:
    orders = tmp_path / "orders.json"
    orders.write_text(json.dumps({"b2002": {"status": "lost", "detail": "Sorry."}}))
    settings = Settings(demo_orders=str(orders))
    actions = InProcessActions.from_module("dialogs.demo.actions", settings)
    found = await actions.run(payload("action_order_status", "B2002"))
    # A status with no response of its own is said in the action's words.
    assert found.messages == (ActionMessage(text="Order B2002 is lost. Sorry.",
                                            response="utter_order_lost",
                                            variables=(("order_id", "B2002"),)),)
    assert found.events == (SetSlot("order_found", True),)
    orders.unlink()  # read once, then served from memory
    again = await actions.run(payload("action_order_status", "A1001"))
    assert again.events == (SetSlot("order_found", False), SetSlot("order_id", None))


async def test_an_unknown_action_or_a_missing_file_fails_as_an_action(tmp_path: Path) -> None:
    settings = Settings(demo_orders=str(tmp_path / "absent.json"))
    actions = InProcessActions.from_module("dialogs.demo.actions", settings)
    with pytest.raises(ActionFailed, match="action_nope"):
        await actions.run(payload("action_nope", "A1001"))
    with pytest.raises(ActionFailed, match="absent.json"):
        await actions.run(payload("action_order_status", "A1001"))


def test_answers_are_read_into_typed_events_and_messages() -> None:
    result = ActionResult.from_json({
        "events": [
            {"event": "slot", "name": "a", "value": 1},
            {"event": "followup", "name": "flow_x"},
            {"event": "pause"},
            {"event": "reset_slots"},
            {"event": "bot", "text": "ignored"},
            "garbage",
        ],
        "responses": [
            {"text": "hi", "buttons": [{"title": "T", "payload": "p"}], "image": None},
            {"text": None, "response": "utter_x"},
        ],
    })
    assert result.events == (SetSlot("a", 1), Followup("flow_x"), Pause(), ResetSlots())
    assert result.messages == (
        ActionMessage("hi", (Button("T", "p"),)), ActionMessage(None, response="utter_x"),
    )
    with pytest.raises(ActionFailed):
        ActionResult.from_json(None)
