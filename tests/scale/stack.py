"""A production-shaped stack of real processes for one test (tests/scale/).

What docker-compose.yml runs, scaled out: two web processes (gunicorn as
production starts it, config/gunicorn.conf.py, each on a port of its own), two
``worker`` replicas (default queue, prefork), the ``heartbeat`` worker, the
``webhooks`` worker and ``beat``, all on one PostgreSQL database and one
Redis. Each process leads a process group of its own (``start_new_session``):
a SIGKILL takes its pool children with it, and the teardown kills every group.
"""

import contextlib
import http.cookiejar
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tests.reminders.test_worker import BASE_DIR, _wait
from tests.smtp import free_port


class Stack:
    """Processes started for one test, their logs in ``tmp_path``."""

    def __init__(self, tmp_path: Path, env: dict[str, str]):
        self.tmp_path = tmp_path
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "CLEARED_VAR_DIR": str(tmp_path / "var"),
            **env,
        }
        self.processes: dict[str, subprocess.Popen] = {}
        (tmp_path / "var").mkdir(exist_ok=True)

    def _start(self, name: str, command: list[str], **env: str) -> subprocess.Popen:
        log = (self.tmp_path / f"{name}.log").open("ab")
        process = subprocess.Popen(
            command,
            cwd=BASE_DIR,
            env={**self.env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes[name] = process
        return process

    def web(self, name: str, **env: str) -> str:
        """A gunicorn as docker-compose's ``web`` runs it (1 worker here); its base URL."""
        port = free_port()
        self._start(
            name,
            [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py",
             "config.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
            **env,
        )  # fmt: skip
        return f"http://127.0.0.1:{port}"

    def worker(self, name: str, *queues: str) -> None:
        """``celery worker`` as docker-compose's services start it (prefork, 1 child)."""
        command = [sys.executable, "-m", "celery", "-A", "config", "worker", "--loglevel=INFO",
                   "--concurrency=1", f"--hostname={name}@%h", "--without-mingle",
                   "--without-gossip"]  # fmt: skip
        if queues:
            command.append(f"--queues={','.join(queues)}")
        self._start(name, command)

    def beat(self) -> None:
        self._start(
            "beat",
            [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel=INFO",
             f"--schedule={self.tmp_path / 'var' / 'beat-schedule'}"],
        )  # fmt: skip

    def wait_ready(self, webs: list[str]) -> None:
        """Every worker says ready, beat started, every web answers /healthz."""
        for name in self.processes:
            if name == "beat":
                _wait(lambda: "beat: Starting" in self.log("beat"), 60, "beat to start")
            elif not name.startswith("web"):
                _wait(lambda n=name: " ready." in self.log(n), 60, f"worker {name} to be ready")
        for base in webs:
            _wait(lambda b=base: _answers(b + "/healthz"), 60, f"{base} to answer /healthz")
        self.assert_alive()

    def assert_alive(self, *, but: str | None = None) -> None:
        for name, process in self.processes.items():
            if name != but and process.poll() is not None:
                tail = self.log(name)[-3000:]
                raise AssertionError(f"{name} exited ({process.returncode}):\n{tail}")

    def log(self, name: str) -> str:
        path = self.tmp_path / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def kill(self, name: str) -> None:
        """SIGKILL a process and its children (its process group): no clean-up runs."""
        process = self.processes[name]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)

    def group_of_socket(self, port: int) -> str:
        """The name of the process (group) whose TCP socket has local ``port`` (from /proc)."""
        inodes = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with contextlib.suppress(FileNotFoundError):
                for line in Path(table).read_text().splitlines()[1:]:
                    fields = line.split()
                    if int(fields[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(f"socket:[{fields[9]}]")
        groups = {process.pid: name for name, process in self.processes.items()}
        for pid in filter(str.isdigit, os.listdir("/proc")):
            with contextlib.suppress(OSError):
                if os.getpgid(int(pid)) not in groups:
                    continue
                for fd in os.listdir(f"/proc/{pid}/fd"):
                    with contextlib.suppress(OSError):
                        if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                            return groups[os.getpgid(int(pid))]
        raise AssertionError(f"No process of the stack has a socket on port {port}.")

    def stop_all(self) -> None:
        """SIGTERM each leader (a warm shutdown: it stops its own children), then
        SIGKILL whatever is left of every group."""
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + 15
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
            return response.status == 200
    except OSError:
        return False


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    """One person's browser on one web process: cookies, CSRF, forms posted as a browser does."""

    def __init__(self, base: str):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect
        )

    def _csrf(self) -> str:
        return next((c.value for c in self.jar if c.name == "csrftoken"), "")

    def request(self, path: str, data: dict | None = None) -> tuple[int, str]:
        headers = {}
        body = None
        if data is not None:
            headers = {"X-CSRFToken": self._csrf(), "Referer": self.base + path}
            body = urllib.parse.urlencode(data).encode()
        request = urllib.request.Request(self.base + path, data=body, headers=headers)  # noqa: S310
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:  # a redirect (not followed), 4xx, 5xx
            return error.code, error.read().decode(errors="replace")

    def post(self, path: str, data: dict) -> None:
        """A form posted; the app answers a redirect (303/302) when it took it."""
        status, page = self.request(path, data)
        if status not in (302, 303):
            errors = re.findall(r'class="[^"]*error[^"]*"[^>]*>([^<]+)', page)
            why = errors or page[:500]
            raise AssertionError(f"POST {self.base}{path} answered {status}: {why}")

    def log_in(self, username: str, password: str) -> None:
        self.request("/accounts/login/")  # the CSRF cookie
        self.post("/accounts/login/", {"username": username, "password": password})
        status, _ = self.request("/")
        assert status == 200, f"{username} is not signed in on {self.base} ({status})"
