"""Fixtures of the integration tests that send through a real connector:
Segue on the local Telegram fake, and the Slack connector on the local Slack
fake, both on a real Redis. A test module may define its own of these names."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.assembly.app import Segue
from connectors.slack import SlackConnector
from context_store import RedisContextStore
from tests.fakes.slack_api import FakeSlackApi
from tests.fakes.telegram_api import FakeTelegram
from tests.support.slack_rig import running_segue
from tests.support.telegram_rig import segue_on_fake


@pytest.fixture
async def telegram(telegram_api: FakeTelegram, redis_url: str) -> AsyncIterator[Segue]:
    """Segue, its Telegram connector on `telegram_api`."""
    async with segue_on_fake(telegram_api, RedisContextStore.from_url(redis_url)) as running:
        yield running


@pytest.fixture
async def slack(slack_api: FakeSlackApi, redis_store: RedisContextStore
                ) -> AsyncIterator[SlackConnector]:
    """Segue's Slack connector on `slack_api`."""
    async with running_segue(slack_api, redis_store) as rig:
        connector = rig.segue.connectors["slack"]
        assert isinstance(connector, SlackConnector)
        yield connector
