"""Programs the tests need from the system packages, installed when missing.

The test machines run as root, so tests never skip for want of a server or a
browser: the set-up installs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess


def ensure_binary(binary: str, package: str) -> str:
    """The path of `binary`, installing Debian's `package` first if needed."""
    path = shutil.which(binary)
    if path:
        return path
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True, env=env)
    path = shutil.which(binary)
    if not path:
        raise RuntimeError(f"{binary} could not be installed from the package {package}")
    return path
