"""Rendering `Outbound` for Slack: escaped mrkdwn, Block Kit, text fallback."""

from __future__ import annotations

from bot.core.model import Button, Image, Link, Outbound
from connectors.slack_render import (
    ACTIONS_MAX,
    SECTION_MAX,
    escape,
    link_mrkdwn,
    render,
    unsupported_answer,
    unsupported_notice,
)
from connectors.texts import NOT_SUPPORTED_HERE


def test_escape_touches_only_slack_control_characters() -> None:
    assert escape("a & b < c > d *bold* _it_") == "a &amp; b &lt; c &gt; d *bold* _it_"
    assert escape("<!channel> <@U123>") == "&lt;!channel&gt; &lt;@U123&gt;"


def test_plain_text_is_one_mrkdwn_section_with_the_same_fallback() -> None:
    message = render(Outbound(text="Your order A1001 has *shipped* & is <on its way>"))
    expected = "Your order A1001 has *shipped* &amp; is &lt;on its way&gt;"
    assert message.text == expected
    assert message.blocks == ({"type": "section", "text": {"type": "mrkdwn", "text": expected}},)


def test_buttons_become_an_actions_block_whose_values_are_the_payloads() -> None:
    message = render(
        Outbound(
            text="Pick",
            buttons=(Button("Order <status>", "order_status"), Button("Person", "human")),
        )
    )
    actions = message.blocks[-1]
    assert actions["type"] == "actions"
    assert [e["value"] for e in actions["elements"]] == ["order_status", "human"]
    assert [e["text"] for e in actions["elements"]] == [
        # plain_text is never parsed, so titles are shown as written
        {"type": "plain_text", "text": "Order <status>", "emoji": True},
        {"type": "plain_text", "text": "Person", "emoji": True},
    ]
    assert len({e["action_id"] for e in actions["elements"]}) == 2
    assert message.text == "Pick"


def test_many_buttons_are_split_into_blocks_slack_accepts() -> None:
    buttons = tuple(Button(f"b{i}", f"p{i}") for i in range(ACTIONS_MAX + 3))
    blocks = [
        b for b in render(Outbound(text="x", buttons=buttons)).blocks if b["type"] == "actions"
    ]
    assert [len(b["elements"]) for b in blocks] == [ACTIONS_MAX, 3]
    assert len({e["action_id"] for b in blocks for e in b["elements"]}) == ACTIONS_MAX + 3


def test_images_and_links() -> None:
    message = render(
        Outbound(
            text="See",
            images=(Image("https://example.com/a.png", "a parcel"),),
            links=(Link("https://example.com/track?id=1&x=2", "Track <it>"),),
        )
    )
    link = "<https://example.com/track?id=1&amp;x=2|Track &lt;it&gt;>"
    assert {"type": "section", "text": {"type": "mrkdwn", "text": link}} in message.blocks
    assert {
        "type": "image",
        "image_url": "https://example.com/a.png",
        "alt_text": "a parcel",
    } in message.blocks
    assert message.text == f"See\n{link}"


def test_a_link_cannot_be_broken_out_of() -> None:
    assert (
        link_mrkdwn(Link("https://e.com/a|b>c", "t|x")) == "<https://e.com/a%7Cb%3Ec|t\N{DIVIDES}x>"
    )


def test_long_text_is_split_into_sections_without_cutting_an_entity() -> None:
    text = "a" * (SECTION_MAX - 2) + "&&&" + "b" * 10
    blocks = render(Outbound(text=text)).blocks
    parts = [b["text"]["text"] for b in blocks]
    assert all(len(p) <= SECTION_MAX for p in parts)
    assert "".join(parts) == escape(text)


def test_agent_messages_show_the_agent_name() -> None:
    message = render(Outbound(text="Hello", sender="agent", agent_name="Ana <admin>"))
    assert message.text == "*Ana &lt;admin&gt;:* Hello"


def test_a_notice_that_names_the_agent_is_not_prefixed_again() -> None:
    joined = "Ann from our team has joined the conversation."
    message = render(Outbound(text=joined, sender="agent", agent_name="Ann"))
    assert message.text == joined
    lower = render(Outbound(text="ann from our team is here.", sender="agent", agent_name="Ann"))
    assert lower.text == "ann from our team is here."
    # Another word that merely starts with the name still gets the prefix.
    message = render(Outbound(text="Annual plans renew today.", sender="agent", agent_name="Ann"))
    assert message.text == "*Ann:* Annual plans renew today."
    message = render(Outbound(text="Ann <b>", sender="agent", agent_name="Ann <b>"))
    assert message.text == "Ann &lt;b&gt;"


def test_what_segue_has_nothing_for_is_answered_as_slack_asks_of_each_kind() -> None:
    assert unsupported_answer("command") == {"response_type": "ephemeral",
                                             "text": NOT_SUPPORTED_HERE}
    assert unsupported_answer("block_suggestion") == {"options": []}
    assert unsupported_answer("dialog_suggestion") == {"options": []}
    for kind in ("shortcut", "message_action", "view_submission", "view_closed",
                 "block_actions", "dialog_submission", "interactive_message"):
        assert unsupported_answer(kind) is None, kind  # an empty 200
    assert unsupported_notice() == {"response_type": "ephemeral", "replace_original": False,
                                    "text": NOT_SUPPORTED_HERE}
