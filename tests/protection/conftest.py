"""Fixtures shared by the protection tests: a real webhook receiver and the alert channels pointed at it."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.providers.conftest import breakers, folder_provider  # noqa: F401 (the breaker tests' fixtures, reused)


@pytest.fixture
def webhook():
    """A real HTTP server that records the JSON it is sent; ``fail`` makes it answer 500."""
    got: list[dict] = []
    state = {"fail": False}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if state["fail"]:
                self.send_response(500)
            else:
                got.append(json.loads(body))
                self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook", got, state
    server.shutdown()


@pytest.fixture
def channels(settings, webhook):
    url, got, state = webhook
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.WEDBACKUP_ALERT_EMAILS = ["ops@example.com"]
    settings.WEDBACKUP_ALERT_WEBHOOK_URL = url
    settings.WEDBACKUP_ALERT_REPEAT_MINUTES = 60
    return got, state
