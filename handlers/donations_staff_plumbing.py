"""What the donation staff commands share: refusals, reference arguments, role-checked buttons."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlmodel import Session

from handlers import features
from handlers.context import Ctx
from handlers.donations_text import error_text
from handlers.features import choice
from handlers.i18n import t
from handlers.menu import main_menu
from handlers.messages import Outgoing
from storage import audit
from storage import donations as store
from storage.donations import DonationError
from storage.donations_models import DonationRequest

T = TypeVar("T")


def _error(ctx: Ctx, error: DonationError) -> list[Outgoing]:
    """Say why the action was refused (nothing was changed)."""
    return [Outgoing(text=error_text(error, ctx.lang))]


def _request(ctx: Ctx, text: str) -> DonationRequest | None:
    """Find the request a staff argument names."""
    return store.request_by_ref(session=ctx.session, ref=text) if text else None


def _split(args: str) -> tuple[str, str]:
    """Split `R-7K3F the rest` into the reference and the rest."""
    first, _, rest = args.strip().partition(" ")
    return first, rest.strip()


def _allowed(ctx: Ctx, action: str) -> bool:
    """Check a staff button's role (the router checks only /commands) and audit a refusal."""
    if features.may_run(ctx.contact.staff_role, features.STAFF["review"]):
        return True
    audit.record(
        session=ctx.session,
        action="staff_denied",
        now=ctx.now,
        actor_contact_id=ctx.contact.id,
        subject=action,
    )
    return False


def _staff_button(
    prefix: str, load: Callable[[Session, int], T | None]
) -> Callable[[Callable[[Ctx, T, str], list[Outgoing]]], Callable[[Ctx, str], list[Outgoing]]]:
    """Register the staff buttons `<prefix>:<id>:<action>`; the handler gets the record `load`
    finds and the action. Anyone else gets the help (audited); a record gone, a stale button."""

    def register(
        act: Callable[[Ctx, T, str], list[Outgoing]],
    ) -> Callable[[Ctx, str], list[Outgoing]]:
        def handle(ctx: Ctx, value: str) -> list[Outgoing]:
            if not _allowed(ctx, prefix):
                return [main_menu(ctx, lead=t("help_text", ctx.lang))]
            record_id, _, action = value.partition(":")
            found = load(ctx.session, int(record_id)) if record_id.isdecimal() else None
            if found is None:
                return [Outgoing(text=t("stale_button", ctx.lang))]
            return act(ctx, found, action)

        handle.__doc__ = act.__doc__
        return choice(prefix)(handle)

    return register
