"""The events-out settings: a URL of http(s) only, never without its secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.settings import Settings, check_settings

SECRET = "events-secret-long-enough"


def test_the_url_without_a_secret_is_an_error_naming_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "segue.yml"
    path.write_text("events_url: https://hooks.example/segue\n")
    settings, problems = check_settings(path)
    assert settings is None
    (problem,) = problems
    assert "events_url is set but events_secret is not" in str(problem)
    assert str(problem).startswith(f"{path}:1:")
    monkeypatch.setenv("SEGUE_EVENTS_SECRET", SECRET)
    settings, problems = check_settings(path)
    assert problems == [] and settings is not None
    assert settings.events_url == "https://hooks.example/segue"


@pytest.mark.parametrize("url", ["ftp://hooks.example/x", "hooks.example/x", "https://",
                                 "javascript:alert(1)"])
def test_a_url_not_of_http_is_refused(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGUE_EVENTS_URL", url)
    monkeypatch.setenv("SEGUE_EVENTS_SECRET", SECRET)
    settings, problems = check_settings(None)
    assert settings is None
    assert "environment SEGUE_EVENTS_URL" in str(problems[0])
    assert "http:// or https://" in str(problems[0])


def test_the_secret_is_long_and_never_shown() -> None:
    settings = Settings(events_url="http://127.0.0.1:9/e", events_secret=SECRET)
    assert SECRET not in repr(settings) + str(settings.model_dump())
    with pytest.raises(ValueError, match="shorter than 16"):
        Settings(events_url="http://127.0.0.1:9/e", events_secret="short")
