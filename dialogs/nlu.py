"""Intent recognition and entity extraction.

The built-in classifier is trained from the intents' example phrases when the
bot starts: TF-IDF vectors of words, word pairs and character trigrams,
compared by cosine similarity with every example; an intent scores its nearest
example plus half its second nearest, so a message close to several phrasings
of one intent is surer than one close to a single odd example. Unknown
words are corrected to a known word one edit away first, so "wheres my ordr??"
still finds "where is my order". Everything is precomputed; a message costs a
few dictionary look-ups per feature.
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Protocol

import aiohttp

from dialogs.model import Entity, Intent

log = logging.getLogger(__name__)

_NON_WORD = re.compile(r"[^a-z0-9]+")
_APOSTROPHES = re.compile(r"['\u2019`]")
_REPEATS = re.compile(r"(.)\1{2,}")
_DOUBLES = re.compile(r"(.)\1+")
# Word pairs tell "forget me" from "tell me"; trigrams survive typos the
# one-edit correction cannot fix. These constants and the stopwords are tuned
# on the tuning sets (tests/unit/nlu_tuning_*.py) and by leaving out one demo
# example at a time, never on the held-out sets (tests/unit/nlu_heldout_*.py;
# see dialogs/README.md).
_WEIGHTS = {"w": 1.0, "b": 0.6, "c": 0.5}
# How much an intent's second-nearest example adds to its nearest one.
_SECOND_WEIGHT = 0.5
# The confidence lost when every content word is unknown (proportionally less
# for fewer): "tell me a joke" shares "tell me" with an order question, and
# little else.
_UNKNOWN_PENALTY = 0.9
# How much of an unknown word a spelling-corrected one counts as.
_GUESS_PENALTY = 0.5
# A stem shared with a known word, or a known last part of a compound.
_STEM, _PART = 5, 4
# Function words say little about the intent alone ("what is the capital of
# France" is no order question); they still count inside word pairs. Per
# language, as `normalise` leaves them (no accents); "no", "ja" and question
# words such as "wo" are not among them: they carry intents.
STOPWORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        "a an the is are am was be to of for in on at with my me i you your it its this that "
        "what can do does did and or will would could there some about have has we our just "
        "im id ive its so please".split()
    ),
    "de": frozenset(
        "der die das den dem des ein eine einen einem einer ist sind bin bist war ich du sie "
        "er es wir ihr mein meine meinen meinem meiner mir mich dir dich euch und oder zu von "
        "mit fur auf in im an am bei kann konnen konnten konnte mal doch bitte schon noch "
        "nur so hab habe hast hat haben gibt es denn eigentlich".split()
    ),
    "es": frozenset(
        "el la los las lo un una unos unas de del al a en y o que es son soy eres mi mis me "
        "te tu su sus se le les por para con este esta esto estos hay ya muy pero favor "
        "porfa usted ustedes puedo puede puedes podria como".split()
    ),
}
_STOPWORDS = STOPWORDS["en"]


@dataclass(frozen=True, slots=True)
class EntityValue:
    """An entity found in a message."""

    entity: str
    value: str


@dataclass(frozen=True, slots=True)
class NluResult:
    """The understanding of one message; `intent` is None when nothing fits.

    `ranking` is the best intents with their confidences, best first;
    `locale` the language whose examples matched best, where known;
    `specific` whether most of the message's words are words of the chosen
    intent's examples (a destructive intent asks for it).
    """

    intent: str | None
    confidence: float
    entities: tuple[EntityValue, ...] = ()
    ranking: tuple[tuple[str, float], ...] = ()
    locale: str | None = None
    specific: bool = True

    def entity(self, name: str) -> str | None:
        """The last value found: "A1001, sorry, A1002" means A1002."""
        value = None
        for found in self.entities:
            if found.entity == name:
                value = found.value
        return value

    def values(self, name: str) -> list[str]:
        return [found.value for found in self.entities if found.entity == name]


class Nlu(Protocol):
    """Understands one message: its intent, a confidence in [0, 1], and entities.
    `locale` is the conversation's language, where known: a hint, no more,
    unless `certain` (the language was identified from the message itself)."""

    async def parse(self, text: str, locale: str | None = None, *,
                    certain: bool = False) -> NluResult: ...


def normalise(text: str) -> list[str]:
    """Lower-case ASCII words: accents, apostrophes and punctuation removed."""
    lowered = text.lower().replace("\u00df", "ss")  # "Straße": no ASCII form of its own
    folded = unicodedata.normalize("NFKD", lowered).encode("ascii", "ignore").decode()
    folded = _APOSTROPHES.sub("", folded)
    return _NON_WORD.sub(" ", folded).split()


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


class _Speller:
    """Maps an unknown word to a known word at most one edit (or swap) away."""

    def __init__(self, counts: Counter[str]) -> None:
        self.counts = counts
        self.index: dict[str, set[str]] = defaultdict(set)
        for word in counts:
            self.index[word].add(word)
            if len(word) >= 3:
                for variant in _deletes(word):
                    self.index[variant].add(word)

    def correct(self, word: str) -> str:
        if word in self.counts:
            return word
        for squeezed in (_REPEATS.sub(r"\1\1", word), _DOUBLES.sub(r"\1", word)):
            if squeezed in self.counts:  # "hiii", "nooo", "yess"
                return squeezed
        if len(word) < 4:
            return word
        # A missing letter ("ordr"); longer words may also have a wrong, extra
        # or swapped one. Short words are left alone: "like" is not "live".
        candidates: set[str] = set(self.index.get(word, ()))
        if len(word) >= 5:
            for variant in _deletes(word):
                candidates |= self.index.get(variant, set())
        if not candidates:
            return word
        return max(candidates, key=lambda w: (self.counts[w], w))


class IntentClassifier:
    """Nearest-example intent classifier; see the module docstring."""

    def __init__(self, intents: Iterable[Intent], stopwords: frozenset[str] = _STOPWORDS) -> None:
        self.stopwords = stopwords
        examples = [(i.name, normalise(e)) for i in intents for e in i.examples]
        self.labels = [name for name, _ in examples]
        self.vocabulary: dict[str, set[str]] = defaultdict(set)
        self.pairs: dict[str, set[tuple[str, str]]] = defaultdict(set)
        self.phrasings: dict[str, set[tuple[str, ...]]] = defaultdict(set)
        for name, words in examples:
            self.phrasings[name].add(tuple(words))
            self.vocabulary[name].update(w for w in words if w not in stopwords)
            self.pairs[name].update(zip(words, words[1:], strict=False))
        self._speller = _Speller(Counter(w for _, words in examples for w in words))
        self._stems = {w[:k] for w in self._speller.counts for k in range(_STEM, len(w) + 1)}
        features = [self._raw_features(words) for _, words in examples]
        df = Counter(f for feats in features for f in feats)
        total = len(features) + 1
        self._idf = {f: math.log(total / n) + 1.0 for f, n in df.items()}
        self._postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for index, feats in enumerate(features):
            for feature, weight in self._vector(feats).items():
                self._postings[feature].append((index, weight))

    def _related(self, word: str) -> bool:
        """Whether a known word is this one's stem or its last part."""
        stems, known = self._stems, self._speller.counts
        return (any(word[:k] in stems for k in range(_STEM, len(word)))
                or any(word[i:] in known for i in range(1, len(word) - _PART + 1)))

    def _raw_features(self, words: list[str]) -> Counter[str]:
        feats: Counter[str] = Counter()
        content = [w for w in words if w not in self.stopwords] or words
        for word in content:
            feats["w" + word] += 1
            padded = f"#{word}#"
            for i in range(len(padded) - 2):
                feats["c" + padded[i : i + 3]] += 1
        for first, second in zip(words, words[1:], strict=False):
            feats[f"b{first} {second}"] += 1
        return feats

    def _vector(self, feats: Counter[str]) -> dict[str, float]:
        vector = {
            f: _WEIGHTS[f[0]] * (1 + math.log(n)) * self._idf[f]
            for f, n in feats.items()
            if f in self._idf
        }
        norm = math.sqrt(sum(v * v for v in vector.values())) or 1.0
        return {f: v / norm for f, v in vector.items()}

    @lru_cache(maxsize=8192)  # noqa: B019 - one classifier per bot, kept for its life
    def is_specific(self, text: str, intent: str) -> bool:
        """Whether the message says this intent in so many words: most of its
        content words are words of the intent's examples, and two of them are,
        or a word pair is ("forget me"). "a text message" shares one word
        with "erase all my messages", and "delete" alone says not what."""
        words = [self._speller.correct(w) for w in normalise(text)]
        if tuple(words) in self.phrasings.get(intent, ()):
            return True  # one of its examples, word for word ("olvídame")
        content = [w for w in words if w not in self.stopwords] or words
        known = sum(w in self.vocabulary.get(intent, ()) for w in content)
        paired = any(p in self.pairs.get(intent, ()) for p in zip(words, words[1:], strict=False))
        return known * 2 > len(content) and (known >= 2 or paired)

    def rank(self, text: str) -> tuple[tuple[str, float], ...]:
        """The intents by score, best first (at most five). A score is a
        confidence, except that a message near several examples of one
        intent may score above 1."""
        return self._rank(text)

    @lru_cache(maxsize=8192)  # noqa: B019 - one classifier per bot, kept for its life
    def _rank(self, text: str) -> tuple[tuple[str, float], ...]:
        typed = normalise(text)
        words = [self._speller.correct(w) for w in typed]
        if not words:
            return ()
        scores: dict[int, float] = defaultdict(float)
        for feature, weight in self._vector(self._raw_features(words)).items():
            for index, example_weight in self._postings[feature]:
                scores[index] += weight * example_weight
        if not scores:
            return ()
        top: dict[str, list[float]] = {}  # per intent: its two best similarities
        for index, score in scores.items():
            pair = top.setdefault(self.labels[index], [0.0, 0.0])
            if score > pair[0]:
                pair[0], pair[1] = score, pair[0]
            elif score > pair[1]:
                pair[1] = score
        intent_scores = {name: a + _SECOND_WEIGHT * b for name, (a, b) in top.items()}
        # Words never seen in any example make the guess less sure.
        content = [w for w in words if w not in self.stopwords] or words
        unknown = sum(1 for w in content if w not in self._speller.counts)
        # A corrected word is a guess: "banana" is one letter from "manana";
        # so is a word known only by its stem or its last part ("tracking",
        # German "Sendungsnummer", "weiterhelfen").
        guessed = sum(1 for w, t in zip(words, typed, strict=True)
                      if w != t and w not in self.stopwords)
        related = sum(1 for w in content
                      if w not in self._speller.counts and self._related(w))
        unknown -= related
        guessed += related
        certainty = 1.0 - _UNKNOWN_PENALTY * (unknown + _GUESS_PENALTY * guessed) / len(content)
        best = sorted(intent_scores.items(), key=lambda item: (-item[1], item[0]))[:5]
        # Not capped at 1: two close matches stay told apart by how close.
        return tuple((name, score * certainty) for name, score in best)


