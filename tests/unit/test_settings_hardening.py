"""Settings refuse what would run insecurely or not as written: an empty
secret, a `SEGUE_*` variable that is no setting, a number that is not
finite, a store URL the store cannot read; and each problem is blamed on
where the value came from."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from bot.core.config_problems import problem_of
from bot.core.errors import ConfigError
from bot.core.settings import Settings, check_settings, load_settings

SECRET_SETTINGS = sorted(name for name, field in Settings.model_fields.items()
                         if field.annotation == SecretStr | None)
FLOAT_SETTINGS = sorted(name for name, field in Settings.model_fields.items()
                        if field.annotation is float)


@pytest.fixture(autouse=True)
def clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No `SEGUE_*` from the caller, and no `config/segue.yml` in reach."""
    for variable in [v for v in os.environ if v.upper().startswith("SEGUE_")]:
        monkeypatch.delenv(variable)
    monkeypatch.chdir(tmp_path)


def rendered_problems() -> list[str]:
    settings, problems = check_settings(None)
    assert settings is None, "the settings loaded"
    return [str(p) for p in problems]


def test_the_secret_settings_are_found() -> None:
    assert {"webchat_secret", "webchat_identity_secret", "redis_url", "agents"} <= set(
        SECRET_SETTINGS)


@pytest.mark.parametrize("value", ["", "   "], ids=["empty", "blank"])
@pytest.mark.parametrize("name", SECRET_SETTINGS)
def test_an_empty_secret_in_the_environment_is_refused(
    name: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    variable = f"SEGUE_{name.upper()}"
    monkeypatch.setenv(variable, value)
    problems = rendered_problems()
    assert problems == [
        f"environment {variable}: Value error, is empty: unset it or give it a value"]


@pytest.mark.parametrize("name", ["webchat_secret", "webchat_identity_secret"])
def test_an_empty_signing_key_in_the_file_is_refused_with_its_line(
    name: str, tmp_path: Path
) -> None:
    path = tmp_path / "segue.yml"
    path.write_text(f"port: 8081\n{name}: ''\n", encoding="utf-8")
    settings, problems = check_settings(path)
    assert settings is None
    assert [str(p) for p in problems] == [
        f"{path}:2: {name}: Value error, is empty: unset it or give it a value"]


def test_an_empty_identity_key_cannot_reach_the_running_settings() -> None:
    with pytest.raises(ValidationError, match="is empty"):
        Settings(webchat_identity_secret="")
    assert Settings(webchat_identity_secret="k" * 16).webchat_identity_secret is not None


@pytest.mark.parametrize("name", ["webchat_secret", "webchat_identity_secret"])
def test_a_web_chat_signing_key_shorter_than_16_characters_is_refused(name: str) -> None:
    # A short key can be found by trying, and every token forged with it.
    with pytest.raises(ValidationError, match="shorter than 16 characters: make one with"):
        Settings(**{name: "fifteen-chars-x"})
    assert Settings(**{name: "sixteen-chars-xx"}) is not None


def test_a_misspelt_variable_is_reported_with_the_likely_name(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGUE_REDIS_ULR", "redis://example:6379/0")
    monkeypatch.setenv("SEGUE_XYZZY", "1")
    assert rendered_problems() == [
        "environment SEGUE_REDIS_ULR: not a Segue setting (did you mean SEGUE_REDIS_URL?)",
        "environment SEGUE_XYZZY: not a Segue setting",
    ]
    with pytest.raises(ConfigError, match="SEGUE_REDIS_ULR"):
        load_settings()


def test_the_events_variables_are_read_as_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGUE_EVENTS_URL", "https://hooks.example.com/segue")
    monkeypatch.setenv("SEGUE_EVENTS_SECRET", "events-secret-0123456789")
    settings, problems = check_settings(None)
    assert settings is not None and problems == []
    assert settings.events_url == "https://hooks.example.com/segue"
    assert settings.events_secret is not None


def test_an_unknown_variable_is_reported_beside_the_other_problems(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGUE_PORT", "abc")
    monkeypatch.setenv("SEGUE_WORKER", "2")
    problems = rendered_problems()
    assert problems[0].startswith("environment SEGUE_PORT: ")
    assert problems[1:] == [
        "environment SEGUE_WORKER: not a Segue setting (did you mean SEGUE_WORKERS?)"]


def test_known_variables_load_in_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("segue_port", "9123")
    monkeypatch.setenv("SEGUE_HOST", "0.0.0.0")
    settings, problems = check_settings(None)
    assert problems == [] and settings is not None
    assert (settings.host, settings.port) == ("0.0.0.0", 9123)


@pytest.mark.parametrize("written", ["debug", "Warning", " error "])
def test_the_log_level_is_read_in_any_case(
    written: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGUE_LOG_LEVEL", written)
    assert load_settings().log_level == written.strip().upper()


def test_an_unknown_log_level_is_still_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGUE_LOG_LEVEL", "verbose")
    assert rendered_problems()[0].startswith("environment SEGUE_LOG_LEVEL: Input should be")


def test_the_float_settings_are_found() -> None:
    assert {"lock_ttl_seconds", "nlu_threshold", "agent_session_hours"} <= set(FLOAT_SETTINGS)


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "Infinity"])
@pytest.mark.parametrize("name", FLOAT_SETTINGS)
def test_a_number_that_is_not_finite_is_refused(
    name: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    variable = f"SEGUE_{name.upper()}"
    monkeypatch.setenv(variable, value)
    assert rendered_problems() == [f"environment {variable}: Input should be a finite number"]


def test_a_rule_across_environment_variables_is_blamed_on_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "segue.yml"
    path.write_text("port: 8081\n", encoding="utf-8")
    monkeypatch.setenv("SEGUE_TELEGRAM_TOKEN", "1:abc")
    monkeypatch.setenv("SEGUE_TELEGRAM_MODE", "webhook")
    settings, problems = check_settings(path)
    assert settings is None
    assert [p.file for p in problems] == [
        "environment SEGUE_TELEGRAM_TOKEN, SEGUE_TELEGRAM_MODE"]
    assert "telegram_webhook_secret" in problems[0].message


def test_a_rule_across_file_keys_names_the_line_of_the_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "segue.yml"
    path.write_text("port: 8081\nslack_bot_token: xoxb-1\n", encoding="utf-8")
    settings, problems = check_settings(path)
    assert settings is None
    assert [(p.file, p.line) for p in problems] == [(str(path), 2)]
    assert "slack_signing_secret" in problems[0].message


def test_a_rule_across_settings_from_neither_source_is_blamed_on_the_settings() -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(slack_bot_token="xoxb-1")
    problem = problem_of(raised.value.errors()[0], config_path="config/segue.yml", lines={},
                         environ={})
    assert str(problem).startswith("settings: slack_bot_token is set")


BAD_STORE_URLS = {
    "redis://127.0.0.1:notaport/0": "port must be a number from 1 to 65535",
    "redis://:pw-SECRET@h:0": "port must be a number from 1 to 65535",
    "rediss://h:65536/0": "port must be a number from 1 to 65535",
    "redis://h:/0": "port must be a number from 1 to 65535",
    "redis://": "needs a host",
    "redis://:pw-SECRET@/0": "needs a host",
    "redis://user:pw-SECRET@": "needs a host",
    "redis://h:6379/db-name": "database number",
    "redis+sentinel://:pw-SECRET@/mymaster": "at least one host",
    "redis+sentinel://h1:26379,/mymaster": "at least one host",
    "redis+sentinel://:pw-SECRET@h1:sentinel/mymaster": "port must be a number",
    "redis+sentinel://h1:26379": "needs a service name",
    "redis+sentinel://h1:26379/": "needs a service name",
    "redis+sentinel://h1:26379/mymaster/zero": "database number",
    "http://:pw-SECRET@h": "must start with redis://",
}


@pytest.mark.parametrize(("url", "message"), BAD_STORE_URLS.items(), ids=list(BAD_STORE_URLS))
def test_a_store_url_the_store_cannot_read_is_refused_without_its_password(
    url: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGUE_REDIS_URL", url)
    problems = rendered_problems()
    assert len(problems) == 1 and problems[0].startswith("environment SEGUE_REDIS_URL: ")
    assert message in problems[0]
    assert "SECRET" not in problems[0]


GOOD_STORE_URLS = [
    "redis://localhost",
    "redis://127.0.0.1:6379/0",
    "redis://:p%40ss@h:1/3",
    "rediss://user:pw@redis.example:6380/1?ssl_cert_reqs=none",
    "redis://[::1]:6379",
    "redis://h/",
    "redis://h?db=2",
    "unix:///run/redis.sock?db=0",
    "redis+sentinel://:pw@s1:26379,s2:26380/mymaster/0",
    "redis+sentinel://s1/mymaster",
    "redis+sentinel://[fd00::1]:26379/mymaster",
    "redis+cluster://a:7000,b:7001",
]


@pytest.mark.parametrize("url", GOOD_STORE_URLS)
def test_a_store_url_the_store_reads_is_accepted(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGUE_REDIS_URL", url)
    settings, problems = check_settings(None)
    assert problems == [] and settings is not None
