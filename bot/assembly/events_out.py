"""Events out, assembled: the sink every part emits to and this worker's
dispatcher, when `SEGUE_EVENTS_URL` is set (else nothing is kept or sent)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.core import metrics
from bot.core.events import NO_EVENTS, EventSink
from bot.core.events_queue import EventQueueStore, Events
from bot.core.settings import Settings
from connectors.events_out import EventDispatcher, EventsOutOptions


@dataclass(frozen=True, slots=True)
class EventsOut:
    """The sink, and the dispatcher that sends what it queues (None: no
    events URL, or a command that only queues, such as `segue customers`)."""

    sink: EventSink = NO_EVENTS
    dispatcher: EventDispatcher | None = None

    async def start(self) -> None:
        if self.dispatcher is not None:
            await self.dispatcher.start()

    async def stop(self) -> None:
        if self.dispatcher is not None:
            await self.dispatcher.stop()


def build_events_out(settings: Settings, store: object, *, send: bool = True) -> EventsOut:
    """The sink on `store`'s event queue, and with `send` the dispatcher
    it wakes; both only when an events URL is set."""
    if settings.events_url is None or settings.events_secret is None:
        return EventsOut()
    if not isinstance(store, EventQueueStore):
        raise TypeError(f"{type(store).__name__} keeps no event queue: it is no "
                        "EventQueueStore")
    if not send:
        return EventsOut(Events(store))
    metrics.declare_events_series()
    dispatcher = EventDispatcher(store, EventsOutOptions(
        url=settings.events_url, secret=settings.events_secret.get_secret_value()))
    return EventsOut(Events(store, wake=dispatcher.wake), dispatcher)
