"""The Slack user's language, as a hint for the turn.

Slack's events and button presses do not say which language the person
uses; the Web API's `users.info` does, when asked with `include_locale`
("en-US", "de-DE"). Asking on every turn would cost a call each, so answers
are kept per user for an hour in this process, for at most `MAX_USERS`
users. The hint is never worth a turn: a lookup that fails (an error, a
missing `users:read` scope, no answer within `TIMEOUT_SECONDS`) gives None,
is asked again only after `RETRY_AFTER_SECONDS`, and is logged at WARNING
once per kind of failure.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 2.0
KNOWN_SECONDS = 3600.0
# A failed lookup is tried again after this: a missing scope or an outage
# would otherwise cost every turn a call and its wait.
RETRY_AFTER_SECONDS = 300.0
MAX_USERS = 10_000
MISSING_SCOPE = "missing_scope"
# A language tag as Slack writes one ("en-US", "zh-CN"): anything else is no hint.
_TAG = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*")
MAX_TAG = 35

# users.info's answer about one user id, as a mapping (`{"ok": …, "user": {…}}`).
UsersInfo = Callable[[str], Awaitable[Mapping[str, Any]]]


class SlackLocales:
    """Each Slack user's locale, looked up with `users_info` and kept a while."""

    def __init__(
        self,
        users_info: UsersInfo,
        *,
        timeout_seconds: float = TIMEOUT_SECONDS,
        known_seconds: float = KNOWN_SECONDS,
        retry_after_seconds: float = RETRY_AFTER_SECONDS,
        max_users: int = MAX_USERS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._users_info = users_info
        self.timeout_seconds = timeout_seconds
        self.known_seconds = known_seconds
        self.retry_after_seconds = retry_after_seconds
        self.max_users = max_users
        self._clock = clock
        # (team, user) -> (locale or None, when it is to be asked again);
        # least recently used first.
        self._kept: OrderedDict[tuple[str, str], tuple[str | None, float]] = OrderedDict()
        self._warned: set[str] = set()

    async def locale(self, team: str, user: str) -> str | None:
        """`user`'s locale, or None when Slack does not say or cannot be asked."""
        key = (team, user)
        now = self._clock()
        kept = self._kept.get(key)
        if kept is not None and kept[1] > now:
            self._kept.move_to_end(key)
            return kept[0]
        try:
            async with asyncio.timeout(self.timeout_seconds):
                answer = await self._users_info(user)
        except Exception as exc:
            self._failed(_reason(exc))
            self._keep(key, None, self._clock() + self.retry_after_seconds)
            return None
        locale = locale_in(answer)
        self._keep(key, locale, self._clock() + self.known_seconds)
        return locale

    def _keep(self, key: tuple[str, str], locale: str | None, until: float) -> None:
        self._kept[key] = (locale, until)
        self._kept.move_to_end(key)
        while len(self._kept) > self.max_users:
            self._kept.popitem(last=False)

    def _failed(self, reason: str) -> None:
        # Once per kind: a missing scope fails every lookup alike, and one
        # line tells the operator as much as a thousand.
        if reason in self._warned:
            log.debug("Slack user's locale not looked up: %s", reason)
            return
        self._warned.add(reason)
        hint = ""
        if reason == MISSING_SCOPE:
            hint = " (add the users:read scope and reinstall the app)"
        log.warning("Slack user's locale not looked up, replies go on without it: %s%s",
                    reason, hint)


def locale_in(answer: Mapping[str, Any]) -> str | None:
    """The `user.locale` of a users.info answer, if it is a language tag."""
    user = answer.get("user")
    locale = user.get("locale") if isinstance(user, dict) else None
    if isinstance(locale, str) and len(locale) <= MAX_TAG and _TAG.fullmatch(locale):
        return locale
    return None


def _reason(exc: Exception) -> str:
    """Why a lookup failed, in a few words: Slack's error code, never its
    whole answer (which describes the user)."""
    if isinstance(exc, SlackApiError):
        response = exc.response
        error = response.get("error") if response is not None else None
        if isinstance(error, str) and error:
            return error[:60]
        return f"HTTP {response.status_code}" if response is not None else "SlackApiError"
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return type(exc).__name__
