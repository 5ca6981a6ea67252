"""Linking asks the person whose chat would be joined, and link codes resist
guessing: web chat sockets, a Telegram chat through a local Bot API server,
Segue's real app on loopback and a real Redis."""

from __future__ import annotations

import asyncio
import re
import secrets
from typing import Any

import aiohttp
import pytest

from tests.fakes.telegram_api import TOKEN, FakeTelegram
from tests.support.app_server import RunningApp, serve_echo
from tests.support.webchat_client import WebChatClient, raw_hello

PUBLIC_URL = "https://chat.example"
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
SHOWN_CODE = re.compile(rf"^[{ALPHABET}]{{4}}-[{ALPHABET}]{{4}}$")
CODE_IN_TEXT = re.compile(r"link code is (\S+?)\.\s")
NOT_VALID = "That code is not valid or has expired"
MUST_WAIT = "Too many wrong link codes"
TOO_MANY_CODES = "You have asked for several link codes just now"

ATTACKER_TEXT = "attacker here, waiting for someone to open my link"
VICTIM_TEXT = "my card ends in 4242 and my address is 1 Private Lane"
VICTIM_LATER = "my PIN is 9999"


@pytest.fixture
def app_settings() -> dict[str, Any]:
    return {"public_url": PUBLIC_URL}


async def connect(http: aiohttp.ClientSession, app: RunningApp, *, address: str | None = None,
                  **hello: Any) -> WebChatClient:
    """A client of `app`, from `address` as the trusted proxy names it."""
    return await WebChatClient.connect(http, app.ws_url, forwarded_for=address, **hello)


async def reply_to(client: WebChatClient, text: str, payload: str | None = None) -> str:
    """The text of the first reply to one message."""
    return str((await client.turn(text, payload=payload))[0]["text"])


def code_of(text: str) -> str:
    match = CODE_IN_TEXT.search(text)
    assert match is not None, text
    return match.group(1)


async def issue_code(client: WebChatClient) -> str:
    return code_of(await reply_to(client, "link"))


async def issued_from(http: aiohttp.ClientSession, app: RunningApp,
                      address: str) -> tuple[WebChatClient, str]:
    """A web chat at `address` that asked for a link code, and the code."""
    issuer = await connect(http, app, address=address)
    return issuer, await issue_code(issuer)


async def planted_link(http: aiohttp.ClientSession, app: RunningApp) -> tuple[WebChatClient, str]:
    """Someone with a conversation of their own asks for a link to hand out."""
    attacker = await connect(http, app)
    await attacker.turn(ATTACKER_TEXT)
    url = await attacker.web_link()
    assert url.startswith(f"{PUBLIC_URL}/webchat/?resume=")
    return attacker, url.split("resume=", 1)[1]


async def victim_with_a_conversation(
    http: aiohttp.ClientSession, app: RunningApp
) -> WebChatClient:
    victim = await connect(http, app)
    await victim.turn(VICTIM_TEXT)
    return victim


async def planted_link_opened(
    http: aiohttp.ClientSession, app: RunningApp
) -> tuple[WebChatClient, WebChatClient, WebChatClient, str]:
    """A planted link opened by someone with a conversation of their own, in
    a new tab: the attacker, the victim, the victim's new tab and the link."""
    attacker, token = await planted_link(http, app)
    victim = await victim_with_a_conversation(http, app)
    opened = await connect(http, app, session=victim.session, resume=token)
    return attacker, victim, opened, token


async def texts_seen_by(http: aiohttp.ClientSession, app: RunningApp,
                        session: str | None) -> tuple[str | None, list[str]]:
    """A fresh hello with a session: its customer and every text of its history."""
    again = await connect(http, app, session=session)
    await again.close()
    return again.customer, [m["text"] for m in again.history]


def random_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(8))


# A planted deep link.


