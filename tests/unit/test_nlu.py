"""The built-in intent classifier and entity extraction, on the demo bot's intents."""

from __future__ import annotations

import pytest

from dialogs.check import check_dialogs
from dialogs.model import Entity, Intent
from dialogs.nlu import (
    BuiltinNlu,
    EntityExtractor,
    EntityValue,
    NluResult,
    merge_entities,
    normalise,
    parse_rasa_response,
)
from dialogs.source import Where

THRESHOLD = 0.45  # the default nlu_threshold
HERE = Where("test")


@pytest.fixture(scope="module")
def demo_nlu() -> BuiltinNlu:
    dialogs, problems = check_dialogs("dialogs")
    assert dialogs is not None, problems
    return BuiltinNlu(dialogs.intents.values(), dialogs.entities.values())


def recognised(nlu: BuiltinNlu, text: str) -> str | None:
    result = nlu.parse_now(text)
    return result.intent if result.confidence >= THRESHOLD else None


def test_normalisation_folds_case_accents_apostrophes_and_punctuation() -> None:
    assert normalise("Where's   my ÓRDER??") == ["wheres", "my", "order"]
    assert normalise("¿Dónde está mi pedido?") == ["donde", "esta", "mi", "pedido"]
    assert normalise("Lieferung in die Straße") == ["lieferung", "in", "die", "strasse"]
    assert normalise("") == []


@pytest.mark.parametrize(
    ("text", "intent"),
    [("wheres my order??", "order_status"), ("whre is my ordr", "order_status"),
     ("hiii", "greet"), ("nooo", "deny"), ("TALK TO A HUMAN!!!", "human")],
)
def test_typos_and_shouting_still_work(demo_nlu: BuiltinNlu, text: str, intent: str) -> None:
    assert recognised(demo_nlu, text) == intent


def test_entities_by_regex_and_lookup() -> None:
    extractor = EntityExtractor([
        Entity("order_id", __import__("re").compile(r"(?i)\b([a-z]\d{4})\b"), (), HERE),
        Entity("city", None, ("New York", "Paris"), HERE),
    ])
    assert extractor.extract("is a1001 going to new-york?") == (
        EntityValue("order_id", "a1001"), EntityValue("city", "New York"),
    )
    assert extractor.extract("nothing here") == ()


def test_an_empty_or_unknown_message_has_no_intent() -> None:
    nlu = BuiltinNlu([Intent("greet", ("hello",), HERE)], [])
    assert nlu.parse_now("   ").intent is None
    assert nlu.parse_now("zzz qqq").confidence == 0.0


def test_a_rasa_parse_answer_is_read() -> None:
    body = {
        "text": "where is A1001",
        "intent": {"name": "order_status", "confidence": 0.93},
        "entities": [{"entity": "order_id", "value": "A1001", "start": 9, "end": 14}],
    }
    assert parse_rasa_response(body) == NluResult(
        "order_status", 0.93, (EntityValue("order_id", "A1001"),)
    )
    assert parse_rasa_response({"intent": None}) == NluResult(None, 0.0)
    assert parse_rasa_response(["not", "a", "dict"]) == NluResult(None, 0.0)
    merged = merge_entities(
        NluResult("x", 1.0, (EntityValue("a", "1"),)),
        (EntityValue("a", "2"), EntityValue("b", "3")),
    )
    assert merged.entities == (EntityValue("a", "1"), EntityValue("b", "3"))
