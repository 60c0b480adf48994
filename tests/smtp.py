"""A real SMTP server for the tests (aiosmtpd), on a free port of this machine.

The app sends through Django's SMTP backend to it (``settings.MAILERS``),
and the tests read what it received: headers, the text and HTML parts, the
attachments. It can refuse an address for good (``bouncing``: 550 on RCPT),
answer "try later" (``busy``: 451 on RCPT), or hold each message for a while
at RCPT (``hold_seconds``; only those to ``hold_to`` when set) so a test can
kill a sender mid-send; ``held_from`` names the sender's (host, port) of each
held RCPT, so a test can tell which process is sending.
"""

import asyncio
import email
import socket
import threading
from email.message import EmailMessage
from email.policy import default

import pytest
from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SmtpServer:
    def __init__(self):
        self.port = free_port()
        self.messages: list[EmailMessage] = []
        self.bouncing: set[str] = set()
        self.busy = False
        self.hold_seconds = 0.0
        self.hold_to: str | None = None
        self.held_from: list[tuple[str, int]] = []
        self.rcpt_attempts = 0
        self._lock = threading.Lock()
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()

    @property
    def mailers(self) -> dict:
        """The MAILERS setting that sends here."""
        return {
            "default": {
                "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                "OPTIONS": {"host": "127.0.0.1", "port": self.port, "timeout": 10},
            }
        }

    def env(self) -> dict[str, str]:
        """The environment that points a worker process's settings here."""
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(self.port),
            "EMAIL_TIMEOUT": "10",
        }

    def received(self, to: str | None = None) -> list[EmailMessage]:
        with self._lock:
            messages = list(self.messages)
        return [m for m in messages if to is None or to in m["To"]]

    def _add(self, message: EmailMessage) -> None:
        with self._lock:
            self.messages.append(message)


class _Handler:
    def __init__(self, server: SmtpServer):
        self.server = server

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.server.rcpt_attempts += 1
        if self.server.hold_seconds and self.server.hold_to in (None, address):
            self.server.held_from.append(session.peer)
            await asyncio.sleep(self.server.hold_seconds)
        if address in self.server.bouncing:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if self.server.busy:
            return "451 4.3.2 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.server._add(email.message_from_bytes(envelope.content, policy=default))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server(settings):
    """A running SMTP server, with the app's MAILERS pointed at it."""
    server = SmtpServer()
    server.start()
    settings.MAILERS = server.mailers
    yield server
    server.stop()


def parts(message: EmailMessage) -> dict:
    """The text, the HTML and the attachments (name -> bytes) of a received message."""
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    attachments = {
        part.get_filename(): part.get_payload(decode=True) for part in message.iter_attachments()
    }
    return {
        "text": text.get_content() if text else "",
        "html": html.get_content() if html else "",
        "attachments": attachments,
    }
