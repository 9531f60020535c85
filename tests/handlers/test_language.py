"""Language detection: the script first, then word frequencies, langdetect only when needed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from handlers import language
from handlers.language import Decision, detect

SUPPORTED = ("en", "fr", "es", "ar", "ru", "zh", "pt")
SAMPLES = Path(__file__).resolve().parents[2] / "bench" / "data" / "language_samples.yaml"


def labelled(*kinds: str) -> list[str]:
    """The benchmark's labelled texts of the given kinds (every language)."""
    data = yaml.safe_load(SAMPLES.read_text(encoding="utf-8"))
    return [text for kind in kinds for texts in data[kind].values() for text in texts]


def test_the_word_shortcut_decides_exactly_as_the_combined_score(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Skipping langdetect on a clear lead never changes a decision (sentences, word pairs)."""
    texts = labelled("sentences", "word_pairs")
    fast = [detect(text, SUPPORTED) for text in texts]
    monkeypatch.setattr(language, "_decided_by_words", lambda _scores: False)
    full = [detect(text, SUPPORTED) for text in texts]
    assert fast == full
    assert sum(d is not None for d in fast) > len(texts) * 0.9


def test_a_clear_sentence_is_decided_without_langdetect(monkeypatch: pytest.MonkeyPatch) -> None:
    """Common words of one language decide alone; the n-gram model is not asked."""

    def refuse(_text: str, _candidates: tuple[str, ...]) -> dict[str, float]:
        raise AssertionError("langdetect was asked")

    monkeypatch.setattr(language, "_model_scores", refuse)
    assert detect("Hello, good morning from the mayor's office", SUPPORTED) == Decision(
        "en", "words"
    )
    assert detect("Bonjour, nous voudrions inscrire notre mairie", SUPPORTED) == Decision(
        "fr", "words"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("مرحبا من مكتب رئيس البلدية", Decision("ar", "script")),
        ("Здравствуйте, это мэрия", Decision("ru", "script")),
        ("你好，这里是市长办公室", Decision("zh", "script")),
        ("ok", None),
        ("2", None),
        ("", None),
    ],
)
def test_scripts_decide_and_short_replies_do_not(text: str, expected: Decision | None) -> None:
    """Arabic, Cyrillic and CJK by script; a single word or a number decides nothing."""
    assert detect(text, SUPPORTED) == expected


def test_the_shortcut_needs_a_lead_beyond_what_langdetect_could_add() -> None:
    """A lead below the model's weight plus the margin leaves the decision to both."""
    lead = language.MODEL_WEIGHT + language.MIN_MARGIN
    assert language._decided_by_words({"en": 5.0, "fr": 5.0 - lead - 0.01, "es": 1.0})
    assert not language._decided_by_words({"en": 5.0, "fr": 5.0 - lead + 0.01, "es": 1.0})
    assert not language._decided_by_words({"en": 5.0})
