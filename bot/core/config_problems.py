"""Problems of a configuration, each with where it is: a line of the YAML
file, an environment variable, or the settings as a whole.

The settings model (`bot.core.settings`) raises the errors; this module
reads the file and says where each error came from.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic_core import ErrorDetails

from bot.core.errors import ConfigError

ENV_PREFIX = "SEGUE_"
# The error type of a rule across settings; its context names the settings
# the rule joins, so that the error is blamed on where they were given.
CROSS_SETTING_ERROR = "settings_conflict"


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One error in a configuration file, with where it is."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


def env_variable(name: str) -> str:
    """The environment variable of a setting."""
    return ENV_PREFIX + name.upper()


def read_yaml(path: Path) -> tuple[dict[str, Any], dict[str, int]]:
    """The mapping in `path` and the 1-based line of each top-level key."""
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(ConfigProblem(str(path), line, f"invalid YAML: {exc}")) from exc
    if data is None:
        return {}, {}
    if not isinstance(data, dict) or not isinstance(node, yaml.MappingNode):
        raise ConfigError(ConfigProblem(str(path), 1, "the file must be a mapping of settings"))
    lines = {
        k.value: k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)
    }
    return data, lines


def involved_settings(error: ErrorDetails) -> tuple[str, ...]:
    """The settings a rule across settings names in its error; () for
    any other error."""
    if error["type"] != CROSS_SETTING_ERROR:
        return ()
    names = error.get("ctx", {}).get("settings", ())
    return tuple(str(name) for name in names)


def problem_of(error: ErrorDetails, *, config_path: str, lines: Mapping[str, int],
               environ: Mapping[str, str]) -> ConfigProblem:
    """An error of the settings model, blamed on where its value came from:
    the environment wins over the file; a rule across settings given by
    neither is blamed on the settings as a whole."""
    key = str(error["loc"][0]) if error["loc"] else ""
    if key:
        variable = env_variable(key)
        if variable in environ:
            return ConfigProblem(f"environment {variable}", None, error["msg"])
        return ConfigProblem(config_path, lines.get(key), f"{key}: {error['msg']}")
    involved = involved_settings(error)
    from_environment = [env_variable(n) for n in involved if env_variable(n) in environ]
    in_file = [n for n in involved if n in lines and env_variable(n) not in environ]
    if in_file:
        return ConfigProblem(config_path, lines[in_file[0]], error["msg"])
    if from_environment:
        return ConfigProblem("environment " + ", ".join(from_environment), None, error["msg"])
    return ConfigProblem("settings", None, error["msg"])


def unknown_environment(environ: Mapping[str, str],
                        settings: Collection[str]) -> list[ConfigProblem]:
    """A problem for each `SEGUE_*` variable that is none of `settings`: a
    typo would otherwise leave the setting at its default without a word."""
    known = [env_variable(name) for name in settings]
    problems = []
    for variable in sorted(environ):
        name = variable.upper()  # the settings read the names in any case
        if not name.startswith(ENV_PREFIX) or name in known:
            continue
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        problems.append(
            ConfigProblem(f"environment {variable}", None, "not a Segue setting" + hint))
    return problems
