"""Helpers for the handoff tests (no tests here): Segue's real app on loopback
with the demo bot on a real Redis, console accounts, and a small client of the
agent API and its live WebSocket."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from argon2 import PasswordHasher

from bot.core.settings import Settings
from bot.handoff.ports import AgentAccount
from context_store import RedisContextStore
from tests.support.app_server import RunningApp, serve_segue
from tests.support.webchat_client import WebChatClient

WEB_SECRET = "handoff-tests-web-secret"
PASSWORDS = {"ann": "ann-pass-1", "bob": "bob-pass-1", "root": "root-pass-1"}
# Hashes verify with the cost they were made with: cheap ones keep tests fast.
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
ACCOUNTS = [AgentAccount(username=name, display_name=name, password_hash=CHEAP_HASHER.hash(pw),
                         role="admin" if name == "root" else "agent")
            for name, pw in PASSWORDS.items()]


def handoff_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"webchat_secret": "handoff-tests-server-secret",
                              "webchat_identity_secret": WEB_SECRET,
                              "business_hours": "Mon-Fri 9-17 CET"}
    values.update(overrides)
    return Settings(**values)


async def add_accounts(app: RunningApp) -> None:
    """Console accounts ann, bob (agents) and root (admin)."""
    assert app.segue.handoff is not None
    for account in ACCOUNTS:
        await app.segue.handoff.agents.put_agent(account)


@asynccontextmanager
async def running(redis_url: str, **overrides: Any) -> AsyncIterator[RunningApp]:
    """One worker on Redis with the demo bot and the console accounts."""
    store = RedisContextStore.from_url(redis_url)  # closed by the app's cleanup
    async with serve_segue(handoff_settings(**overrides), store=store) as app:
        await add_accounts(app)
        yield app


class AgentClient:
    """The agent API over HTTP with a bearer token, and the live socket."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str) -> None:
        self.http = http
        self.base_url = base_url
        self.token: str | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.events: list[dict[str, Any]] = []

    async def login(self, username: str, password: str | None = None) -> AgentClient:
        status, body = await self.call("POST", "login", {
            "username": username, "password": password or PASSWORDS[username]})
        assert status == 200, body
        self.token = body["token"]
        return self

    async def call(self, method: str, path: str, body: Any = None, *,
                   token: str | None = None, raw: str | None = None,
                   headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        sent = dict(headers or {})
        token = token if token is not None else self.token
        if token:
            sent["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        if data is not None:
            sent.setdefault("Content-Type", "application/json")
        url = f"{self.base_url}/agent/api/{path}"
        async with self.http.request(method, url, data=data, headers=sent) as resp:
            return resp.status, await resp.json()

    async def conversation(self, customer: str) -> dict[str, Any]:
        status, body = await self.call("GET", f"conversations/{customer}")
        assert status == 200, body
        return body

    async def act(self, customer: str, action: str, body: Any = None) -> dict[str, Any]:
        status, answer = await self.call("POST", f"conversations/{customer}/{action}", body)
        assert status == 200, answer
        return answer

    async def listen(self) -> AgentClient:
        assert self.token is not None
        self.ws = await self.http.ws_connect(
            f"{self.base_url}/agent/ws", headers={"Authorization": f"Bearer {self.token}"})
        hello = await self._receive()
        assert hello["type"] == "hello", hello
        return self

    async def _receive(self, timeout: float = 10) -> dict[str, Any]:
        assert self.ws is not None
        msg = await self.ws.receive(timeout=timeout)
        assert msg.type == aiohttp.WSMsgType.TEXT, (msg.type, msg.data)
        event: dict[str, Any] = json.loads(msg.data)
        return event

    async def event(self, kind: str, *, text: str | None = None,
                    timeout: float = 10) -> dict[str, Any]:
        """The next live event of `kind` (and, for messages, with `text`)."""
        async with asyncio.timeout(timeout):
            while True:
                event = await self._receive(timeout)
                self.events.append(event)
                if event["type"] != kind:
                    continue
                if text is None or event.get("entry", {}).get("text") == text:
                    return event

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


async def agent(http: aiohttp.ClientSession, app: RunningApp, name: str,
                password: str | None = None) -> AgentClient:
    """An agent signed in on `app` (with the console password of `name`
    unless `password`)."""
    return await AgentClient(http, app.base_url).login(name, password)


async def wrong_logins(client: AgentClient, usernames: list[str], *,
                       headers: dict[str, str] | None = None) -> None:
    """A wrong password for each of `usernames`, in turn; each is refused as wrong."""
    for username in usernames:
        status, _ = await client.call("POST", "login", {"username": username, "password": "x"},
                                      headers=headers)
        assert status == 401, username


async def web_customer(http: aiohttp.ClientSession, app: RunningApp,
                       session: str | None = None) -> WebChatClient:
    return await WebChatClient.connect(http, app.ws_url, session=session)


async def hand_off(client: WebChatClient) -> list[dict[str, Any]]:
    """The customer asks for a person; the bot's replies (its words, then the queue notice)."""
    return await client.turn("talk to a human", expect=2)


async def claimed_chat(http: aiohttp.ClientSession, app: RunningApp,
                       name: str = "ann") -> tuple[WebChatClient, str, AgentClient]:
    """A web chat customer who asked for a person, and agent `name`, who
    claimed the conversation: the customer's client, their id, the agent."""
    client = await web_customer(http, app)
    await hand_off(client)
    customer = client.customer or ""
    holder = await agent(http, app, name)
    await holder.act(customer, "claim")
    return client, customer, holder


async def agent_frame(client: WebChatClient, timeout: float = 10) -> dict[str, Any]:
    """The next message frame from an agent on a customer's web chat. A bot
    message before it fails: while a person holds the chat the bot is silent."""
    async with asyncio.timeout(timeout):
        while True:
            frame = await client.receive(timeout)
            if frame["type"] == "error":
                raise AssertionError(f"error frame: {frame}")
            if frame["type"] != "message":
                continue
            if frame["sender"] != "agent":
                raise AssertionError(f"expected an agent's message, got {frame}")
            return frame
