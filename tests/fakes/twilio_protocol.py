"""Twilio's error codes, SIDs, signatures and inbound forms, and the fake's records."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from twilio.request_validator import RequestValidator

SANDBOX_FROM = "whatsapp:+14155238886"

ERRORS: dict[int, tuple[int, str]] = {
    20003: (401, "Authenticate"),
    20404: (404, "The requested resource was not found"),
    20429: (429, "Too Many Requests"),
    20500: (500, "Internal Server Error"),
    20503: (503, "Service Unavailable"),
    21211: (400, "The 'To' number is not a valid phone number."),
    21602: (400, "Message body is required."),
    21604: (400, "A 'To' phone number is required."),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21617: (400, "The concatenated message body exceeds the 1600 character limit."),
    21656: (400, "The ContentVariables Parameter is invalid."),
    63016: (
        400,
        "Failed to send freeform message because you are outside the allowed window. "
        "If you are using WhatsApp, please use a Message Template.",
    ),
    63018: (429, "Rate limit exceeded for Channel"),
}


def new_sid(prefix: str = "SM") -> str:
    """A Twilio-looking SID: two letters and 32 hex digits."""
    return prefix + secrets.token_hex(16)


def sign(auth_token: str, url: str, params: dict[str, str]) -> str:
    """The X-Twilio-Signature Twilio would send for `params` posted to `url`."""
    return str(RequestValidator(auth_token).compute_signature(url, params))


def inbound_form(
    sender: str,
    body: str = "",
    *,
    sid: str | None = None,
    to: str = SANDBOX_FROM,
    account_sid: str = "AC" + "0" * 32,
    **extra: str,
) -> dict[str, str]:
    """A WhatsApp inbound webhook form as Twilio posts it (text message; add fields for more)."""
    message_sid = sid or new_sid()
    address = sender.removeprefix("whatsapp:")
    form = {
        "SmsMessageSid": message_sid,
        "NumMedia": "0",
        "ProfileName": "Amina",
        "MessageType": "text",
        "SmsSid": message_sid,
        "WaId": address.lstrip("+") if address.startswith("+") else "",
        "SmsStatus": "received",
        "Body": body,
        "To": to,
        "NumSegments": "1",
        "ReferralNumMedia": "0",
        "MessageSid": message_sid,
        "AccountSid": account_sid,
        "From": f"whatsapp:{address}",
        "ApiVersion": "2010-04-01",
    }
    form.update(extra)
    return {k: v for k, v in form.items() if v != "" or k == "Body"}


@dataclass
class SentMessage:
    """A message the fake accepted."""

    sid: str
    to: str
    from_: str
    body: str | None
    content_sid: str | None
    content_variables: dict[str, str] | None
    media_urls: list[str]
    status_callback: str | None
    at: float
    params: dict[str, str] = field(default_factory=dict)

    @property
    def address(self) -> str:
        """The recipient without the `whatsapp:` prefix."""
        return self.to.removeprefix("whatsapp:")


@dataclass
class Scripted:
    """An answer scripted for a recipient: an error code, or only a delay before answering."""

    code: int | None
    status: int
    message: str
    times: int  # -1: every time
    retry_after: float | None = None
    delay: float = 0.0