class EntityExtractor:
    """Finds entities by regular expression or by a list of words."""

    def __init__(self, entities: Iterable[Entity]) -> None:
        self.regexes = [(e.name, e.regex) for e in entities if e.regex is not None]
        self.lookups = [
            (e.name, value, re.compile(r"\b" + re.escape(" ".join(normalise(value))) + r"\b"))
            for e in entities
            for value in e.lookup
        ]

    def extract(self, text: str) -> tuple[EntityValue, ...]:
        found: list[EntityValue] = []
        for name, regex in self.regexes:
            for match in regex.finditer(text):
                found.append(EntityValue(name, match.group(match.lastindex or 0)))
        if self.lookups:
            flat = " ".join(normalise(text))
            for name, value, pattern in self.lookups:
                if pattern.search(flat):
                    found.append(EntityValue(name, value))
        return tuple(found)


class BuiltinNlu:
    """The in-process NLU: no network, trained at start-up, one classifier per
    language. A message is read in every language, and the best reading
    wins; the conversation's language wins a near tie."""

    # How much closer the conversation's language needs to be to win.
    PREFERENCE = 0.05

    def __init__(self, intents: Iterable[Intent], entities: Iterable[Entity]) -> None:
        by_locale: dict[str, list[Intent]] = defaultdict(list)
        for intent in intents:
            by_locale[intent.locale].append(intent)
        self.classifiers = {
            locale: IntentClassifier(group, STOPWORDS.get(locale, frozenset()))
            for locale, group in by_locale.items()
        }
        self.extractor = EntityExtractor(entities)

    def parse_now(self, text: str, locale: str | None = None, *,
                  certain: bool = False) -> NluResult:
        entities = self.extractor.extract(text)
        classifiers = self.classifiers
        if certain and locale in classifiers:
            # Read in the language it is written in only: a third of the work.
            classifiers = {locale: classifiers[locale]}
        readings = [(loc, c.rank(text)) for loc, c in classifiers.items()]
        readings = [(loc, ranking) for loc, ranking in readings if ranking]
        if not readings:
            return NluResult(None, 0.0, entities)

        def score(reading: tuple[str, tuple[tuple[str, float], ...]]) -> float:
            bonus = self.PREFERENCE if reading[0] == locale else 0.0
            return reading[1][0][1] + bonus

        best_locale, ranking = max(readings, key=score)
        intent, confidence = ranking[0]
        specific = self.classifiers[best_locale].is_specific(text, intent)
        return NluResult(intent, min(1.0, confidence), entities, ranking, best_locale, specific)

    async def parse(self, text: str, locale: str | None = None, *,
                    certain: bool = False) -> NluResult:
        return self.parse_now(text, locale, certain=certain)


