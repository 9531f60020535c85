"""Reports and exports in chat: /report (figures and charts) and /export (a data file)."""

from __future__ import annotations

from handlers import features
from handlers.context import Ctx
from handlers.definitions import catalog
from handlers.i18n import t
from handlers.messages import Attachment, Outgoing
from handlers.staff_chat import _say
from storage import audit


@features.staff_command("report")
def report(ctx: Ctx, args: str) -> list[Outgoing]:
    """Survey, donation and webinar figures with charts: /report [surveys|donations|webinars]."""
    from handlers import reports

    wanted = [w for w in args.lower().split() if w in reports.SECTIONS]
    directory = reports.files_dir(ctx.config)
    reports.prune(directory)
    built = reports.build(
        session=ctx.session,
        lang=ctx.lang,
        now=ctx.now,
        directory=directory,
        sections=wanted or reports.SECTIONS,
    )
    audit.record(
        session=ctx.session,
        action="report",
        now=ctx.now,
        actor_contact_id=ctx.contact.id,
        details={"sections": wanted or list(reports.SECTIONS), "charts": len(built.charts)},
    )
    images = tuple(Attachment(kind="image", filename=p.name, path=str(p)) for p in built.charts)
    return [Outgoing(text=built.text, attachments=images, kind="staff")]


@features.staff_command("export")
def export(ctx: Ctx, args: str) -> list[Outgoing]:
    """Export data as a file: /export <kind> [csv|xlsx] [language] [survey]."""
    from handlers import exports, reports

    words = args.split()
    kind = next((w for w in words if w in exports.KINDS), None)
    if kind is None:
        return _say(t("staff_export_usage", ctx.lang, kinds=", ".join(exports.KINDS)))
    fmt = next((w for w in words if w.lower() in exports.FORMATS), "xlsx").lower()
    lang = next((w for w in words if w in ctx.config.supported_languages), ctx.lang)
    survey = next((w for w in words if w in catalog()), None)
    directory = reports.files_dir(ctx.config)
    reports.prune(directory)
    path = reports.new_file(directory, f"export-{kind}", f".{fmt}", ctx.now)
    try:
        done = exports.export(
            session=ctx.session, kind=kind, fmt=fmt, lang=lang, path=path, survey=survey
        )
    except exports.ExportError as error:
        return _say(t(error.key, ctx.lang, **error.values))
    audit.record(
        session=ctx.session,
        action="export",
        now=ctx.now,
        actor_contact_id=ctx.contact.id,
        subject=kind,
        details={"format": fmt, "language": lang, "survey": survey, "rows": done.rows},
    )
    document = Attachment(kind="document", filename=path.name, path=str(path))
    text = t("staff_export_done", ctx.lang, kind=kind, rows=done.rows)
    return [Outgoing(text=text, attachments=(document,), kind="staff")]
