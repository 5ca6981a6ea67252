"""What the widget does when the server does not take a message, in a real
headless Chromium: a store that is away gets the message again after 2 s,
then 4 s …, with a notice in the visitor's language until it is taken; a
message refused for what it is (too long) is marked "Not sent" and never sent
again; a message the server would find blank is not sent at all.

Real app on loopback on a real Redis, stopped and started again on its port
where the store has to be away."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from tests.support.app_server import RunningApp, serve_echo
from tests.support.browser import send
from tests.support.redis_server import free_port, redis_server
from tests.support.widget_rig import DESKTOP, SOCKET_SPY, Received, sends_of

ENGLISH = {"field": "Message", "button": "Send", "sending": "Sending", "you": "You:",
           "retrying": "Not sent yet \u2014 trying again\u2026"}
GERMAN = {"field": "Nachricht", "button": "Senden",
          "retrying": "Noch nicht gesendet \u2013 neuer Versuch\u2026", "sending": "Wird gesendet",
          "you": "Sie:"}
LONGEST = 40


async def spied_page(browser: Browser, url: str, locale: str = "en-US") -> tuple[Page, Received]:
    context = await browser.new_context(locale=locale, **DESKTOP)
    await context.add_init_script(SOCKET_SPY)
    page = await context.new_page()
    received = Received(page)
    await page.clock.install()
    await page.goto(url)
    return page, received


@pytest.mark.parametrize(("locale", "words"), [("en-US", ENGLISH), ("de-DE", GERMAN)])
async def test_a_message_the_store_could_not_take_is_sent_again_until_it_is_taken(
    browser: Browser, locale: str, words: dict[str, str]
) -> None:
    port = free_port()
    question, again = "are you there?", "still there?"
    with ExitStack() as first_redis:
        url = first_redis.enter_context(redis_server(port))
        async with serve_echo(url) as app:
            page, received = await spied_page(browser, f"{app.base_url}/webchat/", locale)
            log, status = page.get_by_role("log"), page.locator("#segue-chat .sg-status")
            await send(page, "hello", field=words["field"], button=words["button"])
            await expect(log.locator(".sg-bot")).to_have_count(1)
            # From here on the page's timers run only when the test says.
            await page.clock.pause_at(await page.evaluate("() => Date.now() + 1000"))

            first_redis.close()  # Redis goes away under the open chat
            await send(page, question, field=words["field"], button=words["button"])
            assert await received.error_count(1) == ["store_unavailable"]
            waiting = log.locator(".sg-row-customer").last
            await expect(waiting.locator(".sg-customer.sg-pending")).to_have_count(1)
            await expect(waiting.locator(".sg-sr")).to_have_text([words["you"], words["sending"]])
            # The widget's own words, not the server's English "send again".
            await expect(status).to_have_text(words["retrying"])
            # Sent again after 2 s; refused again, then after 4 s.
            await page.clock.run_for(1999)
            assert await sends_of(page, question) == 1
            await page.clock.run_for(1)
            assert await sends_of(page, question) == 2
            assert await received.error_count(2) == ["store_unavailable"] * 2
            await page.clock.run_for(3999)
            assert await sends_of(page, question) == 2
            await expect(status).to_have_text(words["retrying"])

            with ExitStack() as second_redis:
                second_redis.enter_context(redis_server(port))  # Redis is back
                await page.clock.run_for(1)
                assert await sends_of(page, question) == 3
                await expect(log.locator(".sg-bot .sg-text").last).to_have_text(
                    f"You said: {question}")
                await expect(log.locator(".sg-pending")).to_have_count(0)
                await expect(waiting.locator(".sg-sr")).to_have_text([words["you"]])
                await expect(status).to_have_text("")

                # Once a message was taken, the next refusal waits 2 s again.
                second_redis.close()
                await send(page, again, field=words["field"], button=words["button"])
                assert await received.error_count(3) == ["store_unavailable"] * 3
                await expect(status).to_have_text(words["retrying"])
                await page.clock.run_for(1999)
                assert await sends_of(page, again) == 1
                with redis_server(port):
                    await page.clock.run_for(1)
                    assert await sends_of(page, again) == 2
                    await expect(log.locator(".sg-bot .sg-text").last).to_have_text(
                        f"You said: {again}")
                    await expect(status).to_have_text("")
                    assert received.errors() == ["store_unavailable"] * 3
            await page.context.close()


@pytest.fixture
def app_settings() -> dict[str, Any]:
    return {"max_text_length": LONGEST}


async def test_a_message_refused_as_too_long_is_marked_not_sent_and_never_sent_again(
    app: RunningApp, browser: Browser
) -> None:
    page, received = await spied_page(browser, f"{app.base_url}/webchat/")
    log = page.get_by_role("log")
    too_long = "x" * (LONGEST + 1)
    await send(page, too_long)
    assert await received.error_count(1) == ["text_too_long"]
    refused = log.locator(".sg-row-customer").last
    # Marked, in words a person sees and a screen reader says; no spinner.
    await expect(refused.locator(".sg-customer.sg-failed")).to_have_text(too_long)
    await expect(refused.locator(".sg-state")).to_have_text("Not sent")
    await expect(refused.locator(".sg-state")).to_be_visible()
    await expect(log.locator(".sg-pending")).to_have_count(0)
    # The server's own words say why.
    await expect(page.locator("#segue-chat .sg-status")).to_contain_text("too long")
    await send(page, "short")
    await expect(log.locator(".sg-bot .sg-text")).to_have_text(["You said: short"])
    await expect(log.locator(".sg-pending")).to_have_count(0)
    # The connection drops and comes back: what is not acknowledged is sent
    # again, but not the refused one, still shown as not sent.
    await page.evaluate("() => window.__sockets.at(-1).close()")
    await expect(page.locator("#segue-chat .sg-status")).to_have_text("Reconnecting\u2026")
    await expect(page.locator("#segue-chat .sg-status")).to_have_text("")
    await expect(log.locator(".sg-customer")).to_have_text(["short", too_long])
    await expect(log.locator(".sg-customer.sg-failed")).to_have_text([too_long])
    assert await sends_of(page, too_long) == 1
    assert received.errors() == ["text_too_long"]
    await page.context.close()


async def test_a_message_the_server_finds_blank_is_not_sent(
    app: RunningApp, browser: Browser
) -> None:
    page, received = await spied_page(browser, f"{app.base_url}/webchat/")
    log = page.get_by_role("log")
    # Blank to the server's str.strip(), though not all of it to JavaScript's trim().
    for blank in ("\x85", "\x1c\x1d\x1e\x1f", "\u3000\u2028\u205f", " \xa0\t"):
        await send(page, blank)
    # A zero-width no-break space is no blank to the server: it is sent and answered.
    await send(page, "\ufeff")
    await expect(log.locator(".sg-bot .sg-text")).to_have_text(["You said: \ufeff"])
    await send(page, "hello")
    await expect(log.locator(".sg-bot")).to_have_count(2)
    await expect(log.locator(".sg-customer")).to_have_count(2)
    await expect(log.locator(".sg-pending")).to_have_count(0)
    sent = await page.evaluate(
        "() => window.__sent.filter(f => f.type === 'message').map(f => f.text)")
    assert sent == ["\ufeff", "hello"] and received.errors() == []
    await page.context.close()
