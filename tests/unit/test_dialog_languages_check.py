"""`segue check` on a bot in several languages, and on the repair patterns' settings."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bot.assembly.cli import main
from dialogs.check import check_dialogs

DEFAULT = """
languages: [en, de]
intents:
  hello: {title: Hello, examples: [hello, hi there]}
responses:
  utter_hi: {text: "Hi!", buttons: [{title: Hello, payload: hello}]}
  utter_bye: {text: "Bye!"}
flows:
  hello:
    triggers: [hello]
    steps: [{say: utter_hi}]
"""

GERMAN = """
locale: de
intents:
  hello: {title: Hallo, examples: [hallo, servus]}
responses:
  utter_hi: {text: "Hallo!", buttons: [{title: Hallo, payload: hello}]}
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def messages(directory: Path) -> tuple[list[str], list[str]]:
    """(errors, warnings) of the dialogs in `directory`."""
    _, problems = check_dialogs(directory)
    return ([str(p) for p in problems if not p.warning],
            [str(p) for p in problems if p.warning])


def test_a_response_missing_in_a_configured_language_is_reported(tmp_path: Path) -> None:
    write(tmp_path, "bot.yml", DEFAULT)
    german = write(tmp_path, "de/bot.yml", GERMAN)
    errors, warnings = messages(tmp_path)
    assert errors == []
    assert warnings == [
        f"{tmp_path / 'bot.yml'}:7: warning: response 'utter_bye' has no de version "
        "(the en one is said)"
    ]
    # Translated, it is quiet; the translation is said in German.
    german.write_text(textwrap.dedent(GERMAN) + '  utter_bye: {text: "Tschüss!"}\n',
                      encoding="utf-8")
    dialogs, problems = check_dialogs(tmp_path)
    assert problems == [] and dialogs is not None
    assert dialogs.responses["utter_bye"].for_channel("web", "de").text == "Tschüss!"
    assert dialogs.responses["utter_bye"].for_channel("web", "fr").text == "Bye!"
    assert dialogs.title_of("hello", "de") == "Hallo"


def test_an_intent_without_examples_in_a_language_is_reported(tmp_path: Path) -> None:
    write(tmp_path, "bot.yml", DEFAULT)
    write(tmp_path, "de/bot.yml", GERMAN.replace("  hello: {title: Hallo, examples: "
                                                 "[hallo, servus]}\n", "  {}\n")
          .replace("intents:\n  {}\n", ""))
    _, warnings = messages(tmp_path)
    assert any("intent 'hello' has no examples in de" in w for w in warnings)


def test_what_only_another_language_has_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "bot.yml", DEFAULT)
    write(tmp_path, "de/bot.yml", GERMAN + '  utter_extra: {text: "Nur hier"}\n'
          "  # and an intent the default language lacks\n")
    write(tmp_path, "de/more.yml", "locale: de\nintents:\n  only_german: [nur deutsch]\n")
    errors, _ = messages(tmp_path)
    assert any("response 'utter_extra' of locale de has no en version" in e for e in errors)
    assert any("intent 'only_german' of locale de has no examples in en" in e for e in errors)


@pytest.mark.parametrize(("text", "expected"), [
    ("locale: fr\nresponses:\n  utter_hi: {text: Salut}\n", "locale 'fr' is not in languages"),
    ("locale: german\n", "locale must be a two-letter ISO 639-1 code"),
    ("locale: de\nflows: {}\n", "unknown section 'flows' in a file with locale de"),
])
def test_bad_locale_files_are_errors(tmp_path: Path, text: str, expected: str) -> None:
    write(tmp_path, "bot.yml", DEFAULT)
    write(tmp_path, "x.yml", text)
    errors, _ = messages(tmp_path)
    assert any(expected in e for e in errors), errors


@pytest.mark.parametrize(("languages", "expected"), [
    ("[]", "languages must be a list of language codes"),
    ("[en, en]", "language 'en' is listed twice"),
    ("[english]", "language 'english' is not a two-letter ISO 639-1 code"),
])
def test_bad_languages_are_errors(tmp_path: Path, languages: str, expected: str) -> None:
    write(tmp_path, "bot.yml", DEFAULT.replace("[en, de]", languages))
    errors, _ = messages(tmp_path)
    assert any(expected in e for e in errors), errors


