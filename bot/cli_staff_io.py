"""What the staff CLI says and records: UI strings in English, audit details of a CLI action."""

from __future__ import annotations

import getpass
from typing import Any

LANG = "en"  # the CLI speaks English; exports and reports take --lang


def english(key: str, values: dict[str, Any]) -> str:
    """A UI string in English."""
    from handlers.i18n import t

    return t(key, LANG, **values)


def cli_details(**values: Any) -> dict[str, Any]:
    """Audit details of a CLI action: who ran it on the machine."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return {"via": "cli", "os_user": user, **values}
