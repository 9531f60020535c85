"""Staff in chat: composing, previewing, sending, scheduling and cancelling broadcasts,
roles, reports with charts and exports as documents; every action audited."""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from bot.clock import FixedClock
from handlers import definitions
from scheduler.broadcasts import run_broadcasts
from storage import audit, contacts, outbox, surveys
from storage.db import session_scope
from storage.models import OutboxMessage
from storage.staff_models import Broadcast, BroadcastRecipient
from tests.support import Dialog, fragment

ADMIN, STAFF = "console:admin", "console:staff"


def person(
    engine: Engine,
    clock: FixedClock,
    urn: str,
    *,
    country: str | None = None,
    language: str = "en",
    role: str | None = "city_official",
    city: str | None = None,
    priorities: list[str] | None = None,
    support: list[str] | None = None,
    seen: timedelta | None = timedelta(hours=1),
    **flags: Any,
) -> int:
    """An official with a profile (and a development-needs answer); return the contact id."""
    with session_scope(engine) as session:
        contact, _ = contacts.get_or_create_contact(session=session, urn=urn, now=clock.now())
        last = clock.now() - seen if seen is not None else None
        contacts.update_contact(
            session=session,
            contact=contact,
            language=language,
            language_source="explicit",
            country_code=country,
            city_name=city,
            role=role,
            name=f"Official {urn}",
            consent_at=clock.now(),
            consent_version="2026-11",
            last_inbound_at=last,
            **flags,
        )
        if last is not None:
            contacts.record_inbound(session=session, seen=[(contact, urn)], now=last)
        if priorities is not None:
            answer(session, contact.id or 0, country, priorities, support or [], clock)
        return contact.id or 0


def answer(
    session: Any,
    contact_id: int,
    country: str | None,
    priorities: list[str],
    support: list[str],
    clock: FixedClock,
) -> None:
    """Store a submitted development-needs response for a contact."""
    definition = definitions.catalog()["development_needs"]
    pinned = surveys.pin_definition(
        session=session,
        survey_id=definition.id,
        version=definition.version,
        digest=definition.digest,
        body=definition.body,
        now=clock.now(),
    )
    run = surveys.start_run(
        session=session,
        contact_id=contact_id,
        survey_id=definition.id,
        definition_id=pinned,
        now=clock.now(),
        expires_at=clock.now() + timedelta(days=1),
    )
    surveys.save_response(
        session=session,
        run=run,
        version=definition.version,
        language="en",
        answers={"priorities": priorities, "support": support, "may_contact": True},
        now=clock.now(),
        contact_id=contact_id,
        country_code=country,
        city_name=None,
    )
    surveys.end_run(session=session, run=run, status="submitted", now=clock.now())


def make_staff(engine: Engine, clock: FixedClock, urns: dict[str, str]) -> None:
    """Bootstrap staff roles as STAFF_URNS does at start-up (with a language chosen)."""
    with session_scope(engine) as session:
        contacts.set_staff_roles(session=session, urns=urns, now=clock.now())
        for urn in urns:
            contact = contacts.get_contact_by_urn(session=session, urn=urn)
            assert contact is not None
            contacts.update_contact(
                session=session, contact=contact, language="en", language_source="explicit"
            )


def staff_dialog(
    dialog: Callable[..., Dialog],
    engine: Engine,
    clock: FixedClock,
    urn: str = STAFF,
    role: str = "staff",
) -> Dialog:
    """A staff member (or an admin) ready to chat."""
    make_staff(engine, clock, {urn: role})
    return dialog(urn)


@pytest.fixture
def files_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Write report and export files under the test's directory."""
    monkeypatch.setenv("CITYBOT_FILES_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
def reporter(
    dialog: Callable[..., Dialog],
    engine: Engine,
    clock: FixedClock,
    officials: dict[str, int],
    files_dir: Path,
) -> Dialog:
    """A staff member, after the officials, whose reports and exports go to the test's folder."""
    return staff_dialog(dialog, engine, clock)


def messages(engine: Engine, kind: str = "broadcast") -> list[OutboxMessage]:
    """Outbox rows of a kind, oldest first."""
    with session_scope(engine) as session:
        stmt = select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)
        return list(session.exec(stmt))


