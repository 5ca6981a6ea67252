"""The dialog policy on its own: flows, slots, actions' events, fallbacks, state."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from rasa_sdk import Action, Tracker
from rasa_sdk.events import ConversationPaused, EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.core.conversation import ConversationState
from bot.core.errors import ConfigError, DialogError
from bot.core.model import Address, ChannelIdentity, Inbound, Outbound
from bot.core.policy import TurnContext
from bot.core.settings import Settings
from dialogs.build import build_dialog_policy
from dialogs.runtime import DialogPolicy


class ActionCount(Action):
    """Counts its calls in a slot and echoes the slot `word` in a named response."""

    def name(self) -> str:
        return "action_count"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        dispatcher.utter_message(response="utter_word")
        dispatcher.utter_message(text="counted", buttons=[{"title": "Again", "payload": "count"}])
        return [SlotSet("count", int(tracker.get_slot("count") or 0) + 1)]


class ActionEscalate(Action):
    def name(self) -> str:
        return "action_escalate"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        dispatcher.utter_message(text="Let me get someone.")
        return [ConversationPaused()]


class ActionChain(Action):
    def name(self) -> str:
        return "action_chain"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        return [FollowupAction("echo")]


class ActionBroken(Action):
    def name(self) -> str:
        return "action_broken"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        raise RuntimeError("database down")


CUSTOM = f"""
intents:
  count: {{examples: [count, count please]}}
  escalate: {{examples: [escalate]}}
  chain: {{examples: [chain]}}
  broken: {{examples: [broken]}}
  echo: {{examples: [echo]}}
  loop: {{examples: [loop forever]}}
slots:
  word: {{type: text, prompt: utter_which_word}}
  count: {{type: text}}
actions:
  module: {__name__}
  names: [action_count, action_escalate, action_chain, action_broken]
fallback:
  handoff_after: 0
responses:
  utter_which_word: {{text: "Which word?"}}
  utter_word:
    text: "You said {{word}}."
    channels:
      telegram: "On Telegram you said {{word}}."
  utter_echo: {{text: "echo flow"}}
flows:
  count:
    triggers: [count]
    steps:
      - ask: word
      - action: action_count
  escalate:
    triggers: [escalate]
    steps:
      - action: action_escalate
      - say: utter_echo
  chain:
    triggers: [chain]
    steps:
      - action: action_chain
  broken:
    triggers: [broken]
    steps:
      - action: action_broken
  echo:
    triggers: [echo]
    steps:
      - say: utter_echo
  loop:
    triggers: [loop]
    steps:
      - id: top
        goto: top
