"""WhatsApp rendering, the templates file, the error taxonomy, the URL rewrite and the pacer."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from twilio.base.exceptions import TwilioRestException, TwilioServiceException

from bot.channels.whatsapp_http import Pacer, parse_retry_after, rewrite_url
from bot.channels.whatsapp_render import (
    ContentConfig,
    Template,
    TemplateError,
    load_content,
    parse_content,
    session_requests,
    split_text,
    template_request,
)
from bot.channels.whatsapp_sender import classify, error_fields, redact, window_open
from handlers.i18n import t
from handlers.messages import Attachment, Choice, Outgoing

QR = {1: "HX" + "a" * 32, 2: "HX" + "b" * 32, 3: "HX" + "c" * 32}
LIST = {n: "HX" + f"{n:02d}" * 16 for n in range(2, 11)}
INTERACTIVE = ContentConfig(quick_reply=QR, list_picker=LIST)
YES_NO = (Choice("s1:#yes", "Yes"), Choice("s1:#no", "No"))


def test_without_interactive_content_choices_are_numbered_text() -> None:
    """Numbered lines and a localized hint; no Content template is needed."""
    [request] = session_requests(Outgoing("Do you agree?", YES_NO), "fr", ContentConfig())
    assert request.params() == {
        "body": f"Do you agree?\n\n1. Yes\n2. No\n\n{t('wa_reply_number', 'fr')}"
    }


def test_multiple_choice_and_lone_choices_get_no_extra_hint() -> None:
    """Multiple-choice prompts carry their own hint; a lone Skip is an aside."""
    multi = Outgoing("Which supplies?", (Choice("a", "Masks"), Choice("b", "Gloves")), multi=True)
    [request] = session_requests(multi, "en", ContentConfig())
    assert request.body == "Which supplies?\n\n1. Masks\n2. Gloves"
    lone = Outgoing("Name them, or skip.", (Choice("s", "Skip"),))
    [request] = session_requests(lone, "en", ContentConfig())
    assert request.body == "Name them, or skip.\n\n1. Skip"


def test_up_to_three_short_choices_are_quick_reply_buttons() -> None:
    """Body, then title and id per button, in a generic twilio/quick-reply template."""
    [request] = session_requests(Outgoing("Do you agree?", YES_NO), "en", INTERACTIVE)
    params = request.params()
    assert params["content_sid"] == QR[2] and "body" not in params
    assert json.loads(params["content_variables"]) == {
        "1": "Do you agree?",
        "2": "Yes",
        "3": "s1:#yes",
        "4": "No",
        "5": "s1:#no",
    }


def test_longer_labels_or_more_choices_become_a_list() -> None:
    """A 21-character label is too long for a button but fits a list item (≤ 24)."""
    choices = (Choice("m:a", "Register my office now"), Choice("m:b", "See my data"))
    [request] = session_requests(Outgoing("Menu", choices), "es", INTERACTIVE)
    assert request.content_sid == LIST[2]
    assert request.content_variables == {
        "1": "Menu",
        "2": t("wa_list_button", "es"),
        "3": "Register my office now",
        "4": "m:a",
        "5": "See my data",
        "6": "m:b",
    }


@pytest.mark.parametrize(
    ("label", "count", "text"),
    [
        ("Organización intergubernamental (OIG)", 2, "Role?"),  # > 24 characters
        ("Option", 11, "Role?"),  # > 10 items
        ("Option", 2, "x" * 1025),  # body > 1,024 characters
    ],
)
def test_what_fits_no_interactive_message_is_numbered(label: str, count: int, text: str) -> None:
    """Long labels, many choices or a long text fall back to numbered text."""
    choices = tuple(Choice(f"c{i}", f"{label} {i}") for i in range(count))
    requests = session_requests(Outgoing(text, choices), "en", INTERACTIVE)
    assert all(r.content_sid is None for r in requests)
    assert "1. " in "".join(r.body or "" for r in requests)


def test_duplicate_labels_are_not_buttons() -> None:
    """WhatsApp wants unique button titles."""
    choices = (Choice("a", "Same"), Choice("b", "Same"))
    [request] = session_requests(Outgoing("?", choices), "en", INTERACTIVE)
    assert request.content_sid is None


def test_long_text_is_split_at_line_ends() -> None:
    """Twilio takes at most 1,600 characters per message."""
    text = "\n".join(f"• line {i:03d} " + "x" * 60 for i in range(60))
    parts = split_text(text)
    assert len(parts) == 3 and all(len(p) <= 1600 for p in parts)
    assert "\n".join(parts) == text
    assert split_text("y" * 3500) == ["y" * 1600, "y" * 1600, "y" * 300]


def test_attachments_with_a_url_are_media_messages() -> None:
    """A public URL becomes MediaUrl; a local file is named in the text."""
    message = Outgoing(
        "Your certificate",
        attachments=(
            Attachment("document", "cert.pdf", "https://files.example.org/cert.pdf", "PDF"),
            Attachment("image", "map.png", "/var/lib/citybot/map.png"),
        ),
    )
    media, text = session_requests(message, "en", ContentConfig())
    assert media.params() == {"body": "PDF", "media_url": ["https://files.example.org/cert.pdf"]}
    assert text.params() == {"body": "Your certificate\n[image: map.png]"}


def test_a_template_is_filled_from_the_message_fields() -> None:
    """Variables by position from meta keys, dotted paths or the text; one line each."""
    template = Template("HX" + "1" * 32, (("1", "title"), ("2", "meta.when"), ("3", "text")))
    body = Outgoing(
        "Line one\n\tline two", meta={"title": "Waste    management", "when": "Mon 14:00"}
    ).to_body()
    request = template_request(template, body)
    assert request.params() == {
        "content_sid": "HX" + "1" * 32,
        "content_variables": json.dumps(
            {"1": "Waste   management", "2": "Mon 14:00", "3": "Line one  line two"}
        ),
    }
    with pytest.raises(TemplateError, match="starts"):
        template_request(Template("HX1", (("1", "starts"),)), body)


def test_the_templates_file(tmp_path: Path) -> None:
    """kind → language → {content_sid, variables}; `interactive` holds the in-session SIDs."""
    path = tmp_path / "whatsapp_templates.yaml"
    path.write_text(
        "reminder:\n"
        "  en: {content_sid: HX11, variables: [title, starts]}\n"
        "  fr: {content_sid: HX12, variables: {'1': title}}\n"
        "interactive:\n"
        "  quick_reply: {2: HX22}\n"
        "  list_picker: {7: HX77}\n",
        encoding="utf-8",
    )
    content = load_content(path)
    assert content.template("reminder", "en") == Template(
        "HX11", (("1", "title"), ("2", "starts"))
    )
    assert content.template("reminder", "fr") == Template("HX12", (("1", "title"),))
    assert content.template("reminder", "es") is None
    assert content.template("broadcast", "en") is None
    assert (content.quick_reply, content.list_picker) == ({2: "HX22"}, {7: "HX77"})
    assert load_content(tmp_path / "missing.yaml") == ContentConfig()


@pytest.mark.parametrize(
    "data",
    [
        ["reminder"],
        {"reminder": ["en"]},
        {"reminder": {"en": {"content_sid": "SM1"}}},
        {"reminder": {"en": {"content_sid": "HX1", "variables": "title"}}},
        {"interactive": {"quick_reply": {4: "HX1"}}},
        {"interactive": {"list_picker": {"many": "HX1"}}},
    ],
)
def test_a_malformed_templates_file_is_refused(data: object) -> None:
    """Mistakes are reported at start, not when a reminder is due."""
    with pytest.raises(ValueError):
        parse_content(data)


def test_the_window_is_24_hours_from_the_last_inbound() -> None:
    """Open for 24 hours after the contact's last message; never open without one."""
    last = datetime(2026, 11, 2, 9, tzinfo=UTC)
    assert window_open(last, last + timedelta(hours=23, minutes=59))
    assert not window_open(last, last + timedelta(hours=24))
    assert not window_open(None, last)


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (400, 21610, "opted_out"),
        (400, 63016, "needs_template"),
        (429, 20429, "retry"),
        (429, None, "retry"),
        (400, 63018, "retry"),
        (500, 20500, "retry"),
        (503, None, "retry"),
        (400, 21211, "blocked"),
        (400, 63024, "blocked"),
        (401, 20003, "fatal"),
        (400, 21408, "fatal"),
    ],
)
def test_twilio_errors_are_classified(status: int, code: int | None, kind: str) -> None:
    """Each Twilio answer maps to what the dispatcher does."""
    error = TwilioRestException(status, "uri", "Message to +23276000001 failed", code)
    found = classify(*error_fields(error), "+23276000001", 2.0)
    assert found.kind == kind
    assert found.code == str(code or status)
    assert "+23276000001" not in found.reason
    assert found.retry_after == (2.0 if kind == "retry" else None)


