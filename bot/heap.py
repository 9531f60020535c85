"""Keeping the collector off the long-lived heap a running bot loads at start.

The gazetteer, survey definitions and language models are half a million objects that live
as long as the process. CPython's cyclic collector walks all of them in every full
collection: about 100 ms with everything else stopped, a few times a minute under load, and
every message that arrives meanwhile waits (in the engine benchmark those pauses were the
whole of the p99). Once they are loaded, `freeze` moves everything then alive out of the
collector's generations for good (`gc.freeze`); objects made later are collected as usual.
`thaw` gives them back when the runtime stops, so a process that builds many runtimes
(the tests) leaks no cycles.
"""

from __future__ import annotations

import gc


def freeze() -> None:
    """Exempt every object now alive from later collections (the start-up heap)."""
    gc.freeze()


def thaw() -> None:
    """Put frozen objects back under the collector."""
    gc.unfreeze()