def actions(engine: Engine) -> list[str]:
    """The audit trail's actions, oldest first."""
    with session_scope(engine) as session:
        return [e.action for e in audit.entries(session=session)]


def latest(engine: Engine) -> Broadcast:
    """The newest broadcast."""
    with session_scope(engine) as session:
        found = session.exec(select(Broadcast).order_by(col(Broadcast.id).desc())).first()
        assert found is not None
        return found


@pytest.fixture
def officials(engine: Engine, clock: FixedClock) -> dict[str, int]:
    """Officials in several countries, languages and channels, with survey answers."""
    return {
        "sl_en": person(
            engine, clock, "console:sl-en", country="SL", priorities=["education", "covid_health"]
        ),
        "sl_fr": person(
            engine,
            clock,
            "console:sl-fr",
            country="SL",
            language="fr",
            priorities=["education"],
        ),
        "ke_ar": person(
            engine, clock, "console:ke-ar", country="KE", language="ar", priorities=["education"]
        ),
        "ke_tg": person(
            engine, clock, "telegram:501", country="KE", language="fr", priorities=["education"]
        ),
        "ke_wa": person(
            engine,
            clock,
            "whatsapp:+254700000001",
            country="KE",
            language="en",
            priorities=["education"],
            seen=timedelta(days=3),
        ),
        "ke_stop": person(
            engine,
            clock,
            "console:ke-stop",
            country="KE",
            priorities=["education"],
            opted_out=True,
        ),
        "ke_gone": person(
            engine,
            clock,
            "console:ke-gone",
            country="KE",
            priorities=["education"],
            unreachable=True,
        ),
        "fr_en": person(engine, clock, "console:fr-en", country="FR", priorities=["education"]),
        "sl_agri": person(
            engine, clock, "console:sl-agri", country="SL", priorities=["agriculture"]
        ),
    }


def compose(d: Dialog, *, segment: str, answers: list[str]) -> None:
    """Walk the compose form: title, English and French texts, the segment and its answers."""
    d.say("/broadcast")
    assert "A short title" in d.text()
    d.say("Webinar week")
    assert "In which languages" in d.text()
    d.say("1, 2")  # English, French
    assert "The text in English" in d.text()
    d.say("Join our webinars this week.")
    assert "The text in French" in d.text()
    d.say("Rejoignez nos webinaires cette semaine.")
    assert "Who should receive it?" in d.text()
    d.say(segment)
    for reply in answers:
        d.say(reply)
    assert "Please check" in d.text() or "✅" in " ".join(d.labels())
    d.say(tap="✅ Submit")


