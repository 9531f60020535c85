"""Language decision: explicit choice, platform hint, then detection on free text, then default.

Detection checks the Unicode script first (Arabic, Cyrillic and CJK are decided by script
alone), then scores Latin-script text with a unigram model (wordfreq's word frequencies per
language: the mean Zipf frequency of the words) plus langdetect's character n-gram
probability restricted to the supported languages, seeded so the result is repeatable.
A single word never switches a language: langdetect gets barely a quarter of single Latin
words right.
"""

from __future__ import annotations

import threading
import unicodedata
from dataclasses import dataclass
from functools import cache
from typing import Any

_SCRIPT_LANGUAGE = {"arabic": "ar", "cyrillic": "ru", "cjk": "zh"}
_LATIN_LANGUAGES = ("en", "fr", "es", "pt")
_LANGDETECT_CODES = {"zh-cn": "zh", "zh-tw": "zh"}
_PROFILE_CODES = {"zh": ("zh-cn",)}
_LOCK = threading.Lock()
MIN_MARGIN = 0.1  # below this the two best languages are too close to call
MODEL_WEIGHT = 0.5  # langdetect's probability, added to the mean Zipf frequency
# Both chosen on the even-indexed half of bench/data/language_samples.yaml; see bench/.


@dataclass(frozen=True, slots=True)
class Decision:
    """A detected language and how it was decided (`script`, `lexicon`, `model`)."""

    language: str
    method: str


def _script_of(ch: str) -> str | None:
    """Name the script of one letter among the few that decide a language."""
    code = ord(ch)
    if 0x0600 <= code <= 0x06FF or 0x0750 <= code <= 0x077F or 0xFB50 <= code <= 0xFEFF:
        return "arabic"
    if 0x0400 <= code <= 0x052F:
        return "cyrillic"
    if 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0x20000 <= code <= 0x2A6DF:
        return "cjk"
    if ch.isalpha() and "LATIN" in unicodedata.name(ch, ""):
        return "latin"
    return None


def script_counts(text: str) -> dict[str, int]:
    """Count the letters of each script in a text."""
    counts: dict[str, int] = {}
    for ch in text:
        script = _script_of(ch)
        if script is not None:
            counts[script] = counts.get(script, 0) + 1
    return counts


@cache
def _factory(candidates: tuple[str, ...]) -> Any:
    """Load only the candidate languages' langdetect profiles into a private, seeded factory.

    Scoring 4 profiles instead of 55 makes detection several times faster; the other
    languages could never be chosen anyway.
    """
    from pathlib import Path

    from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory

    codes = [code for lang in candidates for code in _PROFILE_CODES.get(lang, (lang,))]
    profiles = [(Path(PROFILES_DIRECTORY) / code).read_text(encoding="utf-8") for code in codes]
    factory = DetectorFactory()
    factory.load_json_profile(profiles)
    factory.seed = 0
    return factory


def _model_scores(text: str, candidates: tuple[str, ...]) -> dict[str, float]:
    """Ask langdetect for probabilities over the candidate languages only."""
    from langdetect.lang_detect_exception import LangDetectException

    if len(candidates) < 2:  # langdetect needs two profiles; one candidate is the answer
        return dict.fromkeys(candidates, 1.0)
    factory = _factory(candidates)
    with _LOCK:  # langdetect detectors are cheap but the factory is shared
        detector = factory.create()
        detector.append(text)
        try:
            found = detector.get_probabilities()
        except LangDetectException:
            return {}
    scores: dict[str, float] = {}
    for item in found:
        lang = _LANGDETECT_CODES.get(item.lang, item.lang)
        if lang in candidates:
            scores[lang] = scores.get(lang, 0.0) + float(item.prob)
    return scores


def _unigram_scores(tokens: list[str], candidates: tuple[str, ...]) -> dict[str, float]:
    """Mean Zipf frequency of the tokens in each language (unknown words count as 1.0)."""
    from wordfreq import zipf_frequency

    return {
        lang: sum(max(zipf_frequency(token, lang), 1.0) for token in tokens) / len(tokens)
        for lang in candidates
    }


def _decided_by_words(unigram: dict[str, float]) -> bool:
    """True when no langdetect answer could change the word frequencies' choice.

    langdetect's probabilities sum to at most 1, so weighted they move two languages apart
    by at most MODEL_WEIGHT: a lead beyond that plus the margin decides alone, exactly as
    the combined score would, and saves the n-gram model's time on most sentences.
    """
    if len(unigram) < 2:
        return False
    first, second = sorted(unigram.values(), reverse=True)[:2]
    return first - second >= MODEL_WEIGHT + MIN_MARGIN


def detect(text: str, supported: tuple[str, ...]) -> Decision | None:
    """Decide the language of a text of two or more words; None when it cannot tell."""
    counts = script_counts(text)
    letters = sum(counts.values())
    if letters < 2:
        return None
    script, top = max(counts.items(), key=lambda kv: kv[1])
    if script in _SCRIPT_LANGUAGE:
        lang = _SCRIPT_LANGUAGE[script]
        return Decision(lang, "script") if top * 2 >= letters and lang in supported else None
    tokens = [w for w in text.casefold().split() if any(c.isalpha() for c in w)]
    tokens = [w.strip(".,;:!?¡¿\"'()«»") for w in tokens]
    if len(tokens) < 2:
        return None
    candidates = tuple(lang for lang in _LATIN_LANGUAGES if lang in supported)
    if not candidates:
        return None
    unigram = _unigram_scores(tokens, candidates)
    if _decided_by_words(unigram):
        return Decision(max(unigram, key=unigram.__getitem__), "words")
    model = _model_scores(text, candidates)
    combined = {lang: unigram[lang] + MODEL_WEIGHT * model.get(lang, 0.0) for lang in candidates}
    ranked = sorted(combined.items(), key=lambda kv: kv[1], reverse=True)
    best, best_score = ranked[0]
    runner_up = ranked[1][1] if len(ranked) > 1 else 0.0
    if best_score - runner_up < MIN_MARGIN:
        return None
    return Decision(best, "words")


def warm(supported: tuple[str, ...]) -> None:
    """Load the word frequencies and langdetect profiles the first detection would load."""
    candidates = tuple(lang for lang in _LATIN_LANGUAGES if lang in supported)
    if candidates:
        _unigram_scores(["city"], candidates)
        _factory(candidates)


def word_count(text: str) -> int:
    """Count words; CJK text counts one word per two characters."""
    counts = script_counts(text)
    cjk = counts.get("cjk", 0)
    spaced = [w for w in text.split() if any(_script_of(c) not in (None, "cjk") for c in w)]
    return len(spaced) + cjk // 2


def resolve_language(
    *,
    current: str | None,
    source: str | None,
    text: str,
    hint: str | None,
    supported: tuple[str, ...],
    default: str,
) -> tuple[str, str]:
    """Return (language, source) for a contact after this message; short replies never switch."""
    if source == "explicit" and current in supported:
        return current, source
    hinted = (hint or "").split("-")[0].lower()
    if source in (None, "default") and hinted in supported:
        return hinted, "platform"
    if source in (None, "default", "detected") and word_count(text) >= 3:
        decision = detect(text, supported)
        if decision is not None:
            return decision.language, "detected"
    if current in supported and source is not None:
        return current, source
    return default, "default"
