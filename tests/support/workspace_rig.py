"""Helpers for the agent workspace's browser tests (no tests here): the
console signed in on a page, the desk's clock set by the test, a visitor
the host site signed in with a name, and what a web chat socket got."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from playwright.async_api import Browser, BrowserContext, Locator, Page, expect

from bot.core.tokens import sign_host_identity
from bot.handoff.desk import HandoffDesk
from tests.support.app_server import RunningApp
from tests.support.browser import sign_in
from tests.support.handoff_rig import PASSWORDS, WEB_SECRET
from tests.support.webchat_client import WebChatClient


class Clock:
    """Time as the desk reads it, moved by the test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def desk_of(app: RunningApp) -> HandoffDesk:
    assert app.segue.handoff is not None
    return app.segue.handoff.desk


def set_clock(app: RunningApp, now: float) -> Clock:
    """The desk's clock (the queue, claims, closes, ratings) stopped at `now`."""
    clock = Clock(now)
    desk_of(app).clock = clock
    return clock


def signed_identity(user: str, **claims: str) -> str:
    """A host site's identity token for `user`, with `name`, `email`, … claims."""
    return sign_host_identity(user, WEB_SECRET, expires_at=int(time.time()) + 600, **claims)


async def console(opener: Browser | BrowserContext, app: RunningApp, name: str,
                  password: str | None = None, *, fake_clock: bool = False) -> Page:
    """A new page of `opener` with the console open, `name` signed in and
    live; with `fake_clock`, the page's timers move when the test says
    (`page.clock`), its time otherwise flowing as usual."""
    page = await opener.new_page()
    if fake_clock:
        await page.clock.install()
    await page.goto(f"{app.base_url}/agent/")
    await sign_in(page, name, password or PASSWORDS[name])
    await expect(page.locator("#live")).to_have_text("live")
    return page


def list_item(page: Page, listing: str, customer: str) -> Locator:
    """The item of `customer` in the console's `#queue` or `#mine` list."""
    return page.locator(f"#{listing} li[data-customer='{customer}']")


async def open_from(page: Page, listing: str, customer: str) -> Locator:
    """`customer`'s conversation opened from a list; the timeline."""
    await list_item(page, listing, customer).click()
    await expect(page.locator("#conversation")).to_be_visible()
    await expect(page.locator("#conv-id, #conv-title").filter(has_text=customer)).to_have_count(1)
    return page.locator("#history")


async def frames_until(client: WebChatClient,
                       last: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """Every frame the web chat socket gets up to the one `last` accepts, that one included."""
    frames: list[dict[str, Any]] = []
    async with asyncio.timeout(10):
        while not frames or not last(frames[-1]):
            frames.append(await client.receive())
    return frames


def carries(frames: list[dict[str, Any]], text: str) -> bool:
    """Whether `text` is anywhere in `frames`."""
    return any(text in json.dumps(frame, ensure_ascii=False) for frame in frames)
