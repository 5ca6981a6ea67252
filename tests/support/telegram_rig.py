"""Segue served against the local Telegram Bot API fake, and what the
Telegram tests read back from it (no tests here)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import pytest

from bot.assembly.app import Segue
from bot.core.engine import Turn
from bot.core.model import ChannelIdentity, HistoryEntry, Inbound
from bot.core.policy import Policy
from bot.core.ports import ContextStore
from bot.core.settings import Settings
from connectors.telegram import TelegramConnector
from tests.fakes.telegram_api import CUSTOMER, TOKEN, FakeTelegram
from tests.support.app_server import serve_segue
from tests.support.redis_server import free_port


@asynccontextmanager
async def segue_on_fake(
    fake: FakeTelegram,
    store: ContextStore,
    *,
    mode: str = "webhook",
    secret: str = "s3cret-Token_1",
    policy: Policy | None = None,
    **options: Any,
) -> AsyncIterator[Segue]:
    """Segue's real app on a loopback port, its Telegram connector pointed
    at `fake`: answering with `policy` (else the shipped dialogs), the
    connector's `options` (TelegramOptions fields) changed as given."""
    port = free_port()  # the webhook's address is set before the app starts
    settings = Settings(
        telegram_token=TOKEN,
        telegram_mode=mode,
        telegram_webhook_secret=secret,
        telegram_webhook_url=f"http://127.0.0.1:{port}/telegram/webhook",
        telegram_api_url=fake.url,
        webchat_secret="w" * 32,
    )

    def configure(segue: Segue) -> None:
        if policy is not None:
            segue.engine.policy = policy
        connector = segue.connectors["telegram"]
        assert isinstance(connector, TelegramConnector)
        if options:
            connector.options = replace(connector.options, **options)

    async with serve_segue(settings, store=store, port=port, configure=configure) as app:
        yield app.segue


async def history_of(segue: Segue) -> list[HistoryEntry]:
    """The history of the customer who writes from Telegram (`CUSTOMER`)."""
    identity = ChannelIdentity("telegram", str(CUSTOMER["id"]))
    return await segue.store.history(await segue.store.resolve_customer(identity, "-"), 100)


def recording(segue: Segue, monkeypatch: pytest.MonkeyPatch) -> list[Inbound]:
    """Every inbound message as it reaches the engine."""
    received: list[Inbound] = []
    process = segue.engine.process

    async def record(inbound: Inbound) -> Turn:
        received.append(inbound)
        return await process(inbound)

    monkeypatch.setattr(segue.engine, "process", record)
    return received
