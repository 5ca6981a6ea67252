"""The configuration reference (`docs/configuration.md`, `.env.example`) is
generated from `Settings` and kept current; every setting says what it means;
every variable the README's configuration table names is a setting."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from bot.assembly import config_reference
from bot.core.settings import Settings, check_settings

ROOT = Path(__file__).resolve().parents[2]
@pytest.mark.parametrize(
    "path", [config_reference.MARKDOWN_PATH, config_reference.ENV_EXAMPLE_PATH], ids=str)
def test_a_generated_file_is_what_the_settings_generate(path: Path) -> None:
    written = (ROOT / path).read_text(encoding="utf-8") if (ROOT / path).exists() else ""
    assert written == config_reference.generated_files()[path], (
        f"{path} is out of date with bot/core/settings.py: run "
        f"`{config_reference.REGENERATE}` and commit the result")


def test_every_setting_has_a_description() -> None:
    missing = [name for name, field in Settings.model_fields.items()
               if not (field.description and field.description.strip())]
    assert missing == [], f"give these settings a Field(description=...): {missing}"


def test_every_setting_is_in_exactly_one_group() -> None:
    assert config_reference.ungrouped_settings() == []


def test_every_setting_appears_once_in_each_file() -> None:
    markdown = config_reference.configuration_markdown()
    env = config_reference.env_example()
    for name in Settings.model_fields:
        variable = config_reference.env_name(name)
        assert markdown.count(f"| `{name}` | `{variable}` |") == 1, name
        assert len(re.findall(rf"^# {variable}=", env, flags=re.MULTILINE)) == 1, name


@pytest.mark.parametrize(("name", "expected"), [
    ("workers", "int 1..64"),
    ("worker_index", "int 0..63"),  # lt=64 on an int
    ("port", "int 0..65535"),
    ("max_text_length", "int > 0"),
    ("retention_days", "int ≥ 0"),
    ("http_header_timeout_seconds", "number > 0"),
    ("nlu_threshold", "number 0..1"),
    ("redis_url", "secret"),
    ("host", "text"),
    ("log_format", "one of text, json"),
    ("cookie_secure", "true/false"),
])
def test_a_type_reads_with_its_constraints(name: str, expected: str) -> None:
    assert config_reference.type_text(Settings.model_fields[name]) == expected


def _env_example_values(text: str) -> dict[str, str]:
    """Each commented-out assignment that has a value, unquoted as a shell would."""
    values = {}
    for line in text.splitlines():
        match = re.fullmatch(r"# (SEGUE_[A-Z0-9_]+)=(.+)", line)
        if match is None:
            continue
        value = match.group(2)
        if value.startswith('"'):
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        values[match.group(1)] = value
    return values


def test_the_env_example_values_are_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    values = _env_example_values(config_reference.env_example())
    assert "SEGUE_BUSINESS_HOURS" in values  # a value with spaces, quoted
    for variable in [v for v in os.environ if v.startswith("SEGUE_")]:
        monkeypatch.delenv(variable)
    for variable, value in values.items():
        monkeypatch.setenv(variable, value)
    from_example = Settings()
    for variable in values:
        monkeypatch.delenv(variable)
    assert from_example == Settings()


def test_secrets_have_no_value_in_the_env_example() -> None:
    values = _env_example_values(config_reference.env_example())
    secrets = [config_reference.env_name(name) for name, field in Settings.model_fields.items()
               if config_reference.type_text(field) == "secret"]
    assert secrets and not set(secrets) & set(values)


def table_variables(markdown: str, heading: str) -> set[str]:
    """The `SEGUE_*` names in the first column of the table under `heading`."""
    section = markdown.split(heading, 1)[1].split("\n#", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("|"):
            first_cell = line.split("|")[1]
            names.update(re.findall(r"SEGUE_[A-Z0-9_]+", first_cell))
    return names


def test_every_variable_in_the_readme_configuration_table_is_a_setting() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    named = table_variables(readme, "\n## Configuration\n")
    settings = {config_reference.env_name(name) for name in Settings.model_fields}
    assert len(named) > 20  # the table was found
    assert sorted(named - settings) == []


def test_the_check_mode_reports_a_stale_file(tmp_path: Path) -> None:
    for path, text in config_reference.generated_files().items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text, encoding="utf-8")
    assert config_reference.stale_files(tmp_path) == []
    (tmp_path / ".env.example").write_text("# SEGUE_HOST=0.0.0.0\n", encoding="utf-8")
    assert config_reference.stale_files(tmp_path) == [Path(".env.example")]


def _secret_variables() -> list[str]:
    return [config_reference.env_name(name) for name, field in Settings.model_fields.items()
            if config_reference.type_text(field) == "secret"]


def test_each_secret_in_the_env_example_says_to_fill_it_in() -> None:
    lines = config_reference.env_example().splitlines()
    for variable in _secret_variables():
        at = lines.index(f"# {variable}=")
        notes = "\n".join(lines[at - 2:at])
        assert "Fill in a value" in notes and "empty one is refused" in notes, variable
    for variable in ("SEGUE_WEBCHAT_SECRET", "SEGUE_WEBCHAT_IDENTITY_SECRET"):
        at = lines.index(f"# {variable}=")
        assert lines[at - 1] == f"# Make one with: {config_reference.GENERATE_SECRET}"


@pytest.mark.parametrize("variable", _secret_variables())
def test_a_secret_uncommented_without_a_value_is_refused(
    variable: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [v for v in os.environ if v.upper().startswith("SEGUE_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    line = f"# {variable}="
    assert line in config_reference.env_example().splitlines()
    name, _, value = line.removeprefix("# ").partition("=")
    monkeypatch.setenv(name, value)
    settings, problems = check_settings(None)
    assert settings is None
    assert [str(p) for p in problems] == [
        f"environment {variable}: Value error, is empty: unset it or give it a value"]
