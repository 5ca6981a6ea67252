"""The configuration reference, generated from `Settings`: `docs/configuration.md`
and `.env.example`. The settings model is the one source of names, types,
defaults and meanings, so the two files cannot drift from it unnoticed.

`python -m bot.assembly.config_reference` writes both files; with `--check`
it writes nothing and exits 1 if either differs from what it would write.
"""

from __future__ import annotations

import argparse
import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import SecretStr
from pydantic.fields import FieldInfo

from bot.core.settings import SETTING_GROUPS, Settings

ROOT = Path(__file__).resolve().parents[2]
MARKDOWN_PATH = Path("docs/configuration.md")
ENV_EXAMPLE_PATH = Path(".env.example")
ENV_PREFIX = "SEGUE_"
REGENERATE = "python -m bot.assembly.config_reference"
# Characters that make a value in an env file need quotes (shells and
# docker compose both read this file).
_NEEDS_QUOTES = frozenset(" \t#\"'$`\\")

_MARKDOWN_INTRO = f"""\
# Configuration reference

<!-- Generated from bot/core/settings.py by `{REGENERATE}`: edit the
descriptions there, not this file. -->

Segue reads `config/segue.yml` (or the file given with `--config FILE`); every
key can be overridden by its environment variable, which wins over the file.
Put secrets in the environment, never in the file. [`.env.example`](../.env.example)
lists every variable with its default. `segue check` validates the whole
configuration and names the file and line (or the variable) of each problem;
an unknown key in the file is an error, and so is a `SEGUE_*` variable that is
no setting (a misspelt one would otherwise be ignored). A secret given empty is
refused: unset it or give it a value. Numbers must be finite (no `inf`, `nan`).

`segue run --host H --port P --workers N` override those three settings.
"""

_MARKDOWN_RULES = """\
## Rules across settings

- `telegram_mode: webhook` with `telegram_token` set needs
  `telegram_webhook_secret`.
- `slack_bot_token` needs `slack_signing_secret` (HTTP events),
  `slack_app_token` (Socket Mode), or both.
- `workers` above 1 needs `redis_url`: `segue run` exits 2 otherwise.
- `events_url` needs `events_secret`: events are only sent signed.
"""

_ENV_INTRO = f"""\
# Segue's environment variables, each commented out with its default.
# Generated from bot/core/settings.py by `{REGENERATE}`.
# Uncomment what you change; the environment wins over config/segue.yml.
# Secrets are left empty: fill them in here or in your secret store; one
# uncommented with an empty value is refused.
"""
# The keys Segue signs with: a long random value, made by this command.
GENERATE_SECRET = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'
_SIGNING_KEYS = frozenset({"webchat_secret", "webchat_identity_secret", "events_secret"})


def env_name(name: str) -> str:
    """The environment variable of a setting."""
    return ENV_PREFIX + name.upper()


def _without_none(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        kept = [a for a in get_args(annotation) if a is not type(None)]
        if len(kept) == 1:
            return kept[0]
    return annotation


def _number(value: Any) -> str:
    return format(value, "g") if isinstance(value, float) else str(value)


def _bounds(field: FieldInfo, integral: bool) -> str:
    """The field's numeric constraints, readable: `1..64`, `> 0`, `0..63`."""
    low: Any = None
    high: Any = None
    low_open = high_open = False
    for item in field.metadata:
        if isinstance(item, annotated_types.Ge):
            low = item.ge
        elif isinstance(item, annotated_types.Gt):
            low, low_open = item.gt, True
        elif isinstance(item, annotated_types.Le):
            high = item.le
        elif isinstance(item, annotated_types.Lt):
            high, high_open = item.lt, True
    if integral:  # an open bound of an integer is the closed one next to it
        if low is not None and low_open and high is not None:
            low, low_open = low + 1, False
        if high is not None and high_open and low is not None:
            high, high_open = high - 1, False
    if low is not None and high is not None and not (low_open or high_open):
        return f"{_number(low)}..{_number(high)}"
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '≥'} {_number(low)}")
    if high is not None:
        parts.append(f"{'<' if high_open else '≤'} {_number(high)}")
    return ", ".join(parts)


