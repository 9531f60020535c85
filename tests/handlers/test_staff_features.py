"""Staff against the donations and webinars features: segments of webinar registrants and of
officials with open donation requests, their report sections and their exports."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from bot.clock import FixedClock
from handlers import broadcasts_segments
from storage.db import session_scope
from tests.handlers.staff_cases import compose, person, staff_dialog
from tests.support import Dialog

donations = pytest.importorskip("storage.donations")
webinars = pytest.importorskip("storage.webinars")


@pytest.fixture
def world(engine: Engine, clock: FixedClock) -> dict[str, int]:
    """Four officials: one with an open request, two registered for webinar 1, one both."""
    ids = {
        name: person(engine, clock, f"console:{name}", country="SL", priorities=["education"])
        for name in ("requester", "listener", "both", "neither")
    }
    with session_scope(engine) as session:
        webinar = webinars.create_webinar(
            session=session,
            now=clock.now(),
            title={"en": "Waste management"},
            starts_at=clock.now() + timedelta(days=3),
            timezone="Africa/Freetown",
        )
        for name in ("listener", "both"):
            webinars.add_registration(
                session=session,
                webinar_id=webinar.id,
                contact_id=ids[name],
                now=clock.now(),
                source="button",
                language="en",
                country_code="SL",
                timezone="Africa/Freetown",
                zone_source="contact",
            )
        for name in ("requester", "both"):
            donations.create_request(
                session=session,
                now=clock.now(),
                lines=[
                    donations.LineInput(item_id="masks_surgical", item_group="ppe", quantity=500)
                ],
                contact_id=ids[name],
                status=donations.RequestStatus.SUBMITTED,
                country_code="SL",
                city_name="Koidu",
            )
        ids["webinar"] = webinar.id or 0
    return ids


def test_segments_of_registrants_and_open_requests(
    engine: Engine, clock: FixedClock, world: dict[str, int]
) -> None:
    """Registrants of a webinar, officials with open requests, and both at once (AND)."""
    with session_scope(engine) as session:
        webinar = broadcasts_segments.resolve(
            session=session, spec={"webinar": [world["webinar"]]}
        )
        requests = broadcasts_segments.resolve(session=session, spec={"donations": True})
        both = broadcasts_segments.resolve(
            session=session, spec={"webinar": [world["webinar"]], "donations": True}
        )
    assert webinar.unavailable == requests.unavailable == both.unavailable == []
    assert webinar.audience.ids() == {world["listener"], world["both"]}
    assert requests.audience.ids() == {world["requester"], world["both"]}
    assert both.audience.ids() == {world["both"]}


def test_compose_to_webinar_registrants_in_chat(
    dialog: Callable[..., Dialog], engine: Engine, clock: FixedClock, world: dict[str, int]
) -> None:
    """The chat flow with the webinar filter previews and sends to its registrants only."""
    d = staff_dialog(dialog, engine, clock, "console:staff")
    compose(d, segment="9, 10", answers=[str(world["webinar"])])
    preview = d.replies[-2].text
    assert "Webinar registrants: #" in preview and "Open donation requests" in preview
    assert "Recipients: 1 (of 1 matching contacts)" in preview
    d.say(tap="Send now")
    got = [m.text for urn, m in d.sender.sent if urn != "console:staff"]
    assert [urn for urn, m in d.sender.sent if m.kind == "broadcast"] == ["console:both"]
    assert got == ["Join our webinars this week."]


def test_report_and_exports_include_donations_and_webinars(
    dialog: Callable[..., Dialog],
    engine: Engine,
    clock: FixedClock,
    world: dict[str, int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The report has both sections (and their charts); requests and registrations export."""
    monkeypatch.setenv("CITYBOT_FILES_DIR", str(tmp_path))
    d = staff_dialog(dialog, engine, clock, "console:staff")
    d.say("/report donations webinars")
    assert "Donations\n" in d.text() and "Webinars\n" in d.text()
    assert "not available" not in d.text()
    assert "requests open: 2" in d.text() and "registered: 2" in d.text()
    assert d.last.attachments
    d.say("/export requests csv")
    assert "Export of requests: 2 rows" in d.text()
    d.say("/export registrations xlsx")
    assert "Export of registrations: 2 rows" in d.text()
