"""A realistic day on the 100,000-deal database: many people signed in at once.

    python bench/day.py --reuse          # after `make bench` built the databases
    python bench/day.py --users 300 --seconds 60
    DATABASE_POOL=on python bench/day.py --reuse --db bench_scale23_large

300 signed-in people (by default) share 2 gunicorn workers. Each has the home
page open, whose reminders panel polls every 15 s; opens a page every 30 s
(home, deals list, one of their deals, customers; the manager's people the
board); and writes every 2 minutes (a touch, a payment or a stage move, each
through the same form a browser posts, CSRF included). Everyone opens their
home during a one-minute warm-up (timed, but apart), then the measured minute
starts with each person at a random moment of each cycle, as a real working
day has it. It prints the median, p95 and p99 of each kind of request and of
all of them, with the
errors (5xx, refused connections, time-outs) and refusals (4xx); the target is
p95 under 300 ms with no errors. Nothing here is asserted in the tests.
"""

import argparse
import html.parser
import os
import random
import re
import statistics
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import OPENER, gunicorn, log, prepare_database, sessions_for  # noqa: E402

POLL_EVERY, PAGE_EVERY, WRITE_EVERY = 15.0, 30.0, 120.0
WARM_UP = 60.0  # people open their homes before the measured minute


class Forms(html.parser.HTMLParser):
    """The forms of a page: action -> list of (field name, value, choices)."""

    def __init__(self):
        super().__init__()
        self.forms: dict[str, list[tuple[str, str, list[str]]]] = {}
        self._action = None
        self._select = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self._action = attrs.get("action") or ""
            self.forms.setdefault(self._action, [])
        elif self._action is not None and tag in ("input", "textarea") and attrs.get("name"):
            self.forms[self._action].append((attrs["name"], attrs.get("value") or "", []))
        elif self._action is not None and tag == "select" and attrs.get("name"):
            self._select = (attrs["name"], [])
            self.forms[self._action].append((self._select[0], "", self._select[1]))
        elif self._select is not None and tag == "option" and attrs.get("value"):
            self._select[1].append(attrs["value"])

    def handle_endtag(self, tag):
        if tag == "form":
            self._action = None
        elif tag == "select":
            self._select = None


def deals_by_rep(db_url: str, reps: list[str], per_rep: int = 20) -> dict[str, list[int]]:
    import psycopg

    found: dict[str, list[int]] = {}
    with psycopg.connect(db_url, autocommit=True) as connection:
        for rep in reps:
            found[rep] = [
                row[0]
                for row in connection.execute(
                    "SELECT d.id FROM pipeline_deal d JOIN pipeline_user u ON u.id = d.rep_id "
                    "WHERE u.username = %s AND d.stage NOT IN ('payment_cleared', 'lost', "
                    "'written_off') ORDER BY d.id DESC LIMIT %s",
                    [rep, per_rep],
                )
            ]
    return found


class Person:
    """One signed-in browser: its cookies, its pages, its deals."""

    def __init__(self, base: str, session: str, username: str, deals: list[int], board: bool):
        self.base, self.username, self.deals, self.board = base, username, deals, board
        self.cookies = {"sessionid": session}
        self.poll = None

    def request(self, path: str, data: dict | None = None, htmx: bool = False):
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if htmx:
            headers["HX-Request"] = "true"
        body = None
        if data is not None:
            headers["X-CSRFToken"] = self.cookies.get("csrftoken", "")
            headers["Referer"] = self.base + "/"
            body = urllib.parse.urlencode(data, doseq=True).encode()
        request = urllib.request.Request(self.base + path, data=body, headers=headers)  # noqa: S310
        started = time.perf_counter()
        try:
            response = OPENER.open(request, timeout=30)
            status, text = response.status, response.read()
            set_cookies = response.headers.get_all("Set-Cookie") or []
        except urllib.error.HTTPError as error:  # 3xx (not followed), 4xx, 5xx
            status, text = error.code, error.read()
            set_cookies = error.headers.get_all("Set-Cookie") or []
        elapsed = (time.perf_counter() - started) * 1000
        for header in set_cookies:
            name, _, value = header.split(";")[0].partition("=")
            self.cookies[name] = value
        return elapsed, status, text.decode("utf-8", "replace")

    def open_home(self):
        elapsed, status, page = self.request("/")
        found = re.search(r'hx-get="(/reminders/panel/[^"]*)"', page)
        if found:
            self.poll = found.group(1).replace("&amp;", "&")
        return elapsed, status

    def poll_panel(self):
        elapsed, status, page = self.request(self.poll or "/reminders/panel/", htmx=True)
        found = re.search(r'hx-get="(/reminders/panel/[^"]*)"', page)
        if found:
            self.poll = found.group(1).replace("&amp;", "&")
        return elapsed, status

    def open_page(self, turn: int):
        pages = ["/", "/deals/", "/customers/"]
        if self.deals:
            pages.append(f"/deals/{random.choice(self.deals)}/")
        if self.board:
            pages = ["/board/", "/board/?sort=-outstanding", *pages]
        return self.request(pages[turn % len(pages)])[:2]

    def write(self, turn: int):
        """A touch, a payment or a move on one of the person's deals, posted as a browser does."""
        if not self.deals:
            return self.request("/")[:2]
        deal = random.choice(self.deals)
        _, _, page = self.request(f"/deals/{deal}/")
        parser = Forms()
        parser.feed(page)
        kind = ("touches", "payments/new", "move")[turn % 3]
        action = next((a for a in parser.forms if a.rstrip("/").endswith(kind)), None)
        if action is None:  # nothing of that kind is offered on this deal: a touch instead
            action = next(a for a in parser.forms if a.rstrip("/").endswith("touches"))
        tomorrow = (date.today() + timedelta(days=1)).isoformat()
        values = {
            "discussed": "Checked the delivery date with them.",
            "agreed_to": "A call on Friday.",
            "next_step": "Call on Friday",
            "next_step_date": tomorrow,
            "amount": "10.00",
            "reason": "Moving on.",
            "reference": f"bench-{random.randrange(10**9)}",
        }
        data = {}
        for name, value, choices in parser.forms[action]:
            short = name.split("-")[-1]
            if short in values:
                data[name] = values[short]
            elif choices:
                data[name] = value or choices[0]
            elif value:
                data[name] = value
        return self.request(action, data=data)[:2]


