"""Settings: YAML, environment overrides, errors with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.errors import ConfigError
from bot.core.settings import Settings, check_settings, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "segue.yml"
    path.write_text(text)
    return path


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert (settings.host, settings.port, settings.redis_url) == ("127.0.0.1", 8080, None)


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "port: 9000\nmax_text_length: 100\n")
    monkeypatch.setenv("SEGUE_PORT", "9100")
    monkeypatch.setenv("SEGUE_REDIS_URL", "redis://example:6379/0")
    settings = load_settings(path)
    assert settings.port == 9100 and settings.max_text_length == 100
    assert settings.redis_url is not None
    assert settings.redis_url.get_secret_value() == "redis://example:6379/0"


def test_secrets_do_not_show_when_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGUE_WEBCHAT_SECRET", "hunter2-secret-long-enough")
    monkeypatch.setenv("SEGUE_REDIS_URL", "redis://:pw-secret@example:6379/0")
    text = repr(Settings()) + str(Settings().model_dump())
    assert "hunter2-secret-long-enough" not in text and "pw-secret" not in text


def test_errors_name_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "host: 0.0.0.0\n\nport: lots\nunknown_key: 1\n")
    settings, problems = check_settings(path)
    assert settings is None
    rendered = sorted(str(p) for p in problems)
    assert rendered[0].startswith(f"{path}:3: port:")
    assert rendered[1].startswith(f"{path}:4: unknown_key:")


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "host: a\nport: [1,\n")
    with pytest.raises(ConfigError, match=r"segue\.yml:\d+: invalid YAML"):
        load_settings(path)


def test_telegram_webhook_mode_needs_a_secret(tmp_path: Path) -> None:
    path = write(tmp_path, "telegram_token: '1:abc'\ntelegram_mode: webhook\n")
    with pytest.raises(ConfigError, match="telegram_webhook_secret"):
        load_settings(path)


def test_a_missing_named_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_settings(tmp_path / "absent.yml")


def test_a_redis_url_of_another_scheme_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGUE_REDIS_URL", "http://nope")
    settings, problems = check_settings(None)
    assert settings is None
    assert str(problems[0]).startswith("environment SEGUE_REDIS_URL:")
    assert "redis://" in str(problems[0])


def test_a_bad_environment_value_is_blamed_on_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "port: 8080\n")
    monkeypatch.setenv("SEGUE_PORT", "abc")
    _, problems = check_settings(path)
    assert [str(p).split(":")[0] for p in problems] == ["environment SEGUE_PORT"]


def test_a_yaml_error_names_the_file_once(tmp_path: Path) -> None:
    path = write(tmp_path, "host: a\nport: [1,\n")
    _, problems = check_settings(path)
    assert str(problems[0]).count(str(path)) == 1


def test_telegram_webhook_secret_follows_telegrams_rule(tmp_path: Path) -> None:
    path = write(tmp_path, "telegram_webhook_secret: 'bad secret!'\n")
    _, problems = check_settings(path)
    assert "telegram_webhook_secret" in str(problems[0])
