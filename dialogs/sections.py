"""The `languages` and `patterns` sections of the dialog files."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from dialogs import model as m
from dialogs.language import known_language
from dialogs.source import Located, Where

Report = Callable[[Where, str], None]

# ISO 639-1: the codes the language identification knows.
_LANGUAGE = re.compile(r"^[a-z]{2}$")
PATTERN_KEYS = ("cancel", "repeat", "cannot_answer", "chitchat", "clarify", "correction",
                "interruption", "destructive")


def is_language_code(value: Any) -> bool:
    return isinstance(value, str) and _LANGUAGE.match(value) is not None


def parse_languages(body: Any, where: Where, problem: Report) -> tuple[str, ...] | None:
    """`languages: [en, de, es]`: ISO 639-1 codes, the default first."""
    if not isinstance(body, list) or not body:
        problem(where, "languages must be a list of language codes such as [en, de], "
                       "the default first")
        return None
    codes: list[str] = []
    for code in body:
        if not is_language_code(code) or not known_language(code):
            problem(where, f"language {code!r} is not a two-letter ISO 639-1 code such as de "
                           "(of a language the language identification knows)")
        elif code in codes:
            problem(where, f"language {code!r} is listed twice")
        else:
            codes.append(code)
    return tuple(codes) if codes and len(codes) == len(body) else None


def parse_patterns(body: Any, where: Where, problem: Report) -> m.Patterns:
    """The bot's settings for the repair patterns, over the defaults."""
    defaults = m.Patterns()
    if not isinstance(body, Located):
        problem(where, "patterns must be a mapping (see dialogs/README.md)")
        return defaults
    for key in body:
        if key not in PATTERN_KEYS:
            problem(body.at(key), f"unknown pattern {key!r} (known: {', '.join(PATTERN_KEYS)})")
    chitchat = defaults.chitchat
    if "chitchat" in body:
        chitchat = _chitchat(body["chitchat"], body.at("chitchat"), problem)
    margin = defaults.clarify_margin
    if "clarify" in body:
        margin = _number(body["clarify"], "margin", body.at("clarify"), problem, margin)
    confidence = defaults.destructive_confidence
    if "destructive" in body:
        confidence = _number(body["destructive"], "min_confidence", body.at("destructive"),
                             problem, confidence)
    return m.Patterns(
        cancel=_intent(body, "cancel", defaults.cancel, problem),
        repeat=_intent(body, "repeat", defaults.repeat, problem),
        cannot_answer=_intent(body, "cannot_answer", defaults.cannot_answer, problem),
        chitchat=chitchat,
        clarify_margin=margin,
        correction=_switch(body, "correction", problem),
        interruption=_switch(body, "interruption", problem),
        destructive_confidence=confidence,
        where=where,
    )


def _intent(body: Located, key: str, default: str | None, problem: Report) -> str | None:
    if key not in body:
        return default
    value = body[key]
    if value is False:
        return None
    if isinstance(value, Located) and isinstance(value.get("intent"), str):
        return str(value["intent"])
    problem(body.at(key), f"pattern {key!r} must be false or {{intent: <name>}}")
    return default


def _switch(body: Located, key: str, problem: Report) -> bool:
    value = body.get(key, True)
    if not isinstance(value, bool):
        problem(body.at(key), f"pattern {key!r} must be true or false")
        return True
    return value


def _chitchat(value: Any, where: Where, problem: Report) -> dict[str, str]:
    if value is False:
        return {}
    if not isinstance(value, Located) or not all(isinstance(v, str) for v in value.values()):
        problem(where, "chitchat must be false or map an intent to the response that answers it")
        return dict(m.DEFAULT_CHITCHAT)
    return {str(k): str(v) for k, v in value.items()}


def _number(value: Any, key: str, where: Where, problem: Report, default: float) -> float:
    if value is False:  # never ask which one / no stricter bar
        return 0.0
    number = value.get(key) if isinstance(value, Located) else None
    if isinstance(number, int | float) and not isinstance(number, bool) and 0 <= number <= 1:
        return float(number)
    problem(where, f"expected false or {{{key}: <a number from 0 to 1>}}")
    return default
