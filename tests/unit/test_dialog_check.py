"""`segue check` and the dialog checker: broken flows reported with file and line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bot.assembly.cli import main
from dialogs.check import check_dialogs
from dialogs.flows import PACKAGED_DEMO, load_dialogs, resolve_dir

GOOD = """
intents:
  ask_order:
    examples: [where is my order, order status]
entities:
  order_id:
    regex: '[A-Z][0-9]{4}'
slots:
  order_id:
    entity: order_id
    prompt: utter_ask
actions:
  module: dialogs.demo.actions
  names: [action_order_status]
responses:
  utter_ask: {text: "Which order?"}
  utter_done: {text: "Done."}
flows:
  order:
    triggers: [ask_order]
    steps:
      - id: ask
        ask: order_id
      - action: action_order_status
      - branch:
          - if: {slot: order_found, equals: false}
            goto: ask
      - say: utter_done
"""


def write(tmp_path: Path, text: str, name: str = "bot.yml") -> Path:
    (tmp_path / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return tmp_path / name


def messages(tmp_path: Path) -> list[str]:
    _, problems = check_dialogs(tmp_path)
    return [str(p) for p in problems]


def test_the_shipped_demo_bot_is_valid() -> None:
    dialogs, problems = check_dialogs("dialogs")
    assert problems == [] and dialogs is not None
    assert {"greet", "order_status", "human", "forget_me"} <= set(dialogs.flows)


def test_a_good_file_passes_once_its_slots_exist(tmp_path: Path) -> None:
    write(tmp_path, GOOD.replace("slots:\n", "slots:\n  order_found:\n    type: bool\n"))
    assert messages(tmp_path) == []


def _line_of(text: str, fragment: str) -> int:
    return text.splitlines().index(fragment) + 1


def test_unknown_slot_is_reported_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)  # the branch tests order_found, which is never declared
    line = _line_of(GOOD, "          - if: {slot: order_found, equals: false}")
    assert messages(tmp_path) == [f"{path}:{line}: unknown slot 'order_found'"]


WITH_SLOT = GOOD.replace("slots:\n", "slots:\n  order_found:\n    type: bool\n")


@pytest.mark.parametrize(
    ("old", "new", "expected", "at"),
    [
        ("      - action: action_order_status", "      - action: action_refund",
         "unknown action 'action_refund'", "      - action: action_refund"),
        ("    regex: '[A-Z][0-9]{4}'", "    regex: '[A-Z][0-9{4'",
         "bad regex in entity 'order_id'", "    regex: '[A-Z][0-9{4'"),
        ("            goto: ask", "            goto: nowhere",
         "unknown goto target 'nowhere'", "          - if: {slot: order_found, equals: false}"),
        ("      - say: utter_done", "      - say: utter_missing",
         "unknown response 'utter_missing'", "      - say: utter_missing"),
        ("    triggers: [ask_order]", "    triggers: [refund]",
         "unknown intent 'refund'", "  order:"),
        ("    entity: order_id", "    entity: order_number",
         "unknown entity 'order_number'", "  order_id:\n    entity: order_number"),
    ],
)
def test_broken_references_are_reported_with_file_and_line(
    tmp_path: Path, old: str, new: str, expected: str, at: str
) -> None:
    assert old in WITH_SLOT
    broken = WITH_SLOT.replace(old, new)
    path = write(tmp_path, broken)
    [problem] = messages(tmp_path)
    line = broken[: broken.index(at)].count("\n") + 1
    assert expected in problem
    assert problem.startswith(f"{path}:{line}: "), problem


def test_unreachable_steps_are_reported(tmp_path: Path) -> None:
    broken = WITH_SLOT.replace(
        "      - say: utter_done",
        "      - goto: ask\n      - say: utter_done",
    )
    path = write(tmp_path, broken)
    line = _line_of(broken, "      - say: utter_done")
    assert messages(tmp_path) == [f"{path}:{line}: unreachable step in flow 'order'"]


def test_invalid_yaml_and_structure_errors_have_lines(tmp_path: Path) -> None:
    write(tmp_path, "flows:\n  order:\n    steps: [\n", "a.yml")
    write(tmp_path, "flows:\n  other:\n    steps:\n      - shout: hello\n", "b.yml")
    problems = messages(tmp_path)
    assert any(p.startswith(f"{tmp_path / 'a.yml'}:") and "invalid YAML" in p for p in problems)
    assert f"{tmp_path / 'b.yml'}:4: a step needs exactly one of" in "\n".join(problems)


def test_an_action_missing_from_its_module_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, WITH_SLOT.replace("names: [action_order_status]",
                                             "names: [action_order_status, action_refund]"))
    problems = messages(tmp_path)
    assert problems == [
        f"{path}:{_line_of(WITH_SLOT, '  names: [action_order_status]')}: "
        "action 'action_refund' is not implemented in dialogs.demo.actions"
    ]


def test_segue_check_prints_file_and_line_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dialogs_dir = tmp_path / "dialogs"
    dialogs_dir.mkdir()
    path = write(dialogs_dir, GOOD)
    config = tmp_path / "segue.yml"
    config.write_text(f"dialogs_dir: {dialogs_dir}\n", encoding="utf-8")
    assert main(["check", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    line = _line_of(GOOD, "          - if: {slot: order_found, equals: false}")
    assert f"{path}:{line}: unknown slot 'order_found'" in err

    write(dialogs_dir, WITH_SLOT)
    assert main(["check", "--config", str(config)]) == 0


def test_the_default_directory_falls_back_to_the_packaged_demo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_dir("dialogs") == PACKAGED_DEMO
    dialogs, problems = load_dialogs("dialogs")
    assert problems == [] and dialogs is not None and "order_status" in dialogs.flows
    assert resolve_dir("elsewhere") == Path("elsewhere")
