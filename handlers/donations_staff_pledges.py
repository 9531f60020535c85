"""Donors, pledges and matches in chat: /donor, /pledge, /matches and the match buttons."""

from __future__ import annotations

import re

from handlers import donations_match, donations_pledging
from handlers.context import Ctx
from handlers.donations_catalogue import item_name, quantity_text
from handlers.donations_staff_plumbing import _error, _request, _staff_button
from handlers.donations_text import city_label
from handlers.features import staff_command
from handlers.i18n import t
from handlers.messages import Choice, Outgoing
from storage import donations as store
from storage.donations import DonationError
from storage.donations_models import DonationMatch, DonationRequest


@staff_command("donor")
def donor(ctx: Ctx, args: str) -> list[Outgoing]:
    """List donor partners, or record one: /donor Name; CC; kind."""
    if not args.strip():
        found = store.donors(session=ctx.session)
        if not found:
            return [Outgoing(text=t("don_donors_none", ctx.lang))]
        lines = [f"• D{d.id} · {d.name} ({d.country_code or '—'}, {d.kind})" for d in found[:40]]
        return [Outgoing(text="\n".join([t("don_donors_title", ctx.lang), *lines]))]
    name, _, rest = args.partition(";")
    country, _, kind = rest.partition(";")
    try:
        found_donor = donations_pledging.add_donor(
            ctx.session,
            name,
            ctx.now,
            ctx.contact.id,
            kind=kind.strip() or "other",
            country_code=country.strip() or None,
        )
    except DonationError as error:
        return _error(ctx, error)
    return [
        Outgoing(text=t("don_staff_donor", ctx.lang, id=found_donor.id, name=found_donor.name))
    ]


_ITEM = re.compile(r"^([^=\s]+)=([\d.,_ kKmM万]+)$")


@staff_command("pledge")
def pledge(ctx: Ctx, args: str) -> list[Outgoing]:
    """Record a pledge: /pledge D3 surgical_mask=10000 [gloves=500] [R-7K3F] [logistics]."""
    from handlers.parsing import parse_number

    tokens = args.split()
    donor_words: list[str] = []
    items: list[tuple[str, int]] = []
    request: DonationRequest | None = None
    logistics = False
    for token in tokens:
        found = _ITEM.match(token)
        if found:
            number = parse_number(found.group(2))
            if number is None or number != int(number):
                return [Outgoing(text=t("don_err_quantity", ctx.lang))]
            items.append((found.group(1), int(number)))
        elif store.parse_ref(token) and token.upper().startswith("R"):
            request = _request(ctx, token)
            if request is None:
                return [Outgoing(text=t("don_not_found", ctx.lang, ref=token))]
        elif token.lower() in ("logistics", "+logistics"):
            logistics = True
        elif not items:
            donor_words.append(token)
    found_donor = store.find_donor(session=ctx.session, text=" ".join(donor_words))
    if found_donor is None or not items:
        return [Outgoing(text=t("don_pledge_usage", ctx.lang))]
    try:
        made = donations_pledging.add_pledge(
            ctx.session, found_donor, items, ctx.now, ctx.contact.id, request=request,
            logistics_covered=logistics,
        )  # fmt: skip
    except DonationError as error:
        return _error(ctx, error)
    lines = [
        f"• {item_name(line.item_id, ctx.lang)}: "
        f"{quantity_text(line.quantity, line.item_id, ctx.lang)}"
        for line in store.pledge_lines(session=ctx.session, pledge_id=made.id or 0)
    ]
    key = "don_staff_pledge_for" if request else "don_staff_pledge"
    text = t(
        key, ctx.lang, ref=made.ref, donor=found_donor.name, request=request.ref if request else ""
    )
    return [Outgoing(text="\n".join([text, *lines]))]


def match_message(ctx: Ctx, match_id: int) -> Outgoing:
    """Show a proposed match with confirm and reject buttons."""
    match = store.get_match(session=ctx.session, match_id=match_id)
    assert match is not None
    rline = store.get_request_line(session=ctx.session, line_id=match.request_line_id)
    pline = store.get_pledge_line(session=ctx.session, line_id=match.pledge_line_id)
    assert rline is not None and pline is not None
    request = store.get_request(session=ctx.session, request_id=rline.request_id)
    pledge_row = store.get_pledge(session=ctx.session, pledge_id=pline.pledge_id)
    assert request is not None and pledge_row is not None
    donor_row = store.get_donor(session=ctx.session, donor_id=pledge_row.donor_id)
    text = t(
        "don_match_line",
        ctx.lang,
        id=match.id,
        score=match.score,
        pledge=pledge_row.ref,
        donor=donor_row.name if donor_row else "?",
        quantity=quantity_text(match.quantity, pline.item_id, ctx.lang),
        offered=item_name(pline.item_id, ctx.lang),
        request=request.ref,
        city=city_label(request, ctx.lang),
        wanted=item_name(rline.item_id, ctx.lang, rline.description),
        urgency=t(f"don_urgency_{request.urgency}", ctx.lang),
    )
    return Outgoing(
        text=text,
        choices=(
            Choice(f"dm:{match.id}:ok", t("don_btn_confirm_match", ctx.lang)),
            Choice(f"dm:{match.id}:no", t("don_btn_reject_match", ctx.lang)),
        ),
    )


@staff_command("matches")
def propose_matches(ctx: Ctx, args: str) -> list[Outgoing]:
    """Propose matches between open request lines and available pledges."""
    proposals = donations_match.propose(session=ctx.session, now=ctx.now)
    if not proposals:
        return [Outgoing(text=t("don_matches_none", ctx.lang))]
    head = Outgoing(text=t("don_matches_title", ctx.lang, count=len(proposals)))
    return [head, *(match_message(ctx, m.id or 0) for m in proposals[:10])]


@_staff_button("dm", lambda session, i: store.get_match(session=session, match_id=i))
def _match_button(ctx: Ctx, match: DonationMatch, action: str) -> list[Outgoing]:
    """Confirm or reject a proposed match."""
    try:
        if action == "ok":
            donations_pledging.confirm_match(ctx.session, match, ctx.now, ctx.contact.id)
            return [Outgoing(text=t("don_staff_match_ok", ctx.lang, id=match.id))]
        donations_pledging.reject_match(ctx.session, match, ctx.now, ctx.contact.id)
    except DonationError as error:
        return _error(ctx, error)
    return [Outgoing(text=t("don_staff_match_no", ctx.lang, id=match.id))]
