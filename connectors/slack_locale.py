"""The Slack user's language and profile, as hints for the turn.

Slack's events and button presses do not say which language the person
uses, nor their name; the Web API's `users.info` does, when asked with
`include_locale` ("en-US", "de-DE"), with the user's real and display names
and time zone (and e-mail address, with the `users:read.email` scope).
Asking on every turn would cost a call each, so answers are kept per user in
this process, for at most `MAX_USERS` users: the locale for an hour, after
which the next turn asks again (and so refreshes the profile too); the
profile for a day, so a lookup that fails within it still gives the last
one. The hints are never worth a turn: a lookup that fails (an error, a
missing `users:read` scope, no answer within `TIMEOUT_SECONDS`) gives no
locale, is asked again only after `RETRY_AFTER_SECONDS`, and is logged at
WARNING once per kind of failure, never with what Slack said about the user.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.core.profile import Profile, profile_of

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 2.0
KNOWN_SECONDS = 3600.0
PROFILE_SECONDS = 86_400.0
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


@dataclass(frozen=True, slots=True)
class SlackUser:
    """What users.info said about one user: `until` when to ask again,
    `profile_until` how long the profile may still be given meanwhile."""

    locale: str | None
    profile: Profile | None
    until: float
    profile_until: float


class SlackLocales:
    """Each Slack user's locale and profile, looked up with `users_info`
    and kept a while."""

    def __init__(
        self,
        users_info: UsersInfo,
        *,
        timeout_seconds: float = TIMEOUT_SECONDS,
        known_seconds: float = KNOWN_SECONDS,
        profile_seconds: float = PROFILE_SECONDS,
        retry_after_seconds: float = RETRY_AFTER_SECONDS,
        max_users: int = MAX_USERS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._users_info = users_info
        self.timeout_seconds = timeout_seconds
        self.known_seconds = known_seconds
        self.profile_seconds = profile_seconds
        self.retry_after_seconds = retry_after_seconds
        self.max_users = max_users
        self._clock = clock
        # (team, user) -> what was last heard; least recently used first.
        self._kept: OrderedDict[tuple[str, str], SlackUser] = OrderedDict()
        self._warned: set[str] = set()

    async def locale(self, team: str, user: str) -> str | None:
        """`user`'s locale, or None when Slack does not say or cannot be asked."""
        return (await self.about(team, user)).locale

    async def about(self, team: str, user: str) -> SlackUser:
        """What Slack says of `user`: their locale and profile, each None
        when Slack does not say or cannot be asked."""
        key = (team, user)
        now = self._clock()
        kept = self._kept.get(key)
        if kept is not None and kept.until > now:
            self._kept.move_to_end(key)
            return self._fresh(kept, now)
        try:
            async with asyncio.timeout(self.timeout_seconds):
                answer = await self._users_info(user)
        except Exception as exc:
            self._failed(_reason(exc))
            now = self._clock()
            # The profile heard within the day still stands; the locale waits.
            profile, profile_until = None, now
            if kept is not None and kept.profile is not None and kept.profile_until > now:
                profile, profile_until = kept.profile, kept.profile_until
            return self._keep(key, SlackUser(None, profile, now + self.retry_after_seconds,
                                             profile_until))
        now = self._clock()
        return self._keep(key, SlackUser(locale_in(answer), profile_in(answer),
                                         now + self.known_seconds, now + self.profile_seconds))

    @staticmethod
    def _fresh(kept: SlackUser, now: float) -> SlackUser:
        if kept.profile is not None and kept.profile_until <= now:
            return SlackUser(kept.locale, None, kept.until, kept.profile_until)
        return kept

    def _keep(self, key: tuple[str, str], user: SlackUser) -> SlackUser:
        self._kept[key] = user
        self._kept.move_to_end(key)
        while len(self._kept) > self.max_users:
            self._kept.popitem(last=False)
        return user

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


def profile_in(answer: Mapping[str, Any]) -> Profile | None:
    """The profile of a users.info answer: the real name (as `name`), the
    display name, first and last names and e-mail address the user set, the
    workspace's time zone for them (`tz`, "Europe/Berlin") and their locale
    (as `language`)."""
    user = answer.get("user")
    if not isinstance(user, dict):
        return None
    details = user.get("profile")
    details = details if isinstance(details, dict) else {}
    return profile_of(name=user.get("real_name") or details.get("real_name"),
                      display_name=details.get("display_name"),
                      first_name=details.get("first_name"), last_name=details.get("last_name"),
                      email=details.get("email"), time_zone=user.get("tz"),
                      language=locale_in(answer))


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