async def test_a_planted_deep_link_asks_the_person_who_opened_it_and_joins_nothing(
    app: RunningApp, http: aiohttp.ClientSession
) -> None:
    attacker, victim, opened, _ = await planted_link_opened(http, app)
    assert opened.customer == victim.customer
    assert ATTACKER_TEXT not in [m["text"] for m in opened.history]
    question = await opened.next_message()
    assert "web chat conversation" in question["text"]
    assert "will read this chat" in question["text"]
    assert [b["payload"] for b in question["buttons"]] == ["link_yes", "link_no"]
    # Anything but an answer is asked again, and stays in the opener's own chat.
    again = await reply_to(opened, VICTIM_LATER)
    assert "Please answer yes or no" in again
    attacker_customer, attacker_sees = await texts_seen_by(http, app, attacker.session)
    assert attacker_customer == attacker.customer != victim.customer
    assert ATTACKER_TEXT in attacker_sees
    assert VICTIM_TEXT not in attacker_sees and VICTIM_LATER not in attacker_sees
    victim_customer, victim_sees = await texts_seen_by(http, app, victim.session)
    assert victim_customer == victim.customer
    assert VICTIM_LATER in victim_sees and ATTACKER_TEXT not in victim_sees
    for client in (attacker, victim, opened):
        await client.close()


async def test_no_to_a_planted_deep_link_links_nothing_and_uses_the_link_up(
    app: RunningApp, http: aiohttp.ClientSession
) -> None:
    attacker, victim, opened, token = await planted_link_opened(http, app)
    await opened.next_message()
    assert "nothing was linked" in await reply_to(opened, "No, don't link", "link_no")
    await reply_to(opened, VICTIM_LATER)
    victim_customer, victim_sees = await texts_seen_by(http, app, victim.session)
    assert victim_customer == victim.customer
    assert ATTACKER_TEXT not in victim_sees
    attacker_customer, attacker_sees = await texts_seen_by(http, app, attacker.session)
    assert attacker_customer == attacker.customer
    assert VICTIM_TEXT not in attacker_sees and VICTIM_LATER not in attacker_sees
    ws, refused = await raw_hello(http, app.ws_url, resume=token)
    assert refused["code"] == "resume_used"
    await ws.close()
    for client in (attacker, victim, opened):
        await client.close()


async def test_yes_to_a_deep_link_joins_and_shows_the_joined_history(
    app: RunningApp, http: aiohttp.ClientSession
) -> None:
    issuer, opener, opened, _ = await planted_link_opened(http, app)
    await opened.next_message()
    msg_id = await opened.say("Yes, link it", payload="link_yes")
    frames: list[dict[str, Any]] = []
    async with asyncio.timeout(15):
        while not frames or frames[-1]["type"] != "history":
            frames.append(await opened.receive(15))
    assert {"type": "ack", "id": msg_id} in frames
    assert any(f["type"] == "message" and f["text"].startswith("Linked!") for f in frames)
    joined = [m["text"] for m in frames[-1]["messages"]]
    assert ATTACKER_TEXT in joined and VICTIM_TEXT in joined
    customer, _ = await texts_seen_by(http, app, opened.session)
    assert customer == issuer.customer
    issuer_customer, issuer_sees = await texts_seen_by(http, app, issuer.session)
    assert issuer_customer == issuer.customer and VICTIM_TEXT in issuer_sees
    for client in (issuer, opener, opened):
        await client.close()


async def test_a_planted_link_code_names_the_channel_not_the_issuers_display_name(
    redis_url: str, http: aiohttp.ClientSession, telegram_api: FakeTelegram
) -> None:
    impostor = {"id": 4440001, "is_bot": False, "first_name": "Acme", "last_name": "Security",
                "username": "acme_security", "language_code": "en"}
    extra = {"telegram_token": TOKEN, "telegram_mode": "polling",
             "telegram_api_url": telegram_api.url}
    async with serve_echo(redis_url, public_url=PUBLIC_URL, **extra) as app:
        await telegram_api.queue_update(telegram_api.message("link", user=impostor))
        sent = (await telegram_api.wait_for("sendMessage", timeout=15))[0]
        code = code_of(sent.params["text"])
        victim = await victim_with_a_conversation(http, app)
        question = await reply_to(victim, f"link {code}")
        assert "Telegram conversation" in question
        assert "will read this chat" in question
        assert "Acme" not in question and "Security" not in question
        assert "nothing was linked" in await reply_to(victim, "No, don't link", "link_no")
        customer, sees = await texts_seen_by(http, app, victim.session)
        assert customer == victim.customer and sees[-1].endswith("nothing was linked.")
        await victim.close()


# Link codes.


