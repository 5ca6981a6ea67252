"""Loading dialog YAML files into `Dialogs`, collecting every problem with its place."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from bot.core.model import Button, Image, Link
from dialogs import model as m
from dialogs.flow_parsing import parse_flow
from dialogs.sections import is_language_code, parse_languages, parse_patterns
from dialogs.source import Located, LocatedList, Problem, Where, read_yaml

SECTIONS = ("languages", "locale", "patterns", "intents", "entities", "slots", "responses",
            "actions", "flows", "fallback")
# What a file with `locale:` may hold: one language's version of these.
LOCALE_SECTIONS = ("locale", "intents", "responses")
PACKAGED_DEMO = Path(__file__).parent / "demo"
# Every bot's repair intents and wording, in the languages Segue ships; a
# bot's own definition of the same name, in the same language, replaces one.
BUILTIN_PATTERNS = Path(__file__).parent / "patterns"
BUILTIN_LANGUAGE = "en"


def resolve_dir(dialogs_dir: str | Path) -> Path:
    """The directory to load. The default `dialogs` falls back to the packaged
    demo bot when run from somewhere without a `dialogs/` directory."""
    path = Path(dialogs_dir)
    if not path.exists() and str(dialogs_dir) == "dialogs":
        return PACKAGED_DEMO
    return path


def dialog_files(directory: Path) -> list[Path]:
    builtin = BUILTIN_PATTERNS.resolve()
    return sorted(
        p for p in directory.rglob("*.yml")
        if p.is_file() and not p.resolve().is_relative_to(builtin)
    )


def load_dialogs(dialogs_dir: str | Path) -> tuple[m.Dialogs | None, list[Problem]]:
    """Parse every `*.yml` under the directory; `None` if any file is unusable."""
    directory = resolve_dir(dialogs_dir)
    if not directory.is_dir():
        return None, [Problem(Where(str(directory)), "dialogs directory not found")]
    files = dialog_files(directory)
    if not files:
        return None, [Problem(Where(str(directory)), "no dialog files (*.yml) found")]
    parser = _Parser()
    for path in sorted(BUILTIN_PATTERNS.rglob("*.yml")):
        shown = path.relative_to(BUILTIN_PATTERNS.parent.parent)  # dialogs/patterns/…
        data, problems = read_yaml(path, str(shown))
        parser.problems.extend(problems)
        if data is not None:
            parser.add_file(data, builtin=True)
    for path in files:
        data, problems = read_yaml(path, str(path))
        parser.problems.extend(problems)
        if data is not None:
            parser.add_file(data)
    return parser.build(Where(str(directory))), parser.problems


class _Parser:
    """Accumulates sections from several files, then builds the frozen model."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        # By language; None is the bot's default language, whatever it is.
        self.intents: dict[str | None, dict[str, m.Intent]] = {}
        self.responses: dict[str | None, dict[str, m.Response]] = {}
        self.builtin_intents: dict[str, dict[str, m.Intent]] = {}
        self.builtin_responses: dict[str, dict[str, m.Response]] = {}
        self.entities: dict[str, m.Entity] = {}
        self.slots: dict[str, m.Slot] = {}
        self.flows: dict[str, m.Flow] = {}
        self.action_names: dict[str, Where] = {}
        self.action_module: str | None = None
        self.fallback: m.Fallback | None = None
        self.languages: tuple[str, ...] | None = None
        self.languages_where: Where | None = None
        self.patterns: m.Patterns | None = None
        self.locale_files: dict[str, Where] = {}

    def problem(self, where: Where, message: str) -> None:
        self.problems.append(Problem(where, message))

    def add_file(self, data: Located, *, builtin: bool = False) -> None:
        locale = data.get("locale")
        if locale is not None and not is_language_code(locale):
            self.problem(data.at("locale"), "locale must be a two-letter ISO 639-1 code such "
                                            "as de, and listed in languages")
            return
        allowed = LOCALE_SECTIONS if locale is not None else SECTIONS
        for key in data:
            if key not in allowed:
                known = ", ".join(allowed)
                kind = f"a file with locale {locale}" if locale is not None else "a dialog file"
                self.problem(data.at(key), f"unknown section {key!r} in {kind} (known: {known})")
        if builtin:
            assert locale is not None
            intents = self.builtin_intents.setdefault(locale, {})
            responses = self.builtin_responses.setdefault(locale, {})
        else:
            if locale is not None:
                self.locale_files.setdefault(locale, data.at("locale"))
            intents = self.intents.setdefault(locale, {})
            responses = self.responses.setdefault(locale, {})
        for name, body, where in self._entries(data, "intents"):
            self._add(intents, name, where, self._intent(name, body, where))
        for name, body, where in self._entries(data, "responses"):
            self._add(responses, name, where, self._response(name, body, where))
        if locale is not None:
            return
        for name, body, where in self._entries(data, "entities"):
            self._add(self.entities, name, where, self._entity(name, body, where))
        for name, body, where in self._entries(data, "slots"):
            self._add(self.slots, name, where, self._slot(name, body, where))
        for name, body, where in self._entries(data, "flows"):
            self._add(self.flows, name, where, parse_flow(name, body, where, self.problem))
        if "actions" in data:
            self._actions(data["actions"], data.at("actions"))
        if "fallback" in data:
            self.fallback = self._fallback(data["fallback"], data.at("fallback"))
        if "languages" in data:
            if self.languages is not None:
                self.problem(data.at("languages"), "languages is set twice")
            self.languages_where = data.at("languages")
            self.languages = parse_languages(data["languages"], data.at("languages"),
                                             self.problem)
        if "patterns" in data:
            if self.patterns is not None:
                self.problem(data.at("patterns"), "patterns is set twice")
            self.patterns = parse_patterns(data["patterns"], data.at("patterns"), self.problem)

    def build(self, where: Where) -> m.Dialogs | None:
        if any(p.message.startswith("invalid YAML") for p in self.problems):
            return None
        languages = self.languages or (BUILTIN_LANGUAGE,)
        default = languages[0]
        for locale, at in self.locale_files.items():
            # A broken `languages` was reported; its files are not wrong too.
            broken = self.languages_where is not None and self.languages is None
            if locale not in languages and not broken:
                self.problem(at, f"locale {locale!r} is not in languages ({', '.join(languages)})")
        intents = {loc: self._merged(self.builtin_intents, self.intents, loc, default)
                   for loc in languages}
        responses = {loc: self._merged(self.builtin_responses, self.responses, loc, default)
                     for loc in languages}
        if default not in self.builtin_responses:
            # A language Segue ships no wording for: its patterns speak English
            # until the bot says otherwise.
            fallback_words = self.builtin_responses.get(BUILTIN_LANGUAGE, {})
            responses[default] = {**fallback_words, **responses[default]}
        for locale in languages[1:]:
            for name, response in responses[locale].items():
                if name not in responses[default]:
                    self.problem(response.where, f"response {name!r} of locale {locale} has "
                                                 f"no {default} version")
        translated = {
            name: replace(response, translations={
                loc: responses[loc][name] for loc in languages[1:] if name in responses[loc]})
            for name, response in responses[default].items()
        }
        return m.Dialogs(
            intents=_in_locale(intents[default], default),
            entities=self.entities,
            slots=self.slots,
            responses=translated,
            actions=m.ActionsConfig(self.action_module, self.action_names),
            flows=self.flows,
            fallback=self.fallback or m.Fallback(None, 2, None, None, where),
            languages=languages,
            patterns=self.patterns or m.Patterns(),
            translated_intents={loc: _in_locale(intents[loc], loc) for loc in languages[1:]},
        )

    def _merged(self, builtin: dict[str, dict[str, Any]], own: dict[str | None, dict[str, Any]],
                locale: str, default: str) -> dict[str, Any]:
        """One language's table: the built-in entries, then the bot's over them."""
        merged = dict(builtin.get(locale, {}))
        explicit = own.get(locale, {})
        if locale == default:
            unnamed = own.get(None, {})
            for name in unnamed.keys() & explicit.keys():
                first = unnamed[name].where
                self.problem(explicit[name].where, f"{name!r} is defined twice (first at {first})")
            merged.update(unnamed)
        merged.update(explicit)
        return merged

    # Sections.

    def _entries(self, data: Located, section: str) -> list[tuple[str, Any, Where]]:
        body = data.get(section)
        if body is None:
            return []
        if not isinstance(body, Located):
            self.problem(data.at(section), f"{section} must be a mapping of names")
            return []
        return [(str(k), v, body.at(k)) for k, v in body.items()]

    def _add(self, table: dict[str, Any], name: str, where: Where, item: Any) -> None:
        if item is None:
            return
        if name in table:
            self.problem(where, f"{name!r} is defined twice (first at {table[name].where})")
            return
        table[name] = item

    def _intent(self, name: str, body: Any, where: Where) -> m.Intent | None:
        examples = body.get("examples") if isinstance(body, Located) else body
        if not isinstance(examples, list) or not examples:
            self.problem(where, f"intent {name!r} needs a list of examples")
            return None
        title = _opt_str(body.get("title")) if isinstance(body, Located) else None
        return m.Intent(name, tuple(str(e) for e in examples), where, title)

    def _entity(self, name: str, body: Any, where: Where) -> m.Entity | None:
        if not isinstance(body, Located) or not ({"regex", "lookup"} & body.keys()):
            self.problem(where, f"entity {name!r} needs a regex or a lookup list")
            return None
        regex = self._regex(body, "regex", f"entity {name!r}")
        lookup = body.get("lookup") or []
        if not isinstance(lookup, list):
            self.problem(body.at("lookup"), f"lookup of entity {name!r} must be a list")
            lookup = []
        return m.Entity(name, regex, tuple(str(v) for v in lookup), where)

    def _regex(self, body: Located, key: str, owner: str) -> re.Pattern[str] | None:
        source = body.get(key)
        if source is None:
            return None
        try:
            return re.compile(str(source))
        except re.error as exc:
            self.problem(body.at(key), f"bad regex in {owner}: {exc}")
            return None

    def _slot(self, name: str, body: Any, where: Where) -> m.Slot | None:
        body = body if isinstance(body, Located) else _empty(where)
        kind = body.get("type", "text")
        if kind not in ("text", "bool"):
            self.problem(body.at("type"), f"slot {name!r}: type must be text or bool")
            kind = "text"
        normalize = body.get("normalize", "none")
        if normalize not in ("upper", "lower", "none"):
            self.problem(body.at("normalize"), f"slot {name!r}: normalize must be upper or lower")
            normalize = "none"
        return m.Slot(
            name=name,
            type=kind,
            entity=_opt_str(body.get("entity")),
            validate=self._regex(body, "validate", f"slot {name!r}"),
            normalize=normalize,
            prompt=_opt_str(body.get("prompt")),
            invalid=_opt_str(body.get("invalid")),
            where=where,
            help=_opt_str(body.get("help")),
        )

    def _response(self, name: str, body: Any, where: Where) -> m.Response | None:
        if isinstance(body, str):
            return m.Response(name, m.Variant(body), {}, where)
        if not isinstance(body, Located) or "text" not in body:
            self.problem(where, f"response {name!r} needs a text")
            return None
        default = self._variant(body, where)
        channels: dict[str, m.Variant] = {}
        per_channel = body.get("channels")
        if per_channel is None:
            return m.Response(name, default, channels, where)
        if not isinstance(per_channel, Located):
            self.problem(body.at("channels"), "channels must map a channel to a variant")
            return m.Response(name, default, channels, where)
        for channel, variant in per_channel.items():
            if isinstance(variant, str):
                channels[channel] = replace(default, text=variant)
            elif isinstance(variant, Located):
                merged = Located({**body, **variant})
                merged.where, merged.key_where = variant.where, variant.key_where
                channels[channel] = self._variant(merged, variant.where)
            else:
                self.problem(per_channel.at(channel), f"bad variant for channel {channel!r}")
        return m.Response(name, default, channels, where)

    def _variant(self, body: Located, where: Where) -> m.Variant:
        buttons, images, links = [], [], []
        for item in body.get("buttons") or []:
            if isinstance(item, dict) and "title" in item and "payload" in item:
                buttons.append(Button(str(item["title"]), str(item["payload"])))
            else:
                self.problem(body.at("buttons"), "a button needs a title and a payload")
        for item in body.get("images") or []:
            if isinstance(item, dict) and "url" in item:
                images.append(Image(str(item["url"]), str(item.get("alt", ""))))
            else:
                self.problem(body.at("images"), "an image needs a url")
        for item in body.get("links") or []:
            if isinstance(item, dict) and "url" in item and "title" in item:
                links.append(Link(str(item["url"]), str(item["title"])))
            else:
                self.problem(body.at("links"), "a link needs a url and a title")
        return m.Variant(str(body["text"]), tuple(buttons), tuple(images), tuple(links))

    def _actions(self, body: Any, where: Where) -> None:
        if not isinstance(body, Located):
            self.problem(where, "actions must be a mapping with module and names")
            return
        if "module" in body:
            if self.action_module is not None:
                self.problem(body.at("module"), "the actions module is set twice")
            self.action_module = str(body["module"])
        names = body.get("names") or []
        if not isinstance(names, LocatedList):
            self.problem(body.at("names"), "actions.names must be a list")
            return
        for i, action in enumerate(names):
            self.action_names[str(action)] = names.at(i)

    def _fallback(self, body: Any, where: Where) -> m.Fallback | None:
        if not isinstance(body, Located):
            self.problem(where, "fallback must be a mapping")
            return None
        after = body.get("handoff_after", 2)
        if not isinstance(after, int) or after < 0:
            self.problem(body.at("handoff_after"), "handoff_after must be a whole number >= 0")
            after = 2
        return m.Fallback(
            response=_opt_str(body.get("response")),
            handoff_after=after,
            handoff_response=_opt_str(body.get("handoff_response")),
            action_failed=_opt_str(body.get("action_failed")),
            where=where,
        )

def _in_locale(intents: dict[str, m.Intent], locale: str) -> dict[str, m.Intent]:
    return {name: replace(intent, locale=locale) for name, intent in intents.items()}


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _empty(where: Where) -> Located:
    data = Located()
    data.where, data.key_where = where, {}
    return data
