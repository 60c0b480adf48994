"""The Server header does not name the software: checked on a real gunicorn.

A middleware cannot remove a header the WSGI server adds itself, so this
starts gunicorn as production does (config/gunicorn.conf.py) and reads what
it actually sends. The development server (runserver, `make run`) still
names itself; it is not for production (README, "Settings").
"""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from django.conf import settings

BASE_DIR = Path(settings.BASE_DIR)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return urllib.request.urlopen(url, timeout=2)  # noqa: S310 - loopback
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_gunicorn_as_configured_for_production_does_not_name_itself():
    port = _free_port()
    gunicorn = Path(sys.executable).with_name("gunicorn")
    server = subprocess.Popen(
        [str(gunicorn), "-c", "config/gunicorn.conf.py", "config.wsgi:application"]
        + ["--bind", f"127.0.0.1:{port}", "--workers", "1"],
        cwd=BASE_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # The login page needs neither the database nor Redis.
        response = _get(f"http://127.0.0.1:{port}/accounts/login/")
        assert response.status == 200
        servers = response.headers.get_all("Server")
        assert servers == ["cleared"]
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    finally:
        server.terminate()
        server.wait(10)
