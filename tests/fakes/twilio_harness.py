"""The bot with its WhatsApp channel, served on loopback and wired to the fake Twilio."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.fakes.loopback import AppServer, wait_until
from tests.fakes.twilio_protocol import SANDBOX_FROM, SentMessage, inbound_form, new_sid
from tests.fakes.twilio_server import FakeTwilioAPI


class WhatsAppBot:
    """The bot with its WhatsApp channel, served on loopback and wired to a fake Twilio."""

    public_base_url = "https://bot.example.org"

    def __init__(
        self,
        fake: FakeTwilioAPI,
        *,
        engine: Any,
        clock: Any,
        folder: Any,
        places: Any = None,
        templates: dict[str, Any] | None = None,
        **overrides: Any,
    ) -> None:
        """Build settings, channel and runtime the way `serve` does, against `fake`."""
        import yaml

        from bot.channels.whatsapp import WhatsAppChannel
        from bot.runtime import build_runtime
        from bot.server import create_app
        from bot.settings import get_settings

        path = f"{folder}/whatsapp_templates.yaml"
        with open(path, "w", encoding="utf-8") as handle:
            yaml.safe_dump(templates or {}, handle)
        values: dict[str, Any] = {
            "database_url": "sqlite://",
            "twilio_account_sid": fake.account_sid,
            "twilio_auth_token": fake.auth_token,
            "twilio_whatsapp_from": SANDBOX_FROM,
            "twilio_api_base_url": fake.base_url,
            "public_base_url": self.public_base_url,
            "whatsapp_templates_file": path,
            "send_timeout_seconds": 2.0,
            # the sender's tolerance matches this fake's: its burst over its rate
            "whatsapp_burst_seconds": fake.burst / fake.rate if fake.rate else 1.0,
            "staff_urns": {},
            "default_language": "en",
        }
        values.update(overrides)
        self.fake, self.engine, self.clock = fake, engine, clock
        self.settings = get_settings(**values)
        self.channel = WhatsAppChannel(settings=self.settings)
        self.runtime = build_runtime(
            self.settings,
            engine=engine,
            clock=clock,
            places=places,
            channels={"whatsapp": self.channel},
            with_scheduler=False,
        )
        self.channel.attach(self.runtime)
        self.server = AppServer(create_app(self.runtime))

    def __enter__(self) -> WhatsAppBot:
        """Serve the app and point the fake's webhooks at it."""
        self.server.__enter__()
        self.fake.deliver_to = self.server.base_url
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop the app."""
        self.server.__exit__(*exc)

    @property
    def inbound_url(self) -> str:
        """The public URL Twilio signs inbound messages for."""
        return self.public_base_url + "/whatsapp/inbound"

    def say(self, address: str, text: str = "", **fields: str) -> list[SentMessage]:
        """Send a signed inbound message as Twilio would; return the replies it produced."""
        from datetime import timedelta

        before = len(self.fake.sent_to(address))
        self.clock.advance(timedelta(seconds=1))
        status = self.fake.send_inbound(self.inbound_url, inbound_form(address, text, **fields))
        if status != 200:
            raise AssertionError(f"inbound answered {status}")
        self.settle(f"whatsapp:{address.removeprefix('whatsapp:')}")
        return self.fake.sent_to(address)[before:]

    def settle(self, urn: str, *, timeout: float = 20.0) -> None:
        """Wait until the URN's inbound events are processed and its messages left the outbox."""
        from storage import inbox, outbox
        from storage.db import session_scope

        def done() -> bool:
            """Whether nothing of the URN is waiting."""
            with session_scope(self.engine) as session:
                if inbox.pending_batch(session=session, urn=urn):
                    return False
                rows = outbox.messages_for(session=session, urn=urn)
                return all(
                    r.status != "sending"
                    and (r.status != "pending" or r.next_attempt_at > self.clock.now())
                    for r in rows
                )

        wait_until(done, timeout=timeout)

    def enqueue(
        self,
        address: str,
        text: str,
        *,
        kind: str = "reminder",
        language: str = "en",
        meta: dict[str, Any] | None = None,
    ) -> int:
        """Queue a proactive message to a contact, as a scheduler job would; return its id."""
        from handlers.messages import Outgoing
        from storage import contacts, outbox
        from storage.db import session_scope

        urn = f"whatsapp:{address.removeprefix('whatsapp:')}"
        with session_scope(self.engine) as session:
            contact = contacts.get_contact_by_urn(session=session, urn=urn)
            message_id = outbox.enqueue(
                session=session,
                idempotency_key=f"test:{new_sid('KE')}",
                urn=urn,
                channel="whatsapp",
                body=Outgoing(text=text, kind=kind, meta=meta or {}).to_body(),
                now=self.clock.now(),
                contact_id=contact.id if contact else None,
                kind=kind,
                language=language,
            )
        assert message_id is not None
        self.wake()
        return message_id

    def wake(self) -> None:
        """Wake the WhatsApp dispatcher loop now."""
        self.server.call(self.runtime.wake_dispatcher, "whatsapp")

    def row(self, message_id: int) -> Any:
        """An outbox row, read fresh."""
        from storage import outbox
        from storage.db import session_scope

        with session_scope(self.engine) as session:
            return outbox.get_message(session=session, message_id=message_id)

    def wait_row(self, message_id: int, predicate: Callable[[Any], bool]) -> Any:
        """Wait until an outbox row satisfies `predicate`; return it."""
        wait_until(lambda: predicate(self.row(message_id)))
        return self.row(message_id)

    def contact(self, address: str) -> Any:
        """The contact holding a WhatsApp address, read fresh."""
        from storage import contacts
        from storage.db import session_scope

        with session_scope(self.engine) as session:
            return contacts.get_contact_by_urn(
                session=session, urn=f"whatsapp:{address.removeprefix('whatsapp:')}"
            )
