"""Engines wired like the app's assembly, for tests that drive the core
without HTTP: the same parts in the same order, with test options."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.core.bus import Bus, LocalBus
from bot.core.delivery import OutboundSender, Senders
from bot.core.engine import Engine, EngineOptions
from bot.core.identities import Customers
from bot.core.locked_state import CustomerLocks, LockOptions
from bot.core.policy import Policy
from bot.core.rate_limits import RateLimiter
from bot.handoff.desk import DeskOptions, HandoffDesk
from bot.handoff.hook import HandoffHook, HandoffPolicy
from bot.handoff.ports import AgentStore
from bot.linking.hook import LinkHook
from bot.linking.service import LinkOptions, LinkService
from context_store.agents_memory import MemoryAgentStore


def locks_for(store: Any, options: EngineOptions) -> CustomerLocks:
    return CustomerLocks(store, LockOptions(ttl_seconds=options.lock_ttl_seconds,
                                            wait_seconds=options.lock_wait_seconds))


def linking_engine(store: Any, policy: Policy, senders: Mapping[str, OutboundSender],
                   options: LinkOptions, *, engine_options: EngineOptions | None = None,
                   ) -> tuple[Engine, LinkService]:
    """An engine whose only hook is linking."""
    customers, delivery = Customers(store), Senders(senders)
    links = LinkService(store=store, customers=customers, senders=delivery,
                        limiter=RateLimiter(store), options=options)
    engine = Engine(store=store, policy=policy, hooks=[LinkHook(links)], senders=delivery,
                    options=engine_options, customers=customers)
    return engine, links


def handoff_engine(store: Any, policy: Policy, senders: Mapping[str, OutboundSender], *,
                   agents: AgentStore | None = None, bus: Bus | None = None,
                   desk_options: DeskOptions | None = None,
                   engine_options: EngineOptions | None = None,
                   ) -> tuple[Engine, HandoffDesk]:
    """An engine whose only hook is the handoff, its policy wrapped to queue."""
    engine_options = engine_options or EngineOptions()
    delivery = Senders(senders)
    locks = locks_for(store, engine_options)
    desk = HandoffDesk(store=store, locks=locks, senders=delivery, limiter=RateLimiter(store),
                       agents=agents if agents is not None else MemoryAgentStore(),
                       bus=bus if bus is not None else LocalBus(), options=desk_options)
    engine = Engine(store=store, policy=HandoffPolicy(policy, desk), hooks=[HandoffHook(desk)],
                    senders=delivery, options=engine_options, locks=locks)
    return engine, desk
