"""The API's deal list at scale: p95 round trip and queries (issue 22's target).

    python bench/api_bench.py                      # 100,000 deals on PostgreSQL
    python bench/api_bench.py --deals 10000 --reuse

Seeds (or reuses, with --reuse) a PostgreSQL database with ``seed_scale`` as
bench/run.py does (one team of 50 reps: the manager's list reaches every deal),
makes API tokens for the manager and a rep, starts gunicorn on loopback and
prints the median and p95 of GET /api/v1/deals (first page, a deep keyset page,
filtered, a rep's own) with the SQL queries each costs (counted in-process).
Target: p95 < 150 ms and <= 8 queries at 100,000 deals. Nothing is asserted.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as bench  # noqa: E402 - bench/run.py: seeding, gunicorn, timings

TARGET_P95_MS = 150
TARGET_QUERIES = 8
MANAGER, REP = "scale_manager_1", "scale_rep_1_1"

MAKE_TOKENS = (
    "import json; from django.contrib.auth import get_user_model; "
    "from api.services import api_token_create; U = get_user_model(); "
    "print(json.dumps({n: api_token_create(user=U.objects.get(username=n), name='bench', "
    "scope='read', verified=True).secret for n in %r}))"
)

COUNT_QUERIES = (
    "import json; from django.test import Client; "
    "from django.test.utils import CaptureQueriesContext; from django.db import connection\n"
    "tokens, pages, out = %s, %s, {}\n"
    "c = Client()\n"
    "for name, (user, path) in pages.items():\n"
    "    h = {'Authorization': 'Bearer ' + tokens[user]}\n"
    "    c.get(path, headers=h)\n"
    "    with CaptureQueriesContext(connection) as ctx:\n"
    "        r = c.get(path, headers=h)\n"
    "    assert r.status_code == 200, (path, r.status_code, r.content[:200])\n"
    "    out[name] = len(ctx.captured_queries)\n"
    "print(json.dumps(out))"
)

DEEP_CURSOR = (
    "from dashboards.board import BoardFilters, sort_deals, encode_cursor; "
    "from pipeline.models import Deal; from django.contrib.auth import get_user_model; "
    "u = get_user_model().objects.get(username=%r); "
    "q = sort_deals(Deal.objects.visible_to(u), BoardFilters()); "
    "d = q.values_list('promised_at', 'pk')[q.count() // 2]; "
    "print(encode_cursor(d[0], d[1]))"
)


def timings(url: str, token: str, runs: int) -> dict:
    """Median and p95 of ``runs`` GETs with the token, after a warm-up."""
    import statistics
    import urllib.request

    def once() -> float:
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=120) as response:
            response.read()
            if response.status != 200:
                raise RuntimeError(f"{url} answered {response.status}")
        return (time.perf_counter() - started) * 1000

    once()
    samples = sorted(once() for _ in range(runs))
    return {
        "median_ms": round(statistics.median(samples), 1),
        "p95_ms": round(samples[max(0, int(len(samples) * 0.95) - 1)], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--db", default="cleared_api_bench", help="PostgreSQL database name")
    parser.add_argument("--reuse", action="store_true", help="keep a database already seeded")
    args = parser.parse_args()

    bench.log(f"Seeding {args.deals:,} deals into {args.db} …")
    db_url = bench.prepare_database(args.db, args.deals, args.reuse)
    tokens = json.loads(
        bench.manage(db_url, "shell", "-c", MAKE_TOKENS % [MANAGER, REP]).stdout.splitlines()[-1]
    )
    cursor = bench.manage(db_url, "shell", "-c", DEEP_CURSOR % MANAGER).stdout.splitlines()[-1]
    pages = {
        "manager, first page (50)": (MANAGER, "/api/v1/deals?limit=50"),
        "manager, deep keyset page": (MANAGER, f"/api/v1/deals?limit=50&cursor={cursor}"),
        "manager, filtered": (
            MANAGER,
            "/api/v1/deals?stage=delivered&bucket=31-60&sort=-outstanding&limit=50",
        ),
        "manager, not paid, by next reminder": (
            MANAGER,
            "/api/v1/deals?not_paid=true&sort=next_reminder&limit=50",
        ),
        "rep, own deals": (REP, "/api/v1/deals?limit=50"),
    }
    counts = json.loads(
        bench.manage(
            db_url, "shell", "-c", COUNT_QUERIES % (json.dumps(tokens), json.dumps(pages))
        ).stdout.splitlines()[-1]
    )
    os.environ["CLEARED_API_RATE"] = "1000000"  # the bench is one token's burst
    results = {}
    with bench.gunicorn(db_url) as (base, _process):
        for name, (user, path) in pages.items():
            results[name] = {
                **timings(base + path, tokens[user], args.runs),
                "queries": counts[name],
            }
    bench.log(f"\nAPI deal list at {args.deals:,} deals ({args.runs} runs, loopback, 2 workers)")
    bench.log(f"{'page':40} {'median':>9} {'p95':>9} {'queries':>8}  target")
    for name, figures in results.items():
        ok = figures["p95_ms"] < TARGET_P95_MS and figures["queries"] <= TARGET_QUERIES
        bench.log(
            f"{name:40} {figures['median_ms']:>7} ms {figures['p95_ms']:>6} ms "
            f"{figures['queries']:>8}  p95 < {TARGET_P95_MS} ms, <= {TARGET_QUERIES} "
            f"queries: {'met' if ok else 'MISSED'}"
        )
    print(json.dumps({"deals": args.deals, "api_deal_list": results}))


if __name__ == "__main__":
    main()
