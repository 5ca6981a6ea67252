"""The widget on a shop's page whose own style sheet sets broad rules for
spans, divs, buttons and inputs, in a real headless Chromium: none of them
reaches into the widget, which looks exactly as on a page without them."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Browser, expect

from tests.support.app_server import RunningApp
from tests.support.browser import host_site, send
from tests.support.widget_rig import DESKTOP, embed_page

# Rules a shop's theme might well have, none of them meant for the chat.
HOST_RULES = """<style>
span, div, a { padding: 20px; margin: 7px; border: 3px solid red; width: 300px;
               min-height: 40px; font-size: 22px; line-height: 3; text-align: center;
               background: yellow; color: red; text-decoration: line-through;
               letter-spacing: 2px; box-shadow: 0 0 9px red; white-space: nowrap; }
span, a { display: block; float: left; }
button { padding: 30px; width: 200px; height: 80px; min-width: 120px; max-width: 300px;
         border: 4px solid red; border-radius: 0; background: red; color: yellow;
         font: italic 30px/2 serif; text-transform: uppercase; box-shadow: 0 0 10px red; }
input { padding: 25px; width: 400px; height: 70px; border: 5px solid red; font-size: 30px;
        background: yellow; }
svg { width: 100px; height: 100px; }
</style>"""
PARTS = [".sg-title", ".sg-close", ".sg-log", ".sg-input", ".sg-send", ".sg-send svg",
         ".sg-customer", ".sg-customer .sg-text", ".sg-bot", ".sg-bot .sg-name",
         ".sg-buttons button", ".sg-row-bot .sg-avatar", ".sg-text a"]
LOOK = ["padding-top", "padding-left", "border-top-width", "border-top-left-radius", "font-size",
        "line-height", "font-style", "color", "background-color", "text-decoration-line",
        "text-transform", "box-shadow", "text-align", "white-space", "display", "float"]


async def widget_on(browser: Browser, page_html: str) -> dict[str, Any]:
    """Where each of `PARTS` is and how it looks, in the open widget with a
    short conversation, on a page of `page_html`."""
    context = await browser.new_context(**DESKTOP)
    page = await context.new_page()
    async with host_site(page_html) as shop:
        await page.goto(shop)
        launcher = await page.locator(".sg-launcher").evaluate(
            "node => JSON.stringify(node.getBoundingClientRect())")
        await page.locator(".sg-launcher").click()
        await send(page, "hello")
        await expect(page.locator(".sg-bot .sg-buttons button")).to_have_count(2)
        await send(page, "see https://shop.example/cart")
        await expect(page.locator(".sg-bot")).to_have_count(2)
        await expect(page.locator(".sg-pending")).to_have_count(0)
        await page.locator(".sg-panel").evaluate(
            "panel => Promise.all(panel.getAnimations().map(a => a.finished))")
        seen: dict[str, Any] = await page.evaluate("""([parts, look]) => {
            const seen = {};
            for (const part of parts) {
                const node = document.querySelector('#segue-chat ' + part);
                const style = getComputedStyle(node), box = node.getBoundingClientRect();
                seen[part] = {box: [box.x, box.y, box.width, box.height],
                              style: look.map(name => style.getPropertyValue(name))};
            }
            return seen;
        }""", [PARTS, LOOK])
        seen["launcher"] = launcher
    await context.close()
    return seen


async def test_a_shops_own_broad_rules_do_not_reach_into_the_widget(
    app: RunningApp, browser: Browser
) -> None:
    plain = await widget_on(browser, embed_page(app))
    themed = await widget_on(browser, embed_page(app).replace("</head>", HOST_RULES + "</head>"))
    # The send button is still a 44 px circle, as on a plain page.
    send_button = themed[".sg-send"]
    assert send_button["box"][2:] == [44, 44], send_button
    assert send_button["style"][LOOK.index("border-top-left-radius")] == "50%", send_button
    for part in ["launcher", *PARTS]:
        assert themed[part] == plain[part], part