def test_compose_preview_and_send_now(
    dialog: Callable[..., Dialog],
    engine: Engine,
    clock: FixedClock,
    officials: dict[str, int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Sierra Leone or Kenya AND priority education: preview, confirm, texts by language."""
    templates = tmp_path / "templates.yaml"
    templates.write_text("broadcast:\n  fr:\n    content_sid: HX123\n    variables: [text]\n")
    monkeypatch.setenv("WHATSAPP_TEMPLATES_FILE", str(templates))
    d = staff_dialog(dialog, engine, clock, ADMIN, "admin")
    compose(d, segment="2, 6", answers=["Sierra Leone, KE, Atlantis", "education"])
    preview = d.replies[-2].text
    assert "Preview of broadcast #1 “Webinar week”" in preview
    assert "Recipients: 5 (of 7 matching contacts)" in preview
    assert "Excluded:" in preview and "opted out 1" in preview and "unreachable 1" in preview
    assert "By channel: Console 3, Telegram 1, WhatsApp 1" in preview
    assert "No text in their language: 1 contacts (العربية 1) will get the English text" in preview
    assert "WhatsApp outside the window with no approved template: 1 (English 1)" in preview
    assert "Not recognised (ignored): Atlantis" in preview
    assert "Send it now, schedule it for later, or discard it?" in d.text()
    d.say(tap="Send now")
    sent = {m.urn: m for m in messages(engine)}
    assert set(sent) == {
        "console:sl-en",
        "console:sl-fr",
        "console:ke-ar",
        "telegram:501",
        "whatsapp:+254700000001",
    }
    assert sent["console:sl-fr"].body["text"] == "Rejoignez nos webinaires cette semaine."
    assert sent["console:ke-ar"].body["text"] == "Join our webinars this week."
    assert sent["console:ke-ar"].language == "en"
    assert sent["telegram:501"].language == "fr"
    assert {m.idempotency_key for m in sent.values()} == {
        f"bc:1:{officials[k]}" for k in ("sl_en", "sl_fr", "ke_ar", "ke_tg", "ke_wa")
    }
    assert "starts within a minute" in " ".join(r.text for r in d.replies[-3:])
    with session_scope(engine) as session:
        reasons = {
            r.contact_id: r.excluded
            for r in session.exec(select(BroadcastRecipient))
            if r.excluded is not None
        }
    assert reasons == {officials["ke_stop"]: "opted_out", officials["ke_gone"]: "unreachable"}
    # The console recipients got their message; the sweep reports the end once all are out.
    for m in messages(engine):
        if m.channel != "console":
            with session_scope(engine) as session:
                outbox.mark_sent(
                    session=session, message_id=m.id or 0, now=clock.now(), provider_id="x"
                )
    run_broadcasts(engine=engine, now=clock.now())
    assert latest(engine).status == "done"
    d.say("/bcstats 1")
    assert "finished" in d.replies[-2].text or "finished" in d.text()
    assert "Status: done" in d.text()
    assert {"broadcast_created", "broadcast_scheduled", "staff:broadcast"} <= set(actions(engine))


def test_schedule_for_later_then_cancel(
    dialog: Callable[..., Dialog], engine: Engine, clock: FixedClock, officials: dict[str, int]
) -> None:
    """A scheduled broadcast waits for its time; cancelled, it never goes."""
    d = staff_dialog(dialog, engine, clock)
    compose(d, segment="1", answers=[])
    assert "Recipients: 8 (of 10 matching contacts)" in d.replies[-2].text  # staff too
    d.say(tap="Schedule for later")
    assert "On which day (UTC)?" in d.text()
    d.say((clock.now() + timedelta(days=2)).date().isoformat())
    assert "At what hour" in d.text()
    d.say("14")
    assert "is scheduled for 2026-11-04 14:00 UTC" in " ".join(r.text for r in d.replies[-2:])
    run_broadcasts(engine=engine, now=clock.now())
    assert messages(engine) == [] and latest(engine).status == "scheduled"
    d.say("/bccancel 1")
    assert "Broadcast #1 is cancelled" in d.text()
    run_broadcasts(engine=engine, now=clock.now() + timedelta(days=3))
    assert messages(engine) == [] and latest(engine).status == "cancelled"
    d.say("/bccancel 1")
    assert "is cancelled; that cannot be done now" in d.text()
    assert actions(engine).count("broadcast_cancelled") == 1


def test_a_past_time_keeps_the_draft_and_bcsend_sends_it(
    dialog: Callable[..., Dialog], engine: Engine, clock: FixedClock, officials: dict[str, int]
) -> None:
    """A time already past sends nothing; /bcsend sends the draft later."""
    d = staff_dialog(dialog, engine, clock)
    compose(d, segment="4", answers=["Koidu"])  # by city: nobody lives there
    assert "Recipients: 0 (of 0 matching contacts)" in d.replies[-2].text
    d.say(tap="Schedule for later")
    d.say("2026-11-01")
    d.say("8")
    assert "is not in the future" in " ".join(r.text for r in d.replies[-2:])
    assert latest(engine).status == "draft"
    d.say("/bcsend 1 now")
    assert "starts within a minute" in d.text()
    assert latest(engine).status == "done"  # nobody to send to


def test_discarding_the_draft(
    dialog: Callable[..., Dialog], engine: Engine, clock: FixedClock, officials: dict[str, int]
) -> None:
    """Discard cancels the draft; nothing is sent."""
    d = staff_dialog(dialog, engine, clock)
    compose(d, segment="1", answers=[])
    d.say(tap="Discard")
    assert "The draft was discarded" in d.text()
    assert latest(engine).status == "cancelled" and messages(engine) == []


def test_retry_sends_the_failed_again_once(
    dialog: Callable[..., Dialog], engine: Engine, clock: FixedClock, officials: dict[str, int]
) -> None:
    """Failed messages are queued again with new keys; opted-out since are skipped."""
    d = staff_dialog(dialog, engine, clock)
    compose(d, segment="8", answers=["1, 2"])  # by channel: Telegram and WhatsApp
    d.say(tap="Send now")
    rows = messages(engine)
    assert {m.urn for m in rows} == {"telegram:501", "whatsapp:+254700000001"}
    with session_scope(engine) as session:
        for m in rows:
            outbox.mark_failed(
                session=session, message_id=m.id or 0, now=clock.now(), code="400", reason="bad"
            )
        gone = contacts.get_contact_by_urn(session=session, urn="whatsapp:+254700000001")
        assert gone is not None
        contacts.update_contact(session=session, contact=gone, opted_out=True)
    d.say("/bcstats 1")
    assert "failed 2" in d.text() and "2 × bad (400)" in d.text()
    assert "/bcretry 1" in d.text()
    d.say("/bcretry 1")
    assert "1 failed messages are queued again" in d.text()
    assert "opted out 1" in d.text()
    d.say("/bcretry 1")  # the retried one has not failed: nothing more is queued
    assert "0 failed messages" in d.text()
    keys = sorted(m.idempotency_key for m in messages(engine))
    assert keys == [
        f"bc:1:{officials['ke_tg']}",
        f"bc:1:{officials['ke_tg']}:r1",
        f"bc:1:{officials['ke_wa']}",
    ]
    assert actions(engine).count("broadcast_retry") == 2


def test_roles_are_given_and_taken_by_admins_only(
    dialog: Callable[..., Dialog], engine: Engine, clock: FixedClock
) -> None:
    """Admins promote and demote, audited; staff may not; the last admin stays."""
    make_staff(engine, clock, {ADMIN: "admin", STAFF: "staff"})
    admin, staff = dialog(ADMIN), dialog(STAFF)
    staff.say("/promote telegram:77 admin")
    assert fragment("help_text", "en") in staff.text()
    admin.say("/promote telegram:77 admin")
    assert "is now admin" in admin.text()
    admin.say("/team")
    assert "telegram:77" in admin.text() and "console:staff" in admin.text()
    admin.say("/demote telegram:77")
    assert "no longer staff" in admin.text()
    admin.say("/demote console:admin")
    assert "last admin" in admin.text()
    admin.say("/promote nonsense")
    assert "Usage: /promote" in admin.text() or "no such contact" in admin.text()
    admin.say("/audit 50 staff_")
    assert "staff_promote" in admin.text() and "staff_demote" in admin.text()
    trail = actions(engine)
    assert trail.count("staff_denied") == 1
    assert {"staff_promote", "staff_demote", "staff:promote", "staff:demote"} <= set(trail)
    with session_scope(engine) as session:
        target = contacts.get_contact_by_urn(session=session, urn="telegram:77")
        assert target is not None and target.staff_role is None


def test_staff_help_lists_what_the_role_may_run(
    dialog: Callable[..., Dialog], engine: Engine, clock: FixedClock
) -> None:
    """/staff shows staff commands; admin-only ones only to admins."""
    make_staff(engine, clock, {ADMIN: "admin", STAFF: "staff"})
    staff, admin = dialog(STAFF), dialog(ADMIN)
    staff.say("/staff")
    assert "/broadcast — compose a broadcast" in staff.text()
    assert "/promote" not in staff.text()
    admin.say("/staff")
    assert "/promote — give a contact a staff role" in admin.text()


def test_a_form_submitted_after_losing_the_role_is_refused(
    dialog: Callable[..., Dialog], engine: Engine, clock: FixedClock, officials: dict[str, int]
) -> None:
    """The role is checked again when the compose form is submitted."""
    d = staff_dialog(dialog, engine, clock)
    d.say("/broadcast")
    for line in ("T", "1", "Hello", "1"):
        d.say(line)
    with session_scope(engine) as session:
        contact = contacts.get_contact_by_urn(session=session, urn=STAFF)
        assert contact is not None
        contacts.update_contact(session=session, contact=contact, staff_role=None)
    d.say(tap="✅ Submit")
    assert any("Only programme staff" in r.text for r in d.replies[-2:])
    with session_scope(engine) as session:
        assert session.exec(select(Broadcast)).first() is None
    assert actions(engine)[-1] == "staff_denied"


def test_report_arrives_with_charts_as_images(engine: Engine, reporter: Dialog) -> None:
    """/report: priorities and support by region and country, as text and PNG images."""
    reporter.say("/report surveys")
    text = reporter.text()
    assert "Development needs survey: 9 respondents" in text
    assert "Education — 8 (89%)" in text
    assert "Africa (8): Education 88%" in text
    assert "Kenya (5): Education 100%" in text and "Sierra Leone (3)" in text
    images = reporter.last.attachments
    assert images and all(a.kind == "image" for a in images)
    for image in images:
        assert Path(image.path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "report" in actions(engine)


def test_export_arrives_as_a_document_with_labels_in_the_chosen_language(
    engine: Engine, reporter: Dialog
) -> None:
    """/export responses csv fr: one row per response, French labels; contacts as XLSX."""
    reporter.say("/export responses csv fr development_needs")
    assert "9 rows" in reporter.text()
    document = reporter.last.attachments[0]
    assert document.kind == "document" and document.filename.endswith(".csv")
    with open(document.path, encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    assert len(rows) == 10
    header = rows[0]
    assert "Pays" in header and "Région" in header
    column = header.index(
        "Quelles sont les trois principales priorités de développement de votre ville ?"
    )
    assert "Éducation" in rows[1][column]
    reporter.say("/export contacts xlsx")
    from openpyxl import load_workbook  # type: ignore[import-untyped]

    book = load_workbook(reporter.last.attachments[0].path, read_only=True)
    rows = list(book["contacts"].iter_rows(values_only=True))
    assert len(rows) == 1 + 10  # nine officials and the staff member
    assert rows[0][:3] == ("id", "Name", "Role") and rows[1][2] == "City official"
    reporter.say("/export")
    assert "Usage: /export" in reporter.text()
    assert actions(engine).count("export") == 2


def test_progress_messages_in_chat(
    dialog: Callable[..., Dialog], engine: Engine, clock: FixedClock
) -> None:
    """The staff member who sent a broadcast hears when it starts, at 25/50/75 % and the end."""
    for n in range(8):
        person(engine, clock, f"telegram:{700 + n}", country="GH")
    d = staff_dialog(dialog, engine, clock)
    compose(d, segment="2", answers=["Ghana"])
    d.say(tap="Send now")
    rows = messages(engine)
    assert len(rows) == 8
    for done in (1, 2, 4, 6, 8):
        with session_scope(engine) as session:
            for m in rows[:done]:
                outbox.mark_sent(
                    session=session, message_id=m.id or 0, now=clock.now(), provider_id=f"p{m.id}"
                )
        run_broadcasts(engine=engine, now=clock.now())
        run_broadcasts(engine=engine, now=clock.now())  # a second run says nothing new
    notes = [m.body["text"] for m in messages(engine, "staff") if m.urn == STAFF]
    progress = [n for n in notes if n.startswith("Broadcast #1") and "within a minute" not in n]
    assert progress[0].startswith("Broadcast #1 “Webinar week” is being sent to 8 contacts")
    assert [p.split("(")[1].split(")")[0] for p in progress[1:-1]] == ["25%", "50%", "75%"]
    assert progress[-1].startswith("Broadcast #1 “Webinar week” is finished: sent 8.")
    assert latest(engine).status == "done"


def test_the_last_admin_cannot_make_themselves_staff(
    dialog: Callable[..., Dialog], engine: Engine, clock: FixedClock
) -> None:
    """Promoting the only admin down to staff is refused like demoting them."""
    d = staff_dialog(dialog, engine, clock, ADMIN, "admin")
    d.say("/promote console:admin staff")
    assert "last admin" in d.text()


def test_the_broadcast_sweep_is_registered_with_the_scheduler(engine: Engine) -> None:
    """`citybot serve`'s scheduler runs the broadcast sweep every few seconds."""
    from bot.clock import SystemClock
    from scheduler.setup import build_scheduler

    jobs = {job.id: job for job in build_scheduler(engine=engine, clock=SystemClock()).get_jobs()}
    assert "broadcasts" in jobs
    jobs["broadcasts"].func()  # nothing due: runs and does nothing