"""


class Chat:
    """One customer; the state goes through JSON between turns, as in the store."""

    def __init__(self, policy: DialogPolicy, channel: str = "web") -> None:
        self.policy, self.channel = policy, channel
        self.state = ConversationState()
        self.last: TurnContext | None = None
        self.n = 0

    async def say(self, text: str, payload: str | None = None) -> list[Outbound]:
        self.n += 1
        inbound = Inbound(
            ChannelIdentity(self.channel, "u1"), Address(self.channel, "u1"), f"m{self.n}",
            text, payload,
        )
        self.state = ConversationState.from_json(self.state.to_json())
        self.last = TurnContext("cust-1", inbound, self.state)
        return await self.policy.decide(self.last)

    async def texts(self, text: str, payload: str | None = None) -> list[str]:
        return [r.text for r in await self.say(text, payload)]


@pytest.fixture(scope="module")
def demo() -> DialogPolicy:
    return build_dialog_policy(Settings())


@pytest.fixture
def custom(tmp_path: Path) -> DialogPolicy:
    (tmp_path / "custom.yml").write_text(textwrap.dedent(CUSTOM), encoding="utf-8")
    return build_dialog_policy(Settings(dialogs_dir=str(tmp_path)))


async def test_responses_pick_the_channel_variant(demo: DialogPolicy) -> None:
    [web] = await Chat(demo, "web").say("hello")
    [slack] = await Chat(demo, "slack").say("hello")
    assert '"link"' in web.text and "`link`" in slack.text
    assert [b.payload for b in slack.buttons] == [b.payload for b in web.buttons]


async def test_a_button_payload_names_its_intent(demo: DialogPolicy) -> None:
    chat = Chat(demo)
    [reply] = await chat.say("Talk to a person", payload="human")
    assert chat.last is not None and chat.last.handoff_reason == "customer asked for a person"
    assert "take over" in reply.text
    await chat.say("x", payload="/order_status")
    assert chat.state.dialog["flow"] == "order_status" and chat.state.dialog["waiting"]


async def test_an_order_number_in_the_first_message_skips_the_question(demo: DialogPolicy) -> None:
    texts = await Chat(demo).texts("where is my order A1003?")
    assert texts[0].startswith("Order A1003 is delivered.")


async def test_asking_for_a_person_mid_flow_keeps_the_open_question(demo: DialogPolicy) -> None:
    chat = Chat(demo)
    await chat.say("where is my order")
    await chat.say("talk to a human")
    assert chat.last is not None and chat.last.handoff_reason is not None
    # Open again, waiting, for when the person hands back to the bot.
    dialog = chat.state.dialog
    assert (dialog["flow"], dialog["waiting"], dialog.get("stack")) == ("order_status", True, None)


async def test_a_destructive_confirmation_takes_only_an_explicit_yes(demo: DialogPolicy) -> None:
    chat = Chat(demo)
    await chat.say("forget me")
    assert await chat.texts("banana") == ["Alright, I'll keep everything as it is."]
    assert chat.last is not None and not chat.last.erase_customer
    await chat.say("forget me")
    await chat.say("yes")
    assert chat.last.erase_customer
    assert chat.state.dialog["flow"] is None


async def test_fallbacks_count_only_in_a_row(demo: DialogPolicy) -> None:
    chat = Chat(demo)
    await chat.say("qwerty")
    await chat.say("hi")  # understood: the count starts again
    [reply] = await chat.say("zxcvb")
    assert chat.last is not None and chat.last.handoff_reason is None
    assert [b.payload for b in reply.buttons][:2] == ["order_status", "human"]
    await chat.say("zxcvb qwfp")
    assert chat.last.handoff_reason == "the bot did not understand twice in a row"


async def test_state_saved_by_other_flows_is_dropped(demo: DialogPolicy) -> None:
    chat = Chat(demo)
    chat.state.dialog = {"v": 1, "flow": "removed_flow", "step": 3, "waiting": True, "slots": {}}
    [reply] = await chat.say("hi")
    assert "order" in reply.text and chat.state.dialog["flow"] is None


async def test_action_slots_and_named_responses(custom: DialogPolicy) -> None:
    chat = Chat(custom, "telegram")
    assert await chat.texts("count") == ["Which word?"]
    replies = await chat.say("pineapple {count}")
    assert [r.text for r in replies] == ["On Telegram you said pineapple {count}.", "counted"]
    assert replies[1].buttons[0].payload == "count"
    assert chat.state.dialog["flow"] is None


async def test_a_paused_conversation_is_handed_off(custom: DialogPolicy) -> None:
    chat = Chat(custom)
    assert await chat.texts("escalate") == ["Let me get someone."]
    assert chat.last is not None
    assert chat.last.handoff_reason == "action action_escalate asked for a person"


async def test_a_followup_starts_a_flow(custom: DialogPolicy) -> None:
    assert await Chat(custom).texts("chain") == ["echo flow"]


async def test_a_failing_action_gets_a_polite_reply(
    custom: DialogPolicy, caplog: pytest.LogCaptureFixture
) -> None:
    chat = Chat(custom)
    [reply] = await chat.say("broken")
    assert "something went wrong" in reply.text
    assert "database down" in caplog.text
    assert chat.state.dialog["flow"] is None


async def test_an_endless_flow_is_stopped(custom: DialogPolicy) -> None:
    with pytest.raises(DialogError, match="looped"):
        await Chat(custom).say("loop forever")


async def test_without_fallback_handoff_misunderstandings_never_hand_off(
    custom: DialogPolicy,
) -> None:
    chat = Chat(custom)
    for _ in range(3):
        assert await chat.texts("gibberish words") == ["Sorry, I didn't get that."]
    assert chat.last is not None and chat.last.handoff_reason is None


def test_broken_dialogs_stop_the_start_up(tmp_path: Path) -> None:
    (tmp_path / "x.yml").write_text("flows:\n  a:\n    steps:\n      - say: nope\n")
    with pytest.raises(ConfigError, match=r"x\.yml:4: unknown response 'nope'"):
        build_dialog_policy(Settings(dialogs_dir=str(tmp_path)))


async def test_a_turn_is_fast(demo: DialogPolicy) -> None:
    import time

    chat = Chat(demo)
    started = time.perf_counter()
    for _ in range(200):
        await chat.say("where is my order")
        await chat.say("A1001")
    per_turn = (time.perf_counter() - started) / 400
    assert per_turn < 0.0005, f"{per_turn * 1e6:.0f} µs per turn"
