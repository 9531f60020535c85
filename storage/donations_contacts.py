"""The people and survey responses donations work with: staff, requesters, unconverted surveys."""

from __future__ import annotations

from sqlmodel import Session, col, select

from storage.donations_models import DonationRequest
from storage.donations_states import OPEN_REQUEST, R
from storage.models import Contact, SurveyResponse


def staff_contact_ids(*, session: Session) -> list[int]:
    """Return the ids of staff and admins who can be messaged."""
    stmt = (
        select(Contact.id)
        .where(
            col(Contact.staff_role).in_(("staff", "admin")),
            col(Contact.opted_out).is_(False),
            col(Contact.erased_at).is_(None),
        )
        .order_by(col(Contact.id))
    )
    return [int(i) for i in session.exec(stmt) if i is not None]


def contacts_with_open_requests(*, session: Session) -> list[int]:
    """Return the contacts with a request filed and not yet closed (drafts are not filed)."""
    stmt = (
        select(DonationRequest.contact_id)
        .where(
            col(DonationRequest.contact_id).is_not(None),
            col(DonationRequest.status).in_(list(OPEN_REQUEST)),
        )
        .distinct()
        .order_by(col(DonationRequest.contact_id))
    )
    return [int(i) for i in session.exec(stmt) if i is not None]


def latest_unconverted_survey(
    *, session: Session, contact_id: int, survey_id: str
) -> SurveyResponse | None:
    """Return the contact's newest response to a survey no request was made from yet."""
    used = select(DonationRequest.survey_response_id).where(
        col(DonationRequest.survey_response_id).is_not(None),
        col(DonationRequest.status) != R.CANCELLED,
    )
    stmt = (
        select(SurveyResponse)
        .where(
            SurveyResponse.contact_id == contact_id,
            SurveyResponse.survey_id == survey_id,
            col(SurveyResponse.id).not_in(used),
        )
        .order_by(col(SurveyResponse.id).desc())
    )
    return session.exec(stmt).first()


def get_survey_response(*, session: Session, response_id: int) -> SurveyResponse | None:
    """Return a survey response by id."""
    return session.get(SurveyResponse, response_id)