def type_text(field: FieldInfo) -> str:
    """A setting's type as an operator reads it: `int 1..64`, `text`, `secret`,
    `one of text, json`, `true/false`, `number > 0`."""
    annotation = _without_none(field.annotation)
    if annotation is SecretStr:
        return "secret"
    if annotation is bool:
        return "true/false"
    if get_origin(annotation) is Literal:
        return "one of " + ", ".join(str(a) for a in get_args(annotation))
    if annotation is int or annotation is float:
        base = "int" if annotation is int else "number"
        bounds = _bounds(field, integral=annotation is int)
        return f"{base} {bounds}" if bounds else base
    if annotation is str:
        return "text"
    raise TypeError(f"no readable name for the type {annotation!r}: add one here")


def default_value(field: FieldInfo) -> str | None:
    """The default as it would be written in the environment; None: unset."""
    value = field.default
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, SecretStr):
        return None  # a secret's default is never printed
    return _number(value)


def description(name: str) -> str:
    """A setting's meaning; a ValueError names a setting without one."""
    text = Settings.model_fields[name].description
    if not text:
        raise ValueError(f"the setting {name!r} has no description in bot/core/settings.py")
    return " ".join(text.split())


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def configuration_markdown() -> str:
    """The text of `docs/configuration.md`."""
    out = [_MARKDOWN_INTRO]
    for title, names in SETTING_GROUPS:
        out.append(f"\n## {title}\n\n")
        out.append("| YAML key | environment variable | type | default | meaning |\n")
        out.append("|---|---|---|---|---|\n")
        for name in names:
            field = Settings.model_fields[name]
            default = default_value(field)
            shown = f"`{_cell(default)}`" if default is not None else "unset"
            out.append(f"| `{name}` | `{env_name(name)}` | {type_text(field)} | {shown} "
                       f"| {_cell(description(name))} |\n")
    out.append("\n" + _MARKDOWN_RULES)
    return "".join(out)


def _env_value(value: str | None) -> str:
    if value is None:
        return ""
    if any(c in _NEEDS_QUOTES for c in value):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value


def env_example() -> str:
    """The text of `.env.example`."""
    out = [_ENV_INTRO]
    for title, names in SETTING_GROUPS:
        out.append(f"\n# --- {title} ---\n")
        for name in names:
            field = Settings.model_fields[name]
            out.append(f"\n# {description(name)} ({type_text(field)})\n")
            out.append(_fill_in_note(name, field))
            out.append(f"# {env_name(name)}={_env_value(default_value(field))}\n")
    return "".join(out)


def _fill_in_note(name: str, field: FieldInfo) -> str:
    """For a secret: that it needs a value once uncommented."""
    if type_text(field) != "secret":
        return ""
    note = "# Fill in a value if you uncomment it: an empty one is refused.\n"
    if name in _SIGNING_KEYS:
        note += f"# Make one with: {GENERATE_SECRET}\n"
    return note


def ungrouped_settings() -> list[str]:
    """Settings in no group, or in more than one, or groups naming no setting."""
    grouped = [name for _, names in SETTING_GROUPS for name in names]
    fields = set(Settings.model_fields)
    problems = [f"{name}: in no group" for name in Settings.model_fields if name not in grouped]
    problems += [f"{name}: in {grouped.count(name)} groups" for name in sorted(set(grouped))
                 if grouped.count(name) > 1]
    problems += [f"{name}: no such setting" for name in grouped if name not in fields]
    return problems


def generated_files() -> dict[Path, str]:
    """Each generated file, relative to the repository, with its text."""
    problems = ungrouped_settings()
    if problems:
        raise ValueError("SETTING_GROUPS in bot/core/settings.py: " + "; ".join(problems))
    return {MARKDOWN_PATH: configuration_markdown(), ENV_EXAMPLE_PATH: env_example()}


def stale_files(root: Path = ROOT) -> list[Path]:
    """The generated files under `root` whose text is not what they would be now."""
    stale = []
    for path, text in generated_files().items():
        target = root / path
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            stale.append(path)
    return stale


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=REGENERATE, description=__doc__)
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a file is out of date")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        for path in stale:
            print(f"{path} is out of date: run `{REGENERATE}`", file=sys.stderr)
        return 1 if stale else 0
    for path, text in generated_files().items():
        (ROOT / path).write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
