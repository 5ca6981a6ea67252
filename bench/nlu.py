"""What understanding one message costs: the demo bot's three languages
(lingua, then one classifier per language) against its English classifier
alone, in this process, on messages never seen before (no cache hits).

    .venv/bin/python bench/nlu.py [--messages 3000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from bot.core.settings import Settings
from dialogs.build import build_dialog_policy
from dialogs.language import CONFIDENT
from dialogs.nlu import BuiltinNlu

PHRASES = ("where is my order {n}", "wo ist meine bestellung {n}", "dónde está mi pedido {n}",
           "can i talk to a person about order {n}", "I don't know my order number {n}")


def per_message_us(parse: Callable[[str], object], start: int, count: int) -> float:
    texts = [PHRASES[i % len(PHRASES)].format(n=start + i) for i in range(count)]
    began = time.perf_counter()
    for text in texts:
        parse(text)
    return (time.perf_counter() - began) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    policy = build_dialog_policy(Settings())
    nlu = policy.nlu
    assert isinstance(nlu, BuiltinNlu)
    identifier = policy.understanding.languages
    english = BuiltinNlu(policy.dialogs.intents.values(), policy.dialogs.entities.values())

    def multilingual(text: str) -> object:  # as `Understanding.read` does it
        found = identifier.identify(text)
        sure = found is not None and found.confidence >= CONFIDENT
        return nlu.parse_now(text, found.language if sure and found else "en", certain=sure)

    figures: list[float] = []
    baselines: list[float] = []
    for round_ in range(args.rounds):  # alternating, each on fresh messages
        start = round_ * 2 * args.messages
        figures.append(per_message_us(multilingual, start, args.messages))
        baselines.append(per_message_us(english.parse_now, start + args.messages, args.messages))
    figure, baseline = statistics.median(figures), statistics.median(baselines)
    print(f"understanding one new message, median of {args.rounds} rounds of "
          f"{args.messages}:")
    print(f"  en, de, es (language identification, then the classifiers): {figure:7.0f} µs")
    print(f"  English classifier alone (baseline):                         {baseline:7.0f} µs")
    print(f"  ratio: {figure / baseline:.2f}")


if __name__ == "__main__":
    main()