async def test_codes_are_eight_unambiguous_characters_and_any_case_or_hyphen_works(
    app: RunningApp, http: aiohttp.ClientSession
) -> None:
    issuer = await connect(http, app)
    await issuer.turn("hello")
    codes = [await issue_code(issuer) for _ in range(3)]
    assert all(SHOWN_CODE.match(code) for code in codes), codes
    code = codes[-1]
    for typed in (code.lower(), code.replace("-", ""), code.lower().replace("-", "")):
        other = await connect(http, app)
        question = await reply_to(other, f"link {typed}")
        assert "That code comes from a web chat conversation" in question, typed
        await other.close()
    joiner = await connect(http, app)
    await joiner.turn(f"link {code.lower().replace('-', '')}")
    assert (await reply_to(joiner, "Yes, link it", "link_yes")).startswith("Linked!")
    customer, _ = await texts_seen_by(http, app, joiner.session)
    assert customer == issuer.customer
    for client in (issuer, joiner):
        await client.close()


async def test_wrong_codes_from_many_throwaway_sessions_do_not_stop_a_right_one(
    proxied_app: RunningApp, http: aiohttp.ClientSession
) -> None:
    app = proxied_app
    issuer, code = await issued_from(http, app, "192.0.2.1")
    gate = asyncio.Semaphore(15)

    async def guess(n: int) -> str:
        async with gate:
            guesser = await connect(http, app, address=f"10.{n // 200}.{n % 200}.9")
            answer = await reply_to(guesser, f"link {random_code()}")
            await guesser.close()
            return answer

    answers = await asyncio.gather(*(guess(n) for n in range(150)))
    assert all(answer.startswith(NOT_VALID) for answer in answers), set(answers)
    owner = await connect(http, app, address="192.0.2.2")
    question = await reply_to(owner, f"link {code}")
    assert "That code comes from a web chat conversation" in question
    for client in (issuer, owner):
        await client.close()


async def test_three_wrong_codes_make_the_same_guesser_wait_even_for_the_right_code(
    proxied_app: RunningApp, http: aiohttp.ClientSession
) -> None:
    app = proxied_app
    issuer, code = await issued_from(http, app, "192.0.2.1")
    guesser = await connect(http, app, address="10.0.0.1")
    session = guesser.session
    await guesser.close()
    # One person, reconnecting from a new address for each guess.
    for n in range(1, 4):
        again = await connect(http, app, address=f"10.0.0.{n}", session=session)
        assert (await reply_to(again, f"link {random_code()}")).startswith(NOT_VALID)
        await again.close()
    again = await connect(http, app, address="10.0.0.4", session=session)
    assert (await reply_to(again, f"link {code}")).startswith(MUST_WAIT)
    await again.close()
    # Someone else at that last address was not blamed for it.
    neighbour = await connect(http, app, address="10.0.0.4")
    assert "That code comes from" in await reply_to(neighbour, f"link {code}")
    for client in (issuer, neighbour):
        await client.close()


async def test_fresh_sessions_from_one_address_that_guess_are_made_to_wait(
    proxied_app: RunningApp, http: aiohttp.ClientSession
) -> None:
    app = proxied_app
    issuer, code = await issued_from(http, app, "192.0.2.1")
    answers = []
    # An address may be an office of people making typos: ten wrong codes
    # are free there, then the address waits.
    for guess in [random_code() for _ in range(11)] + [code]:
        throwaway = await connect(http, app, address="10.1.1.1")
        answers.append(await reply_to(throwaway, f"link {guess}"))
        await throwaway.close()
    assert [a.startswith(NOT_VALID) for a in answers[:10]] == [True] * 10, answers
    assert [a.startswith(MUST_WAIT) for a in answers[10:]] == [True] * 2, answers
    await issuer.close()


async def test_a_new_code_revokes_the_last_one(
    app: RunningApp, http: aiohttp.ClientSession
) -> None:
    issuer = await connect(http, app)
    first = await issue_code(issuer)
    second = await issue_code(issuer)
    assert first != second
    other = await connect(http, app)
    assert (await reply_to(other, f"link {first}")).startswith(NOT_VALID)
    assert "That code comes from" in await reply_to(other, f"link {second}")
    for client in (issuer, other):
        await client.close()


async def test_a_sixth_code_within_the_hour_is_refused(
    app: RunningApp, http: aiohttp.ClientSession
) -> None:
    issuer = await connect(http, app)
    codes = [await issue_code(issuer) for _ in range(5)]
    refused = await reply_to(issuer, "link")
    assert refused.startswith(TOO_MANY_CODES)
    assert CODE_IN_TEXT.search(refused) is None
    # The last code given still works.
    other = await connect(http, app)
    assert "That code comes from" in await reply_to(other, f"link {codes[-1]}")
    for client in (issuer, other):
        await client.close()
