"""`make bench`'s paying-online figure: a processor event to the rep's dashboard (issue 21).

    python bench/processor_run.py [-n 20]

Starts the whole app as `make run` does (web, workers, beat and the patched
localstripe whose webhooks reach the app) on free ports, on a SQLite database
and broker of its own under var/bench/processor/ (nothing of a developer's
`make run` is touched), waits for /healthz and the worker, runs
bench/processor_bench.py against it, prints its figure, and stops everything.
"""

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "bench" / "processor"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=5):  # noqa: S310 - local
            return True
    except OSError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=20, help="payments to time")
    parser.add_argument("--wait", type=float, default=300.0, help="seconds for the app to start")
    args = parser.parse_args()

    shutil.rmtree(VAR, ignore_errors=True)
    VAR.mkdir(parents=True)
    port, stripe_port = _free_port(), _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        # STRIPE_API_BASE too: under `make bench` the Makefile has exported the
        # default localstripe's address (port 8420), and `make run` would keep it
        # rather than point the app at the localstripe it starts on STRIPE_PORT
        # (the pay page then answered 503: no processor there).
        if key
        not in (
            "DATABASE_URL",
            "CELERY_BROKER_URL",
            "CACHE_URL",
            "STRIPE_SECRET_KEY",
            "STRIPE_API_BASE",
        )
    }
    env |= {
        "PORT": str(port),
        "STRIPE_PORT": str(stripe_port),
        "CLEARED_VAR_DIR": str(VAR),
        "DATABASE_URL": f"sqlite:///{VAR / 'db.sqlite3'}",
        # Every "customer" of the bench comes from one address.
        "CLEARED_LINK_RATE_LIMIT": "100000",
    }
    log = (VAR / "run.log").open("w")
    app = subprocess.Popen(  # noqa: S603
        ["make", "--no-print-directory", "run"],  # noqa: S607
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + args.wait
        while not (_healthy(url) and "ready" in (VAR / "run.log").read_text(errors="replace")):
            if app.poll() is not None or time.monotonic() > deadline:
                print(f"The app did not start (see {VAR / 'run.log'}).")
                return 1
            time.sleep(1)
        bench = subprocess.run(  # noqa: S603
            [sys.executable, "bench/processor_bench.py", "--url", url,
             "--stripe", f"http://127.0.0.1:{stripe_port}", "-n", str(args.n)],
            cwd=ROOT, env=env, capture_output=True, text=True,
        )  # fmt: skip
        print((bench.stdout + bench.stderr).strip().splitlines()[-1] if bench.stdout else "")
        if bench.returncode:
            print(bench.stderr[-2000:])
        return bench.returncode
    finally:
        os.killpg(app.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            app.wait(timeout=20)
        # The workers make started can outlive make itself (a warm shutdown, or
        # a signal they missed): wait for the whole group, then kill what is left.
        deadline = time.monotonic() + 15
        while _group_alive(app.pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        if _group_alive(app.pid):
            os.killpg(app.pid, signal.SIGKILL)
        log.close()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