@pytest.mark.parametrize(("patterns", "expected"), [
    ("{undo: true}", "unknown pattern 'undo'"),
    ("{cancel: yes please}", "pattern 'cancel' must be false or {intent: <name>}"),
    ("{clarify: {margin: 3}}", "expected false or {margin: <a number from 0 to 1>}"),
    ("{correction: maybe}", "pattern 'correction' must be true or false"),
    ("{chitchat: {weather: utter_nope}}", "unknown response 'utter_nope'"),
    ("[cancel]", "patterns must be a mapping"),
])
def test_bad_pattern_settings_are_errors(tmp_path: Path, patterns: str, expected: str) -> None:
    write(tmp_path, "bot.yml", DEFAULT + f"patterns: {patterns}\n")
    errors, _ = messages(tmp_path)
    assert any(expected in e for e in errors), errors


def test_segue_check_prints_warnings_and_passes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dialogs_dir = tmp_path / "dialogs"
    write(dialogs_dir, "bot.yml", DEFAULT)
    write(dialogs_dir, "de/bot.yml", GERMAN)
    config = tmp_path / "segue.yml"
    config.write_text(f"dialogs_dir: {dialogs_dir}\n", encoding="utf-8")
    assert main(["check", "--config", str(config)]) == 0
    out = capsys.readouterr()
    assert "warning: response 'utter_bye' has no de version" in out.err
    assert "configuration OK, 1 warning(s)" in out.out


def test_the_shipped_demo_speaks_three_languages_completely() -> None:
    dialogs, problems = check_dialogs("dialogs")
    assert problems == [] and dialogs is not None
    assert dialogs.languages == ("en", "de", "es")
    for name, response in dialogs.responses.items():
        assert set(response.translations) == {"de", "es"}, name


def test_a_translation_keeps_the_placeholders_and_the_button_payloads(tmp_path: Path) -> None:
    write(tmp_path, "bot.yml", DEFAULT.replace('utter_bye: {text: "Bye!"}',
                                               'utter_bye: {text: "Bye {name}!"}'))
    write(tmp_path, "de/bot.yml", GERMAN.replace("payload: hello", "payload: goodbye")
          + '  utter_bye: {text: "Tschüss {nmae}!"}\n')
    errors, warnings = messages(tmp_path)
    assert any("response 'utter_bye' in de has placeholders ['nmae'], not ['name']" in e
               for e in errors), errors
    assert any("response 'utter_hi' in de: button payloads ['goodbye'] differ from ['hello']"
               in e for e in errors), errors
    assert any("response 'utter_bye' has {name}, which is no slot" in w for w in warnings)


def test_a_title_missing_in_a_language_is_reported(tmp_path: Path) -> None:
    write(tmp_path, "bot.yml", DEFAULT)
    write(tmp_path, "de/bot.yml", GERMAN.replace("{title: Hallo, examples:", "{examples:")
          + '  utter_bye: {text: "Tschüss!"}\n')
    _, warnings = messages(tmp_path)
    assert any("intent 'hello' has a title in en but none in de" in w for w in warnings)


def test_pattern_problems_point_at_the_patterns_section(tmp_path: Path) -> None:
    write(tmp_path, "bot.yml", DEFAULT)
    path = write(tmp_path, "repair.yml", "# repair\npatterns:\n  cancel: {intent: stopp}\n")
    errors, _ = messages(tmp_path)
    assert f"{path}:2: the cancel pattern's intent 'stopp' has no examples in en" in errors


def test_a_pattern_intent_may_not_start_a_flow(tmp_path: Path) -> None:
    write(tmp_path, "bot.yml", DEFAULT + "patterns:\n  cancel: {intent: hello}\n")
    errors, _ = messages(tmp_path)
    assert any("the cancel pattern's intent 'hello' also starts flow 'hello'" in e
               for e in errors), errors


def test_a_broken_languages_list_is_reported_once(tmp_path: Path) -> None:
    write(tmp_path, "bot.yml", DEFAULT.replace("[en, de]", "[en, de, de]"))
    write(tmp_path, "de/bot.yml", GERMAN)
    errors, _ = messages(tmp_path)
    assert any("listed twice" in e for e in errors)
    assert not any("is not in languages" in e for e in errors), errors


def test_a_language_the_identification_does_not_know_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "bot.yml", DEFAULT.replace("[en, de]", "[en, xx]"))
    errors, _ = messages(tmp_path)
    assert any("language 'xx' is not a two-letter ISO 639-1 code" in e for e in errors), errors