def test_reasons_lose_addresses_and_numbers() -> None:
    """Error messages are stored; phone numbers and ids in them are not."""
    assert redact("To whatsapp:US.1349 failed", "US.1349") == "To whatsapp:<recipient> failed"
    assert redact("The number +1 (415) 523-8886 is bad", "") == "The number <number> is bad"


def test_the_base_url_replaces_every_twilio_host() -> None:
    """TWILIO_API_BASE_URL stands for api.twilio.com, content.twilio.com and the others."""
    base = "http://127.0.0.1:8080"
    url = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json"
    assert rewrite_url(url, base) == "http://127.0.0.1:8080/2010-04-01/Accounts/AC1/Messages.json"
    assert rewrite_url("https://content.twilio.com/v1/Content", base + "/") == (
        "http://127.0.0.1:8080/v1/Content"
    )
    assert rewrite_url(url, "https://api.twilio.com") == url
    assert (
        rewrite_url("https://example.org/x.twilio.com", base) == "https://example.org/x.twilio.com"
    )


def test_retry_after_is_read_in_seconds() -> None:
    """Seconds, capped; anything else is ignored."""
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("9999") == 300.0
    assert parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT") is None
    assert parse_retry_after(None) is None


def test_the_pacer_spaces_starts_at_the_rate() -> None:
    """Calls answered at once: starts 1/rate apart (two back to back after idle), long-run rate."""
    pacer = Pacer(80.0, burst=4)
    now, starts = 100.0, []
    while len(starts) < 81:
        now += pacer.delay(now)
        pacer.begin(now)
        pacer.end(now)
        starts.append(now)
    assert starts[:3] == pytest.approx([100.0, 100.0, 100.0 + 1 / 80])
    assert starts[80] - starts[0] == pytest.approx(79 / 80)
    assert pacer.delay(200.0) == 0.0  # idle time is not saved up
    with pytest.raises(ValueError):
        Pacer(0)


