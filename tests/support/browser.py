"""Headless Chromium for tests of what a person sees, and the widget driven in it.

Debian's `chromium` is driven by Playwright; the browser is never downloaded.
When it is missing the test set-up installs it from the system packages (the
test machines run as root), so browser tests never skip.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web
from playwright.async_api import Page

from tests.support.system_packages import ensure_binary

CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def chromium_path() -> str:
    return ensure_binary("chromium", "chromium")


async def send(page: Page, text: str, *, field: str = "Message", button: str = "Send") -> None:
    """Type `text` into the web chat widget on `page` and press Send; `field`
    and `button` are their names in the widget's language."""
    await page.get_by_label(field).fill(text)
    await page.get_by_role("button", name=button).click()


async def sign_in(page: Page, username: str, password: str) -> None:
    """Fill in and send the agent console's login form on `page`."""
    await page.locator("#login-username").fill(username)
    await page.locator("#login-password").fill(password)
    await page.locator("#login-submit").click()


@asynccontextmanager
async def host_site(page: str) -> AsyncIterator[str]:
    """Another site, on its own loopback port, serving `page` at `/`: a shop
    that embeds the widget. Yields its base URL."""

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    host = web.Application()
    host.router.add_get("/", index)
    runner = web.AppRunner(host)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    address, port = runner.addresses[0][:2]
    try:
        yield f"http://{address}:{port}"
    finally:
        await runner.cleanup()
