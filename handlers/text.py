"""Text normalisation shared by keyword, choice and answer matching."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

_PUNCT = re.compile(r"[\s\.\,\!\?\;\:\"'«»“”‘’¡¿،؟。，！？：；、…\-_/\\()\[\]{}]+")
_LIST_SPLIT = re.compile(r"\s*(?:[,;/、，；،؛]|\s+(?:and|et|y|e|и|و|和|及)\s+|\s+)\s*")


def normalise(text: str) -> str:
    """Fold case, width and accents and collapse punctuation, for matching typed answers."""
    text = unicodedata.normalize("NFKC", text).casefold()
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _PUNCT.sub(" ", stripped).strip()


def split_list(text: str) -> list[str]:
    """Split a typed list such as `1, 3 and 5` into its items."""
    return [part for part in _LIST_SPLIT.split(text.strip()) if part]


def words(text: str) -> list[str]:
    """Return the words of a text (CJK characters count by runs of script)."""
    return [w for w in normalise(text).split(" ") if w]


def label_key(text: str) -> str:
    """Reduce a label or a typed text for matching: case, accents, emoji, punctuation folded."""
    folded = "".join(
        ch for ch in normalise(text) if unicodedata.category(ch)[0] not in "SC" and ch != "\ufe0f"
    )
    return " ".join(folded.split())


def typed_label(text: str, labels: Mapping[str, str]) -> str | None:
    """Return the value whose label the text is (typed instead of tapped); None if not one."""
    key = label_key(text)
    found = {value for value, label in labels.items() if key and label_key(label) == key}
    return found.pop() if len(found) == 1 else None
