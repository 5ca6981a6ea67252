"""YAML reading that remembers where each element came from, for error messages."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True, slots=True)
class Where:
    """A place in a dialog file: `flows.yml:12`."""

    file: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True, slots=True)
class Problem:
    """One error in the dialog files; prints as `file:line: message`. A
    warning (a translation missing, say) is reported but stops nothing."""

    where: Where
    message: str
    warning: bool = False

    def __str__(self) -> str:
        kind = "warning: " if self.warning else ""
        return f"{self.where}: {kind}{self.message}"


class Located(dict[str, Any]):
    """A YAML mapping that knows its own line and the line of each key."""

    where: Where
    key_where: dict[str, Where]

    def at(self, key: str) -> Where:
        return self.key_where.get(key, self.where)


class LocatedList(list[Any]):
    """A YAML sequence that knows its line and the line of each item."""

    where: Where
    item_where: list[Where]

    def at(self, index: int) -> Where:
        return self.item_where[index] if index < len(self.item_where) else self.where


def _loader_for(file: str) -> type[yaml.SafeLoader]:
    class _Loader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML ships no types
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
            data = Located(super().construct_mapping(node, deep=True))
            data.where = Where(file, node.start_mark.line + 1)
            data.key_where = {
                str(k.value): Where(file, k.start_mark.line + 1)
                for k, _ in node.value
                if isinstance(k, yaml.ScalarNode)
            }
            return data

        def construct_sequence(self, node: yaml.SequenceNode, deep: bool = False) -> Any:
            data = LocatedList(super().construct_sequence(node, deep=True))
            data.where = Where(file, node.start_mark.line + 1)
            data.item_where = [Where(file, n.start_mark.line + 1) for n in node.value]
            return data

    _Loader.add_constructor("tag:yaml.org,2002:map", _Loader.construct_mapping)
    _Loader.add_constructor("tag:yaml.org,2002:seq", _Loader.construct_sequence)
    return _Loader


def read_yaml(path: Path, shown_as: str) -> tuple[Located | None, list[Problem]]:
    """The top-level mapping of one dialog file, or the reason it has none."""
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.load(text, Loader=_loader_for(shown_as))  # noqa: S506 - a SafeLoader
    except OSError as exc:
        return None, [Problem(Where(shown_as), f"cannot read: {exc.strerror}")]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        return None, [Problem(Where(shown_as, line), f"invalid YAML: {reason}")]
    if data is None:
        empty = Located()
        empty.where, empty.key_where = Where(shown_as, 1), {}
        return empty, []
    if not isinstance(data, Located):
        return None, [Problem(Where(shown_as, 1), "a dialog file must be a mapping")]
    return data, []
