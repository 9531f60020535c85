"""Language decision accuracy on a labelled corpus (bench/data/language_samples.yaml).

Prints, per kind of text and per language: how often the bot's decision is right. Sentences
and word pairs go through `handlers.language.detect` (what a contact without an explicit
choice gets); single words go through `resolve_language` starting from each other language
with a detected source, where the only right answer is "no switch".

    python3 -m bot test --no-header -q  # the tests;   .venv/bin/python bench/language_accuracy.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from handlers.config import ALL_LANGUAGES  # noqa: E402
from handlers.language import detect, resolve_language  # noqa: E402


def main() -> None:
    """Run the corpus and print the figures."""
    corpus = yaml.safe_load(
        (ROOT / "bench/data/language_samples.yaml").read_text(encoding="utf-8")
    )
    detect("warm up the profiles now", ALL_LANGUAGES)
    timings: list[float] = []
    held_out = {"sentences": [0, 0], "word_pairs": [0, 0]}  # [right, total] on odd indices
    print(f"{'kind':<13}{'lang':<6}{'right':>7}{'total':>7}{'accuracy':>10}")
    for kind in ("sentences", "word_pairs"):
        right_all = total_all = 0
        misses: list[str] = []
        for lang, texts in corpus[kind].items():
            right = 0
            for index, text in enumerate(texts):
                start = time.perf_counter()
                decision = detect(text, ALL_LANGUAGES)
                timings.append(time.perf_counter() - start)
                held_out[kind][1] += index % 2
                if decision is not None and decision.language == lang:
                    right += 1
                    held_out[kind][0] += index % 2
                else:
                    misses.append(f"{lang}: {text!r} → {decision.language if decision else None}")
            right_all += right
            total_all += len(texts)
            print(f"{kind:<13}{lang:<6}{right:>7}{len(texts):>7}{right / len(texts):>10.1%}")
        print(f"{kind:<13}{'all':<6}{right_all:>7}{total_all:>7}{right_all / total_all:>10.1%}")
        h_right, h_total = held_out[kind]
        print(
            f"{kind:<13}{'held':<6}{h_right:>7}{h_total:>7}{h_right / h_total:>10.1%}"
            "  (odd half: not used to choose the weights)"
        )
        for miss in misses[:12]:
            print("   miss", miss)
    switches = checks = 0
    for lang, words in corpus["single_words"].items():
        for word in words:
            for current in ALL_LANGUAGES:
                if current == lang:
                    continue
                checks += 1
                new, _ = resolve_language(
                    current=current,
                    source="detected",
                    text=word,
                    hint=None,
                    supported=ALL_LANGUAGES,
                    default="en",
                )
                switches += new != current
    print(
        f"{'single_words':<13}{'all':<6}{checks - switches:>7}{checks:>7}"
        f"{(checks - switches) / checks:>10.1%}  (kept the language)"
    )
    timings.sort()
    print(
        f"detect latency: median {statistics.median(timings) * 1000:.2f} ms, "
        f"p99 {timings[int(len(timings) * 0.99)] * 1000:.2f} ms"
    )


if __name__ == "__main__":
    main()
