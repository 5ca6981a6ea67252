"""The customer's language: from the channel's hint and from what they write.

Identification uses lingua (made for short texts), restricted to the bot's
languages. A message too short or too plain to tell ("ok", "A1001") changes
nothing; a confident one wins over any channel hint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from lingua import IsoCode639_1, Language, LanguageDetector, LanguageDetectorBuilder

# Sure enough on its own ("wo ist meine Bestellung": 0.99) ...
CONFIDENT = 0.85
# ... or when the examples that matched best are in the same language
# ("where is my order" is 0.68 English, and matches English examples).
AGREEING = 0.6
_LETTERS = re.compile(r"[^\W\d_]", re.UNICODE)
MIN_LETTERS = 3


def known_language(code: str) -> bool:
    try:
        Language.from_iso_code_639_1(IsoCode639_1.from_str(code))
    except ValueError:
        return False
    return True


def hinted_language(hint: str | None, languages: tuple[str, ...]) -> str | None:
    """The bot's language a channel's tag names: "de-AT" -> "de"; None if the
    bot does not speak it."""
    if not hint:
        return None
    primary = hint.split("-", 1)[0].split("_", 1)[0].lower()
    return primary if primary in languages else None


@dataclass(frozen=True, slots=True)
class Identified:
    language: str
    confidence: float


class LanguageIdentifier:
    """Which of the bot's languages a message is written in, with a confidence."""

    def __init__(self, languages: tuple[str, ...]) -> None:
        self.languages = languages
        chosen = [Language.from_iso_code_639_1(IsoCode639_1.from_str(c)) for c in languages]
        self._detector: LanguageDetector | None = None
        if len(chosen) > 1:
            self._detector = (
                LanguageDetectorBuilder.from_languages(*chosen)
                .with_preloaded_language_models()
                .build()
            )

    def identify(self, text: str) -> Identified | None:
        return self._identify(text)

    # Customers repeat themselves ("hi", "yes", "where is my order").
    @lru_cache(maxsize=4096)  # noqa: B019 - one identifier per bot, kept for its life
    def _identify(self, text: str) -> Identified | None:
        if self._detector is None or len(_LETTERS.findall(text)) < MIN_LETTERS:
            return None
        values = self._detector.compute_language_confidence_values(text)
        if not values:
            return None
        best = values[0]
        code = best.language.iso_code_639_1.name.lower()
        return Identified(code, best.value)


# With no language known yet, a first "hola" that matches Spanish examples.
AGREEING_FIRST = 0.5


def is_confident(found: Identified | None, matched_locale: str | None, *,
                 first: bool = False) -> bool:
    """Whether the message says, clearly enough, which language the customer
    uses (`first`: no language is known for the conversation yet)."""
    if found is None:
        return False
    if found.confidence >= CONFIDENT:
        return True
    agreeing = AGREEING_FIRST if first else AGREEING
    return found.confidence >= agreeing and matched_locale == found.language
