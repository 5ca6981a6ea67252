"""The admins' report in the agent console, in a real headless Chromium: a
scripted day of handoffs (claimed, answered, closed and rated through the
agent API and the web chat, on a clock the test moves) and the figures the
report panel shows for it, per agent and overall, as worked out by hand;
"—" where there is nothing to count; the API's words for a bad period; no
report for an agent who is not an admin."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import aiohttp
from playwright.async_api import Browser, Page, expect

from tests.support.app_server import RunningApp
from tests.support.handoff_rig import agent, hand_off, web_customer
from tests.support.workspace_rig import Clock, console, set_clock

DAY = datetime(2026, 11, 20, tzinfo=UTC).timestamp()
# (agent, hour of the request, first response and resolution in seconds
# after it, the customer's rating): the day the report is asked for.
SCRIPT = [("ann", 9, 60, 600, 4), ("ann", 10, 120, 1200, 5), ("ann", 11, None, 300, None),
          ("bob", 14, 30, 900, 3), ("bob", 15, 90, 1500, None)]
# Worked out by hand from SCRIPT, as the panel writes them:
# ann: first responses 60, 120 -> 90 s; resolutions 300, 600, 1200 -> 600 s; ratings 4, 5.
# bob: 30, 90 -> 60 s; 900, 1500 -> 1200 s; rating 3.
# overall: 30, 60, 90, 120 -> 75 s; 300, 600, 900, 1200, 1500 -> 900 s; 4, 5, 3 -> 4.
ANN = ["3", "1 min 30 s", "10 min", "4.5 (2)"]
BOB = ["2", "1 min", "20 min", "3 (1)"]
OVERALL = ["5", "1 min 15 s", "15 min", "4 (3)"]


async def handoff(http: aiohttp.ClientSession, app: RunningApp, clock: Clock, name: str, *,
                  start: float, first_response: float | None, resolution: float,
                  score: int | None) -> None:
    """A web chat customer asks for a person at `start`; `name` claims it,
    answers after `first_response` seconds (or never), closes it after
    `resolution` seconds; the customer then rates it `score` (or not)."""
    client = await web_customer(http, app)
    clock.now = start
    await hand_off(client)
    customer = client.customer or ""
    holder = await agent(http, app, name)
    await holder.act(customer, "claim")
    if first_response is not None:
        clock.now = start + first_response
        await holder.act(customer, "messages", {"text": "Let me check."})
    clock.now = start + resolution
    await holder.act(customer, "close")
    if score is not None:
        await client.turn(str(score), payload=f"csat:{score}")
    await client.close()


async def show_report(page: Page, first: str, last: str) -> None:
    await page.locator("#report-from").fill(first)
    await page.locator("#report-to").fill(last)
    await page.get_by_role("button", name="Show").click()


async def test_the_report_panel_shows_a_scripted_day_per_agent_and_overall(
    desk_app: RunningApp, browser: Browser, http: aiohttp.ClientSession
) -> None:
    clock = set_clock(desk_app, DAY)
    for name, hour, first, resolution, score in SCRIPT:
        await handoff(http, desk_app, clock, name, start=DAY + hour * 3600,
                      first_response=first, resolution=resolution, score=score)
    # The day before: one nobody answered or rated.
    await handoff(http, desk_app, clock, "ann", start=DAY - 3600, first_response=None,
                  resolution=20, score=None)

    today = datetime.now(UTC).date()
    page = await console(browser, desk_app, "root")
    await page.get_by_role("button", name="Report").click()
    panel = page.get_by_role("dialog", name="Report")
    await expect(panel).to_be_visible()
    # By default the last 7 UTC days up to today, as the server counts them.
    await expect(page.locator("#report-period")).not_to_be_empty()
    shown_last = date.fromisoformat(await page.locator("#report-to").input_value())
    assert shown_last in (today, datetime.now(UTC).date())
    assert await page.locator("#report-from").input_value() == (
        shown_last - timedelta(days=6)).isoformat()
    await expect(page.locator("#report-period")).to_have_text(
        f"{shown_last - timedelta(days=6)} to {shown_last} (UTC)")

    await show_report(page, "2026-11-20", "2026-11-20")
    await expect(page.locator("#report-period")).to_have_text("2026-11-20 (UTC)")
    await expect(page.locator("#report-agents tr th")).to_have_text(["ann", "bob"])
    await expect(page.locator("#report-agents tr[data-agent='ann'] td")).to_have_text(ANN)
    await expect(page.locator("#report-agents tr[data-agent='bob'] td")).to_have_text(BOB)
    await expect(page.locator("#report-overall dd")).to_have_text(OVERALL)
    await expect(page.locator("#report-overall dt")).to_have_text(
        ["Handled", "Median first response", "Median resolution", "CSAT average (ratings)"])

    # Nothing to count is "—".
    await show_report(page, "2026-11-19", "2026-11-19")
    await expect(page.locator("#report-agents tr[data-agent='ann'] td")).to_have_text(
        ["1", "—", "20 s", "—"])
    await expect(page.locator("#report-agents tr")).to_have_count(1)
    await show_report(page, "2026-11-01", "2026-11-02")
    await expect(page.locator("#report-overall dd")).to_have_text(["0", "—", "—", "—"])
    await expect(page.locator("#report-agents tr")).to_have_count(0)
    await expect(page.locator("#report-none")).to_be_visible()

    # A refused period: the API's own words.
    await show_report(page, "2026-11-21", "2026-11-20")
    await expect(page.locator("#report-error")).to_have_text("'from' must not be after 'to'")
    await expect(page.locator("#report-result")).to_be_hidden()
    await show_report(page, "2026-11-19", "2026-11-20")
    await expect(page.locator("#report-error")).to_be_empty()
    await expect(page.locator("#report-overall dd").first).to_have_text("6")

    await panel.get_by_role("button", name="Close").click()
    await expect(panel).to_be_hidden()
    await page.close()


async def test_an_agent_who_is_not_an_admin_has_no_report(
    desk_app: RunningApp, browser: Browser
) -> None:
    page = await console(browser, desk_app, "ann")
    await expect(page.locator("#me")).to_have_text("ann (agent)")
    await expect(page.locator("#report-open")).to_be_hidden()
    await expect(page.get_by_role("button", name="Report")).to_have_count(0)
    await page.close()
