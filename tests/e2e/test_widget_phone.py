"""The widget on a phone, in a real headless Chromium emulating one (390 ×
844, touch, mobile viewport): the open panel is the whole screen with its
input and close button on it, also when the on-screen keyboard takes part
of the screen; closed, the launcher is on screen; the demo page fits."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Browser, Page, expect

from tests.support.app_server import RunningApp
from tests.support.browser import host_site, send
from tests.support.widget_rig import PHONE, embed_page

WIDTH, HEIGHT = PHONE["viewport"]["width"], PHONE["viewport"]["height"]


async def box(page: Page, selector: str) -> dict[str, Any]:
    """Where `selector` is once the panel's opening animation has ended."""
    await page.locator(".sg-panel").evaluate(
        "panel => Promise.all(panel.getAnimations().map(a => a.finished))")
    found = await page.locator(selector).bounding_box()
    assert found is not None, f"{selector} is not shown"
    return {key: round(value, 2) for key, value in found.items()}


def inside(found: dict[str, Any], width: float, height: float) -> bool:
    return (found["x"] >= 0 and found["y"] >= 0 and found["x"] + found["width"] <= width
            and found["y"] + found["height"] <= height)


async def test_the_open_panel_fills_a_phones_screen_with_input_and_close_on_it(
    app: RunningApp, browser: Browser
) -> None:
    context = await browser.new_context(**PHONE)
    page = await context.new_page()
    await page.goto(f"{app.base_url}/webchat/")
    await expect(page.get_by_role("dialog", name="Support")).to_be_visible()
    await send(page, "hello")
    await expect(page.locator(".sg-bot .sg-text")).to_have_text(["Hi! What would you like to do?"])
    panel = await box(page, ".sg-panel")
    assert panel == {"x": 0, "y": 0, "width": WIDTH, "height": HEIGHT}, panel
    for part in (".sg-input", ".sg-send", ".sg-close", ".sg-title"):
        assert inside(await box(page, part), WIDTH, HEIGHT), part
    styles = await page.evaluate("""() => {
        const panel = getComputedStyle(document.querySelector('#segue-chat .sg-panel'));
        const input = getComputedStyle(document.querySelector('#segue-chat .sg-input'));
        return {radius: panel.borderTopLeftRadius, position: panel.position,
                font: parseFloat(input.fontSize)};
    }""")
    # No rounded corners; 16 px text in the input, or iOS zooms in on it.
    assert styles == {"radius": "0px", "position": "fixed", "font": 16}, styles
    await context.close()


async def test_the_panel_follows_the_visual_viewport_when_the_keyboard_opens(
    app: RunningApp, browser: Browser
) -> None:
    context = await browser.new_context(**PHONE)
    page = await context.new_page()
    await page.goto(f"{app.base_url}/webchat/")
    await page.get_by_label("Message").tap()
    # The on-screen keyboard takes the lower 344 px: the visual viewport shrinks
    # and the browser says so, as a phone's does.
    await page.evaluate("""() => {
        const viewport = window.visualViewport;
        Object.defineProperty(viewport, 'height', {configurable: true, get: () => 500});
        viewport.dispatchEvent(new Event('resize'));
    }""")
    await expect(page.locator(".sg-panel")).to_have_css("height", "500px")
    assert inside(await box(page, ".sg-input"), WIDTH, 500)
    assert inside(await box(page, ".sg-close"), WIDTH, 500)
    # The keyboard goes away: the whole screen again.
    await page.evaluate("""() => {
        delete window.visualViewport.height;
        window.visualViewport.dispatchEvent(new Event('resize'));
    }""")
    await expect(page.locator(".sg-panel")).to_have_css("height", f"{HEIGHT}px")
    await context.close()