class RasaNlu:
    """An external NLU service speaking Rasa's `POST /model/parse` protocol.

    Failures are logged and read as "not understood", so the customer gets the
    fallback instead of an error. Entities the service misses are still found
    by the local extractor.
    """

    def __init__(self, url: str, *, extractor: EntityExtractor, timeout_seconds: float) -> None:
        self.url = url
        self.extractor = extractor
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)

    async def parse(self, text: str, locale: str | None = None, *,
                    certain: bool = False) -> NluResult:
        try:
            async with aiohttp.ClientSession(timeout=self.timeout) as http:
                async with http.post(self.url, json={"text": text}) as response:
                    response.raise_for_status()
                    body = await response.json()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.error("the NLU service at %s failed: %s", self.url, exc)
            return NluResult(None, 0.0, self.extractor.extract(text))
        return merge_entities(parse_rasa_response(body), self.extractor.extract(text))


def parse_rasa_response(body: Any) -> NluResult:
    """Reads a Rasa `/model/parse` answer; anything unexpected means "not understood"."""
    if not isinstance(body, dict):
        return NluResult(None, 0.0)
    intent = body.get("intent") or {}
    name = intent.get("name") if isinstance(intent, dict) else None
    try:
        confidence = float(intent.get("confidence", 0.0)) if name else 0.0
    except (TypeError, ValueError):
        confidence = 0.0
    entities = tuple(
        EntityValue(str(e["entity"]), str(e["value"]))
        for e in body.get("entities") or []
        if isinstance(e, dict) and "entity" in e and "value" in e
    )
    ranking = tuple(
        (str(r["name"]), float(r["confidence"]))
        for r in body.get("intent_ranking") or []
        if isinstance(r, dict) and r.get("name") and isinstance(r.get("confidence"), int | float)
    )
    return NluResult(str(name) if name else None, confidence, entities, ranking[:5])


def merge_entities(result: NluResult, local: tuple[EntityValue, ...]) -> NluResult:
    known = {e.entity for e in result.entities}
    extra = tuple(e for e in local if e.entity not in known)
    return replace(result, entities=result.entities + extra)
