"""Headless Chromium for tests of what a person sees.

Debian's `chromium` is driven by Playwright; the browser is never downloaded.
When it is missing the test set-up installs it from the system packages (the
test machines run as root), so browser tests never skip.
"""

from __future__ import annotations

from tests.support.system_packages import ensure_binary

CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def chromium_path() -> str:
    return ensure_binary("chromium", "chromium")
