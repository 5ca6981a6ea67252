"""Rendering `Outbound` into Bot API calls, and the connector's small parsers."""

from __future__ import annotations

import pytest
from aiogram.types import InlineKeyboardButton
from pydantic import SecretStr

from bot.core.engine import Engine
from bot.core.errors import ConfigError
from bot.core.model import Button, Image, Link, Outbound
from bot.core.policy import TurnContext
from bot.core.settings import Settings
from connectors.telegram import _command_as_typed, build_telegram_connector
from connectors.telegram_render import (
    BUTTON_PROMPT,
    PhotoPart,
    TextPart,
    chat_id_of,
    render,
    split_text,
    utf16_len,
)
from context_store import MemoryContextStore


def test_short_text_is_one_chunk() -> None:
    assert split_text("hello") == ["hello"]


def test_blank_text_is_no_chunk() -> None:
    assert split_text("") == []
    assert split_text(" \n ") == []


def test_split_prefers_a_newline_or_space_in_the_second_half() -> None:
    text = "a" * 6 + "\n" + "b" * 6 + " " + "c" * 6
    assert split_text(text, limit=10) == ["a" * 6 + "\n", "b" * 6 + " ", "c" * 6]


def test_split_cuts_hard_when_there_is_no_space() -> None:
    assert split_text("x" * 25, limit=10) == ["x" * 10, "x" * 10, "x" * 5]


def test_split_counts_utf16_units_and_never_halves_a_character() -> None:
    text = "😀" * 5  # each is two UTF-16 units
    chunks = split_text(text, limit=4)
    assert chunks == ["😀😀", "😀😀", "😀"]
    assert all(utf16_len(c) <= 4 for c in chunks)


def test_buttons_become_an_inline_keyboard_on_the_last_part() -> None:
    parts = render(Outbound(text="Pick", buttons=(Button("A", "a"), Button("B", "b"))))
    assert len(parts) == 1 and isinstance(parts[0], TextPart)
    keyboard = parts[0].keyboard
    assert keyboard is not None
    assert keyboard.inline_keyboard == [
        [InlineKeyboardButton(text="A", callback_data="a")],
        [InlineKeyboardButton(text="B", callback_data="b")],
    ]


def test_payload_too_long_for_telegram_lists_the_options_as_text() -> None:
    outbound = Outbound(text="Pick", buttons=(Button("A", "a"), Button("Long", "x" * 65)))
    [part] = render(outbound)
    assert part == TextPart("Pick\n- A\n- Long")


def test_buttons_without_text_get_a_prompt() -> None:
    [part] = render(Outbound(text="", buttons=(Button("A", "a"),)))
    assert isinstance(part, TextPart) and part.text == BUTTON_PROMPT and part.keyboard


def test_links_are_url_buttons_or_text() -> None:
    outbound = Outbound(
        text="See",
        links=(Link("https://example.com", "Site"), Link("ftp://example.com/f", "File")),
    )
    [part] = render(outbound)
    assert isinstance(part, TextPart)
    assert part.text == "See\nFile: ftp://example.com/f"
    assert part.keyboard is not None
    assert part.keyboard.inline_keyboard[0][0].url == "https://example.com"


def test_images_are_photos_with_captions_and_text_when_not_http() -> None:
    outbound = Outbound(
        text="Look",
        images=(Image("https://example.com/a.png", "A"), Image("data:image/png;base64,xx", "B")),
    )
    parts = render(outbound)
    assert parts == [
        TextPart("Look"),
        PhotoPart("https://example.com/a.png", "A", "A\nhttps://example.com/a.png"),
        TextPart("B\ndata:image/png;base64,xx"),
    ]


def test_too_long_alt_text_is_no_caption() -> None:
    [part] = render(Outbound(text="", images=(Image("https://example.com/a.png", "y" * 1025),)))
    assert isinstance(part, PhotoPart) and part.caption is None


def test_chat_ids_are_integers_unless_a_channel_name() -> None:
    assert chat_id_of("5551234") == 5551234
    assert chat_id_of("-1001234567890") == -1001234567890
    assert chat_id_of("@segue_news") == "@segue_news"


@pytest.mark.parametrize(
    ("typed", "passed_on"),
    [
        ("/start", "/start"),
        ("/start c0ffee-token_42", "/start c0ffee-token_42"),
        ("/link@segue_demo_bot 123456", "/link 123456"),
        ("hello @someone", "hello @someone"),
    ],
)
def test_commands_are_kept_as_typed_without_the_bot_name(typed: str, passed_on: str) -> None:
    assert _command_as_typed(typed) == passed_on


class SilentPolicy:
    async def decide(self, turn: TurnContext) -> list[Outbound]:
        return []


def build(**overrides: object) -> None:
    settings = Settings.model_construct(
        **{**Settings().model_dump(), "telegram_token": SecretStr("123:abc"), **overrides}
    )
    engine = Engine(store=MemoryContextStore(), policy=SilentPolicy())
    build_telegram_connector(settings=settings, engine=engine, store=engine.store)


def test_a_malformed_token_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="SEGUE_TELEGRAM_TOKEN"):
        build(telegram_token=SecretStr("not a token"))


def test_a_secret_telegram_would_refuse_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="SEGUE_TELEGRAM_WEBHOOK_SECRET"):
        build(telegram_mode="webhook", telegram_webhook_secret=SecretStr("has spaces!"))


def test_agent_messages_show_the_agent_name_once() -> None:
    (part,) = render(Outbound(text="Checking now.", sender="agent", agent_name="ann"))
    assert isinstance(part, TextPart) and part.text == "ann: Checking now."
    joined = "ann from our team has joined the conversation."
    (part,) = render(Outbound(text=joined, sender="agent", agent_name="ann"))
    assert isinstance(part, TextPart) and part.text == joined
    (part,) = render(Outbound(text="Ann: hi", sender="agent", agent_name="ann"))
    assert isinstance(part, TextPart) and part.text == "Ann: hi"
    (part,) = render(Outbound(text="annual plans renew.", sender="agent", agent_name="ann"))
    assert isinstance(part, TextPart) and part.text == "ann: annual plans renew."
    (part,) = render(Outbound(text="ann from the bot", agent_name="ann"))
    assert isinstance(part, TextPart) and part.text == "ann from the bot"
