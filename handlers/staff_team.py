"""Staff help, team, roles and audit log in chat: /staff, /team, /promote, /demote, /audit."""

from __future__ import annotations

from handlers import features
from handlers.context import Ctx
from handlers.i18n import strings, t
from handlers.messages import Outgoing
from handlers.staff_chat import _say, logger
from storage import audit, contacts
from storage import staff as staff_db
from storage.models import Contact


@features.staff_command("staff")
def staff_help(ctx: Ctx, _args: str) -> list[Outgoing]:
    """List the staff commands you may use: /staff."""
    lines = [t("staff_help_title", ctx.lang)]
    for name in sorted(features.STAFF):
        command = features.STAFF[name]
        if not features.may_run(ctx.contact.staff_role, command):
            continue
        key = f"staff_cmd_{name}"
        summary = t(key, ctx.lang) if key in strings() else command.summary
        lines.append(f"/{name} — {summary}")
    return _say("\n".join(lines))


def _who(contact: Contact, urns: list[str]) -> str:
    """A contact as staff see it: number, name, addresses."""
    name = contact.name or "—"
    return f"#{contact.id} {name} ({', '.join(urns) or '—'})"


@features.staff_command("team")
def team(ctx: Ctx, _args: str) -> list[Outgoing]:
    """List staff and admins: /team."""
    lines = [t("staff_team_title", ctx.lang)]
    for member, urns in staff_db.staff_members(session=ctx.session):
        role = t(f"staff_role_{member.staff_role}", ctx.lang)
        lines.append(f"• {role}: {_who(member, urns)}")
    return _say("\n".join(lines))


def _target(ctx: Ctx, text: str, *, create: bool) -> Contact | None:
    """The contact named by a URN (`telegram:123`) or a number (`#12`)."""
    text = text.strip()
    if text.lstrip("#").isdecimal():
        return contacts.get_contact(session=ctx.session, contact_id=int(text.lstrip("#")))
    try:
        contacts.channel_of(text)
    except ValueError:
        return None
    if create:
        found, _new = contacts.get_or_create_contact(session=ctx.session, urn=text, now=ctx.now)
        return found
    return contacts.get_contact_by_urn(session=ctx.session, urn=text)


def _set_role(ctx: Ctx, target: Contact, role: str | None) -> bool:
    """Give a contact a staff role (None: take it away) and audit it; False if the last admin."""
    previous = target.staff_role
    if previous == "admin" and role != "admin" and staff_db.admin_count(session=ctx.session) <= 1:
        return False
    staff_db.set_role(session=ctx.session, contact=target, role=role)
    audit.record(
        session=ctx.session,
        action="staff_promote" if role else "staff_demote",
        now=ctx.now,
        actor_contact_id=ctx.contact.id,
        subject=f"contact:{target.id}",
        details={"role": role, "previous": previous} if role else {"previous": previous},
    )
    logger.info("staff role set contact=%s role=%s actor=%s", target.id, role, ctx.contact.id)
    return True


@features.staff_command("promote", role="admin")
def promote(ctx: Ctx, args: str) -> list[Outgoing]:
    """Give a contact a staff role: /promote <urn or #id> [staff|admin]."""
    parts = args.split()
    role = parts[1].lower() if len(parts) > 1 else "staff"
    if not parts or role not in staff_db.ROLES:
        return _say(t("staff_promote_usage", ctx.lang))
    target = _target(ctx, parts[0], create=True)
    if target is None:
        return _say(t("staff_no_contact", ctx.lang, who=parts[0]))
    if not _set_role(ctx, target, role):
        return _say(t("staff_last_admin", ctx.lang))
    shown = t(f"staff_role_{role}", ctx.lang)
    return _say(t("staff_promoted", ctx.lang, id=target.id, role=shown))


@features.staff_command("demote", role="admin")
def demote(ctx: Ctx, args: str) -> list[Outgoing]:
    """Take a contact's staff role away: /demote <urn or #id>."""
    parts = args.split()
    if not parts:
        return _say(t("staff_demote_usage", ctx.lang))
    target = _target(ctx, parts[0], create=False)
    if target is None or target.staff_role is None:
        return _say(t("staff_no_contact", ctx.lang, who=parts[0]))
    if not _set_role(ctx, target, None):
        return _say(t("staff_last_admin", ctx.lang))
    text = t("staff_demoted", ctx.lang, id=target.id)
    urns = contacts.urns_of(session=ctx.session, contact_id=target.id or 0)
    if any(urn in ctx.config.staff_urns for urn in urns):
        text += "\n" + t("staff_demote_bootstrap", ctx.lang)
    return _say(text)


@features.staff_command("audit", role="admin")
def audit_log(ctx: Ctx, args: str) -> list[Outgoing]:
    """Show the latest audit entries: /audit [count] [action prefix]."""
    parts = args.split()
    limit = min(int(parts[0]), 100) if parts and parts[0].isdecimal() else 15
    prefix = next((p for p in parts if not p.isdecimal()), None)
    entries = staff_db.recent_audit(session=ctx.session, limit=limit, prefix=prefix)
    lines = [t("staff_audit_title", ctx.lang, count=len(entries))]
    for entry in entries:
        actor = f"#{entry.actor_contact_id}" if entry.actor_contact_id else "system"
        subject = f" → {entry.subject}" if entry.subject else ""
        lines.append(f"{entry.at:%Y-%m-%d %H:%M} {entry.action} {actor}{subject}")
    return _say("\n".join(lines))
