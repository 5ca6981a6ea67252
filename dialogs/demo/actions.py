"""The demo bot's custom actions, as plain rasa-sdk actions.

They run in-process or on a stock Rasa action server unchanged:
`python -m rasa_sdk --actions dialogs.demo.actions`.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

log = logging.getLogger(__name__)

DEFAULT_ORDERS = "config/demo_orders.json"


class OrderBook:
    """The demo orders, read once: a turn must not cost a file read."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._orders: dict[str, dict[str, Any]] | None = None

    def get(self, order_id: str) -> dict[str, Any] | None:
        if self._orders is None:
            with self.path.open(encoding="utf-8") as file:
                self._orders = {str(k).upper(): v for k, v in json.load(file).items()}
        return self._orders.get(order_id.upper())


class ActionOrderStatus(Action):  # type: ignore[misc]  # rasa-sdk ships no types
    """Says the status of the order in slot `order_id`; an unknown number is
    answered clearly and the slot emptied so the flow can ask again."""

    def __init__(self, orders: OrderBook | None = None) -> None:
        # A separate action server has no Segue settings: it reads the same
        # environment variable Segue does.
        self.orders = orders or OrderBook(os.environ.get("SEGUE_DEMO_ORDERS", DEFAULT_ORDERS))

    @classmethod
    def from_settings(cls, settings: Any) -> ActionOrderStatus:
        return cls(OrderBook(settings.demo_orders))

    def name(self) -> str:
        return "action_order_status"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        order_id = str(tracker.get_slot("order_id") or "").upper()
        order = self.orders.get(order_id) if order_id else None
        # The text is for a Rasa assistant without these responses; Segue
        # says the named response, in the customer's language.
        if order is None:
            dispatcher.utter_message(
                text=f"Sorry, I couldn't find an order with the number {order_id}. "
                "Please check it and try again.",
                response="utter_order_not_found",
                order_id=order_id,
            )
            return [SlotSet("order_found", False), SlotSet("order_id", None)]
        dispatcher.utter_message(
            text=f"Order {order_id} is {order['status']}. {order['detail']}",
            response=f"utter_order_{order['status']}",
            order_id=order_id,
        )
        return [SlotSet("order_found", True)]
