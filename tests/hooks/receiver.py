"""A real HTTP receiver for webhooks: a small http.server on a free port of
127.0.0.1, in a thread, verifying each delivery with the standardwebhooks library."""

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


class Receiver:
    """Records what it is sent; answers ``statuses`` in turn (then 200), after ``delay``."""

    def __init__(self, secret: str | None = None):
        self.secret = secret
        self.received: list[dict] = []
        self.statuses: list[int] = []
        self.delay = 0.0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                verified = None
                if receiver.secret:
                    try:
                        Webhook(receiver.secret).verify(body, headers)
                        verified = True
                    except WebhookVerificationError:
                        verified = False
                with receiver.lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.received.append(
                        {
                            "id": headers.get("webhook-id"),
                            "headers": headers,
                            "body": body.decode(),
                            "verified": verified,
                            "status": status,
                        }
                    )
                if receiver.delay:
                    time.sleep(receiver.delay)
                self.send_response(status)
                self.send_header("content-type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else b"nope")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def start(self) -> "Receiver":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def ok(self) -> list[dict]:
        """Deliveries answered 2xx, their JSON decoded."""
        with self.lock:
            return [dict(r, json=json.loads(r["body"])) for r in self.received if r["status"] < 300]

    def types(self) -> list[str]:
        return [r["json"]["type"] for r in self.ok()]

    def ids(self) -> Counter:
        with self.lock:
            return Counter(r["id"] for r in self.received if r["status"] < 300)
