"""Staff in chat: composing, previewing, sending, scheduling, cancelling, retrying broadcasts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from bot.clock import FixedClock
from scheduler.broadcasts import run_broadcasts
from storage import contacts, outbox
from storage.db import session_scope
from storage.staff_models import BroadcastRecipient
from tests.handlers.staff_cases import (
    ADMIN,
    STAFF,
    actions,
    compose,
    latest,
    messages,
    person,
    staff_dialog,
)
from tests.handlers.staff_cases import officials as officials  # a fixture
from tests.support import Dialog


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


def test_the_broadcast_sweep_is_registered_with_the_scheduler(engine: Engine) -> None:
    """`citybot serve`'s scheduler runs the broadcast sweep every few seconds."""
    from bot.clock import SystemClock
    from scheduler.setup import build_scheduler

    jobs = {job.id: job for job in build_scheduler(engine=engine, clock=SystemClock()).get_jobs()}
    assert "broadcasts" in jobs
    jobs["broadcasts"].func()  # nothing due: runs and does nothing
