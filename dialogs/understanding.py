"""Reading one message: its intent and entities, and the customer's language."""

from __future__ import annotations

import re
from dataclasses import replace

from bot.core.catalog import EXPLICIT_YES_WORDS
from bot.core.policy import TurnContext
from dialogs import model as m
from dialogs.language import CONFIDENT, LanguageIdentifier, hinted_language, is_confident
from dialogs.nlu import Nlu, NluResult, normalise

AFFIRM, DENY = "affirm", "deny"
# Words that make a new value a correction of the last one rather than a new
# request ("no, I meant A1003"; "nein, ich meinte A1003"; "perdón, era A1003").
_CORRECTION_CUES = re.compile(
    r"\b(no|nope|sorry|meant|mean|actually|wrong|instead|correction|oops|"
    r"nein|sorry|meinte|meine|eigentlich|falsch|stattdessen|korrektur|"
    r"perdon|quise|queria|realidad|equivoque|era|mejor)\b"
)


def sounds_like_correction(text: str) -> bool:
    return _CORRECTION_CUES.search(" ".join(normalise(text))) is not None


# A negation or a question about it: "please do not delete my data", "lösch
# meine Daten nicht", "no borren mis datos", "how do I delete my data?".
_UNSURE_CUES = re.compile(
    r"\b(not|dont|do not|never|no|without|why|how|what|should|would|could|if|"
    r"nicht|kein|keine|nie|niemals|warum|wieso|wie|was|ob|sollte|"
    r"nunca|jamas|sin|por que|porque|como|que pasa)\b"
)


def sounds_unsure(text: str) -> bool:
    """Whether a request is negated or only asked about, or ends in "?"."""
    return text.rstrip().endswith("?") or (
        _UNSURE_CUES.search(" ".join(normalise(text))) is not None)


class Understanding:
    """The NLU and the language identification, for one bot."""

    def __init__(self, dialogs: m.Dialogs, nlu: Nlu, threshold: float) -> None:
        self.dialogs = dialogs
        self.nlu = nlu
        self.threshold = threshold
        self.languages = LanguageIdentifier(dialogs.languages)
        # What counts as an unmistakable yes to a destructive question: a
        # plain yes (the one list the handoff's erase question uses too), or
        # the words of a yes button, in any language. Not "ok", "sure" or
        # "vale": they are as often a shrug.
        self.explicit_yes = set(EXPLICIT_YES_WORDS) | {
            " ".join(normalise(button.title))
            for response in dialogs.responses.values()
            for variant in _variants(response)
            for button in variant.buttons
            if button.payload.removeprefix("/") == AFFIRM
        }

    async def read(self, context: TurnContext) -> tuple[NluResult, str]:
        """The message understood, and the language to answer in. The
        conversation's language is updated: a channel's hint sets it, unless
        the customer's own words, read confidently, already did."""
        inbound, conversation = context.inbound, context.state
        found = None if inbound.payload is not None else self.languages.identify(inbound.text)
        sure = found is not None and found.confidence >= CONFIDENT
        locale = found.language if sure and found else conversation.locale
        nlu = await self._parse(context, locale, certain=sure)
        matched = nlu.locale if nlu.intent is not None else None
        hint = hinted_language(inbound.locale, self.dialogs.languages)
        # One word ("jaja", "sorry?", "help") is too little to change a known
        # language, enough to set one for a first "hola".
        one_word = len(normalise(inbound.text)) < 2 and conversation.locale is not None
        first = conversation.locale is None
        if found is not None and is_confident(found, matched, first=first) and not one_word:
            conversation.locale, conversation.locale_from = found.language, "text"
        elif hint is not None and (conversation.locale is None or (
                conversation.locale_from != "text" and conversation.locale != hint)):
            conversation.locale, conversation.locale_from = hint, "hint"
        if conversation.locale not in self.dialogs.languages:
            conversation.locale = None  # the bot no longer speaks it
        return nlu, conversation.locale or self.dialogs.default_language

    async def _parse(self, context: TurnContext, locale: str | None,
                     certain: bool) -> NluResult:
        inbound = context.inbound
        if inbound.payload is not None:
            # A button names its intent ("human", or Rasa's "/human"): no guessing.
            name = inbound.payload.removeprefix("/")
            if name in self.dialogs.intents:
                return NluResult(name, 1.0, ranking=((name, 1.0),))
        result = await self.nlu.parse(inbound.text, locale, certain=certain)
        if result.confidence < self.threshold:
            return replace(result, intent=None)
        return result

    def is_explicit_yes(self, context: TurnContext) -> bool:
        """The yes button, or a message that is word for word a yes example."""
        payload = context.inbound.payload
        if payload is not None:
            return payload.removeprefix("/") == AFFIRM
        return " ".join(normalise(context.inbound.text)) in self.explicit_yes


def _variants(response: m.Response) -> list[m.Variant]:
    """Every version of a response: each language, each channel."""
    versions = [response, *response.translations.values()]
    return [v for r in versions for v in (r.default, *r.channels.values())]