def test_the_pacer_counts_calls_in_flight_as_arriving_now() -> None:
    """No more than `burst` in flight; answers count at their time, so a bunch is paid back."""
    pacer = Pacer(80.0, burst=4, start_burst=4)
    for _ in range(4):
        assert pacer.delay(100.0) == pytest.approx(0.0, abs=1e-9)
        pacer.begin(100.0)
    assert pacer.delay(100.5) == math.inf  # four may all arrive together: wait for an answer
    for _ in range(4):
        pacer.end(100.5)  # answered together: they may have arrived together, just now
    assert pacer.delay(100.5) == pytest.approx(1 / 80)  # 4 + 1 in 1/80 s exceeds the burst
    assert pacer.delay(100.5 + 1 / 80) == pytest.approx(0.0, abs=1e-9)


def test_the_pacer_pauses_after_too_many() -> None:
    """`pause` holds every call for the given time from now."""
    clock = [50.0]
    pacer = Pacer(10.0, burst=2, clock=lambda: clock[0])
    pacer.pause(3.0)
    assert pacer.delay(50.0) == pytest.approx(3.0)
    assert pacer.delay(53.0) == 0.0


def test_the_example_templates_file_is_valid() -> None:
    """docs/whatsapp_templates.example.yaml loads as documented."""
    example = Path(__file__).resolve().parents[2] / "docs" / "whatsapp_templates.example.yaml"
    content = load_content(example)
    assert content.template("reminder", "fr") is not None
    assert sorted(content.quick_reply) == [1, 2, 3]
    assert sorted(content.list_picker) == list(range(2, 11))


def test_problem_details_errors_are_classified_too() -> None:
    """twilio raises TwilioServiceException for RFC 9457 bodies; same taxonomy."""
    error = TwilioServiceException(
        "https://www.twilio.com/docs/errors/20429", "Too Many Requests", 429, 20429, "Slow down"
    )
    found = classify(*error_fields(error), "+23276000001", None)
    assert (found.kind, found.code, found.reason) == ("retry", "20429", "Slow down")