def run_day(base: str, people: list[Person], seconds: float) -> dict:
    samples: dict[str, list[float]] = defaultdict(list)
    statuses: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    errors: list[str] = []
    lock = threading.Lock()
    started = time.monotonic() + WARM_UP
    stop = started + seconds

    def record(kind: str, call):
        try:
            elapsed, status = call()
        except Exception as error:  # a refused connection or a time-out is an error
            with lock:
                errors.append(f"{kind}: {error!r}")
            return
        with lock:
            samples[kind].append(elapsed)
            statuses[kind][status] += 1
            if status >= 500:
                errors.append(f"{kind}: HTTP {status}")

    def live(person: Person):
        # Everyone already has the home page open when the measured minute
        # starts: they opened it during the warm-up, at random moments.
        time.sleep(random.uniform(0, WARM_UP))
        record("home (first load, warm-up)", person.open_home)
        time.sleep(max(0.0, started - time.monotonic()))
        start = time.monotonic()
        due = {
            "poll": start + random.uniform(0, POLL_EVERY),
            "page": start + random.uniform(0, PAGE_EVERY),
            "write": start + random.uniform(0, WRITE_EVERY),
        }
        turns = defaultdict(int)
        while True:
            kind, when = min(due.items(), key=lambda item: item[1])
            if when >= stop:
                return
            time.sleep(max(0.0, when - time.monotonic()))
            turn = turns[kind] = turns[kind] + 1
            if kind == "poll":
                record("panel poll", person.poll_panel)
                due["poll"] += POLL_EVERY
            elif kind == "page":
                record("page", lambda turn=turn: person.open_page(turn))
                due["page"] += PAGE_EVERY
            else:
                record("write", lambda turn=turn: person.write(turn))
                due["write"] += WRITE_EVERY

    threads = [threading.Thread(target=live, args=(p,), daemon=True) for p in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=WARM_UP + seconds + 120)
    everything = sorted(
        x for kind, values in samples.items() if "warm-up" not in kind for x in values
    )
    figures = {kind: summary(values) for kind, values in sorted(samples.items())}
    figures["all"] = summary(everything)
    figures["all"]["per_s"] = round(len(everything) / seconds, 1)
    figures["statuses"] = {kind: dict(counts) for kind, counts in statuses.items()}
    figures["errors"] = errors[:20]
    figures["error_count"] = len(errors)
    return figures


def summary(values: list[float]) -> dict:
    values = sorted(values)
    if not values:
        return {"n": 0}

    def pct(p: float) -> float:
        return round(values[min(len(values) - 1, int(len(values) * p))], 1)

    return {
        "n": len(values),
        "median_ms": round(statistics.median(values), 1),
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
    }


def bench_day(db_url: str, users: int, seconds: float) -> dict:
    """``users`` signed-in people on the 50-rep team of ``seed_scale``: a few are the
    manager (on the board), the rest the reps, several sessions each (phone and laptop)."""
    manager = "scale_manager_1"
    reps = [f"scale_rep_1_{i}" for i in range(1, 51)]
    managers = max(1, users // 50)
    usernames = [manager] * managers + [reps[i % len(reps)] for i in range(users - managers)]
    sessions = sessions_for(db_url, usernames)
    deals = deals_by_rep(db_url, reps)
    with gunicorn(db_url) as (base, _process):
        people = [
            Person(base, session, name, deals.get(name, []), board=name == manager)
            for session, name in zip(sessions, usernames, strict=True)
        ]
        log(
            f"  a day: {users} people signed in, {WARM_UP:.0f} s warm-up, {seconds:.0f} s "
            "measured, 2 gunicorn workers (4 threads each, config/gunicorn.conf.py)"
        )
        figures = run_day(base, people, seconds)
    for kind, values in figures.items():
        if isinstance(values, dict) and "median_ms" in values:
            log(
                f"  [day] {kind:20} n={values['n']:5d}   median {values['median_ms']:7.1f} ms   "
                f"p95 {values['p95_ms']:7.1f} ms   p99 {values['p99_ms']:7.1f} ms"
            )
    log(f"  [day] {figures['all']['per_s']} requests/s; statuses {figures['statuses']}")
    log(f"  [day] errors: {figures['error_count']} {figures['errors'][:5]}")
    ok = figures["all"]["p95_ms"] < 300 and figures["error_count"] == 0
    log(
        f"  {'PASS' if ok else 'MISS'}  a day of {users} people: p95 < 300 ms, no errors"
        f"{'':10} p95 {figures['all']['p95_ms']} ms, {figures['error_count']} errors"
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--reuse", action="store_true", help="keep a database already seeded")
    parser.add_argument("--db", default="cleared_bench_large", help="the database's name")
    args = parser.parse_args()
    # The server's settings come from this environment (DATABASE_POOL=on|off).
    pool = os.environ.get("DATABASE_POOL", "default")
    log(f"Cleared, a realistic day on PostgreSQL: {args.deals:,} deals, DATABASE_POOL={pool}")
    url = prepare_database(args.db, args.deals, args.reuse)
    bench_day(url, args.users, args.seconds)


if __name__ == "__main__":
    main()