async def test_closed_the_launcher_is_on_screen_and_the_demo_page_does_not_overflow(
    app: RunningApp, browser: Browser
) -> None:
    context = await browser.new_context(**PHONE)
    page = await context.new_page()
    await page.goto(f"{app.base_url}/webchat/")
    await expect(page.get_by_role("dialog", name="Support")).to_be_visible()
    await page.get_by_role("button", name="Close chat").tap()
    launcher = page.get_by_role("button", name="Chat with us")
    await expect(launcher).to_be_visible()
    await expect(page.get_by_role("dialog")).to_have_count(0)
    assert inside(await box(page, ".sg-launcher"), WIDTH, HEIGHT)
    # The embed line wraps inside its box: nothing wider than the phone.
    widths = await page.evaluate(
        "() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1] == WIDTH, widths
    await launcher.tap()
    await expect(page.get_by_role("dialog", name="Support")).to_be_visible()
    await context.close()


async def test_on_a_phone_the_launcher_on_the_left_is_on_screen_too(
    app: RunningApp, browser: Browser
) -> None:
    context = await browser.new_context(**PHONE)
    page = await context.new_page()
    async with host_site(embed_page(app, position="left")) as shop:
        await page.goto(shop)
        launcher = await box(page, ".sg-launcher")
        assert inside(launcher, WIDTH, HEIGHT) and launcher["x"] < WIDTH / 2, launcher
        await page.get_by_role("button", name="Chat with us").tap()
        assert await box(page, ".sg-panel") == {"x": 0, "y": 0, "width": WIDTH, "height": HEIGHT}
    await context.close()


async def test_on_a_page_wider_than_the_phone_launcher_and_panel_stay_in_sight(
    app: RunningApp, browser: Browser
) -> None:
    # A host page that overflows: the layout viewport grows past the screen,
    # and fixed positions go by it, not by what the visitor sees.
    page_html = embed_page(app).replace("<main>", '<main><div style="width:1000px">wide</div>')
    context = await browser.new_context(**PHONE)
    page = await context.new_page()
    async with host_site(page_html) as shop:
        await page.goto(shop)
        assert await page.evaluate("() => window.innerWidth") > WIDTH
        assert inside(await box(page, ".sg-launcher"), WIDTH, HEIGHT)
        await page.get_by_role("button", name="Chat with us").tap()
        assert await box(page, ".sg-panel") == {"x": 0, "y": 0, "width": WIDTH, "height": HEIGHT}
        assert inside(await box(page, ".sg-close"), WIDTH, HEIGHT)
        await page.get_by_role("button", name="Close chat").tap()
        assert inside(await box(page, ".sg-launcher"), WIDTH, HEIGHT)
    await context.close()


async def test_on_a_phone_the_open_panel_is_modal_and_keeps_the_focus(
    app: RunningApp, browser: Browser
) -> None:
    # A shop's page with things of its own to focus, before and after the widget.
    page_html = embed_page(app, open="true").replace(
        "<main>", '<main><a href="#cart">Cart</a><button>Search</button>').replace(
        "</body>", "<button>Newsletter</button></body>")
    context = await browser.new_context(**PHONE)
    page = await context.new_page()
    async with host_site(page_html) as shop:
        await page.goto(shop)
        dialog = page.get_by_role("dialog", name="Support")
        await expect(dialog).to_have_attribute("aria-modal", "true")
        focused_in_widget = (
            "() => document.querySelector('#segue-chat').contains(document.activeElement)")
        # Opened by the page, with the focus still on the page: the first Tab
        # lands in the panel, not on the page it hides.
        await page.keyboard.press("Tab")
        assert await page.evaluate(focused_in_widget)
        field, send_button = page.get_by_label("Message"), page.get_by_role("button", name="Send")
        close = page.get_by_role("button", name="Close chat")
        await expect(field).to_be_focused()
        await send(page, "hello")
        await expect(page.locator(".sg-bot .sg-buttons button")).to_have_count(2)
        # Tab goes round: from Send to Close, and back with Shift+Tab.
        await send_button.focus()
        await page.keyboard.press("Tab")
        await expect(close).to_be_focused()
        await page.keyboard.press("Shift+Tab")
        await expect(send_button).to_be_focused()
        # All the way round, the focus never leaves the panel.
        for key in ["Tab"] * 8 + ["Shift+Tab"] * 8:
            await page.keyboard.press(key)
            assert await page.evaluate(focused_in_widget), key
        # Closed, the page is the page again.
        await close.focus()
        await page.keyboard.press("Enter")
        await expect(page.get_by_role("button", name="Chat with us")).to_be_focused()
        await page.keyboard.press("Tab")
        await expect(page.get_by_role("button", name="Newsletter")).to_be_focused()
        # Wider than a phone, the open panel leaves the page usable: not modal.
        await page.get_by_role("button", name="Chat with us").click()
        await expect(dialog).to_have_attribute("aria-modal", "true")
        await page.set_viewport_size({"width": 1024, "height": 768})
        await expect(dialog).not_to_have_attribute("aria-modal", "true")
        await send_button.focus()
        await page.keyboard.press("Tab")
        assert not await page.evaluate(focused_in_widget)
    await context.close()
