"""Headless Chromium for tests of what a person sees.

Debian's `chromium` is driven by Playwright; the browser is never downloaded.
When it is missing the test set-up installs it from the system packages (the
test machines run as root), so browser tests never skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess

CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def chromium_path() -> str:
    path = shutil.which("chromium")
    if path:
        return path
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env)
    path = shutil.which("chromium")
    if not path:
        raise RuntimeError("chromium could not be installed")
    return path
