"""The feature registry: what feature modules (donations, webinars, staff) add to the router.

A feature module registers, with the decorators below, the entry commands it answers
(`/requests`), the button prefixes it owns (`d:…`), the deep-link payloads it starts
(`/start w12`), its staff commands (role-checked, audited by the router), its main-menu
entries and its form submit handlers. The router consults the registry; it never imports a
feature module directly. `load()` imports the feature modules once.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from types import ModuleType

from handlers.context import Ctx
from handlers.messages import Outgoing

FEATURE_MODULES = ("handlers.donations", "handlers.webinars", "handlers.staff")

Handler = Callable[[Ctx, str], list[Outgoing]]


@dataclass(frozen=True, slots=True)
class StaffCommand:
    """A command only staff (or admins) may run; its docstring's first line is its help."""

    name: str
    role: str
    handler: Handler
    summary: str


ENTRIES: dict[str, Handler] = {}
CHOICES: dict[str, Handler] = {}
DEEP_LINKS: dict[str, Handler] = {}
STAFF: dict[str, StaffCommand] = {}
MENU: list[str] = []
TEXT: list[Callable[[Ctx, str], list[Outgoing] | None]] = []


def text_handler(
    handler: Callable[[Ctx, str], list[Outgoing] | None],
) -> Callable[[Ctx, str], list[Outgoing] | None]:
    """Register a reader of free text outside surveys (None: not for it), e.g. a reference."""
    TEXT.append(handler)
    return handler


def owns_link(payload: str) -> bool:
    """Say whether a feature owns a deep-link payload (`w12`)."""
    return any(payload.startswith(prefix) for prefix in DEEP_LINKS)


def follow_link(ctx: Ctx, payload: str) -> list[Outgoing] | None:
    """Run the feature deep link `payload` names (`w12`); None when no feature owns it."""
    for prefix, handler in DEEP_LINKS.items():
        if payload.startswith(prefix):
            return handler(ctx, payload[len(prefix) :])
    return None


def entry(command: str, *, menu: bool = False) -> Callable[[Handler], Handler]:
    """Register the handler of an entry command (a keywords.yaml command); `menu` lists it."""

    def register(handler: Handler) -> Handler:
        ENTRIES[command] = handler
        if menu and command not in MENU:
            MENU.append(command)
        return handler

    return register


def choice(prefix: str) -> Callable[[Handler], Handler]:
    """Register the handler of buttons whose id is `<prefix>:<value>` (gets the value)."""

    def register(handler: Handler) -> Handler:
        CHOICES[prefix] = handler
        return handler

    return register


def deep_link(prefix: str) -> Callable[[Handler], Handler]:
    """Register the handler of `/start <prefix><rest>` deep links (gets the rest)."""

    def register(handler: Handler) -> Handler:
        DEEP_LINKS[prefix] = handler
        return handler

    return register


def staff_command(name: str, *, role: str = "staff") -> Callable[[Handler], Handler]:
    """Register `/<name> args…` for staff (`role="admin"` for admins only); gets the args."""

    def register(handler: Handler) -> Handler:
        summary = (handler.__doc__ or name).strip().splitlines()[0]
        STAFF[name] = StaffCommand(name=name, role=role, handler=handler, summary=summary)
        return handler

    return register


def import_present(names: Sequence[str]) -> list[ModuleType]:
    """Import the named modules that exist; one that fails on a missing import still raises."""
    found = []
    for name in names:
        try:
            found.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
    return found


@cache
def load() -> tuple[str, ...]:
    """Import every feature module that exists (once); return the ones loaded."""
    return tuple(module.__name__ for module in import_present(FEATURE_MODULES))


def may_run(role: str | None, command: StaffCommand) -> bool:
    """Say whether a contact with `role` may run a staff command."""
    if role == "admin":
        return True
    return role == "staff" and command.role == "staff"
