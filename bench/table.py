"""Cleared's benchmark table (issue 23): every figure beside its target, at 100,000
deals and at the size asked for, so the growth reads off one table.

    make bench                          # 100,000 deals (database bench_100k)
    make bench DEALS=1000000            # 100,000 and 1,000,000 (bench_100k, bench_1m)
    python bench/table.py --deals 1000000 --reuse            # keep the seeded databases
    python bench/table.py --deals 1000000 --reuse --reuse-results 100k   # measure 1M only
    python bench/table.py --print                            # print the last table again

Each size is one PostgreSQL database seeded once by ``seed_scale`` (its time is
the first figure; kept in ``bench/results/seed-<database>.json``); ``--reuse``
keeps it, runs ``migrate`` and every command of ``run.BACKFILLS``. Then, per
size, in this order: the reminders engine (``bench/reminders_bench.py``: one
settling sweep, the minute's scan with nothing due, one hourly sweep, 200 deals
imported through the page until their reminders exist), the pages and the CSV
export (``run.bench_size``: gunicorn, 2 workers), and a day of 300 people
(``day.bench_day``). Every figure of a size is written to
``bench/results/<size>.json`` with the load average, so ``--print`` and
``--reuse-results`` need no new run. A figure that misses its target is
printed as MISS with what it spends its time on (``bench/explain.py``: the
plan of its slowest query, or a profile), measured right after it.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # noqa: E402
from run import PYTHON, ROOT, log  # noqa: E402

RESULTS = ROOT / "bench" / "results"
BASE = 100_000  # the column every run has: growth is read against it
PREFIX = os.environ.get("BENCH_DB_PREFIX", "bench")
MANAGER, CSV_GROWTH_MB = "scale_manager_1", 50


def label(deals: int) -> str:
    """100000 -> "100k", 1000000 -> "1m" (the results' and databases' names)."""
    if deals % 1_000_000 == 0:
        return f"{deals // 1_000_000}m"
    return f"{deals // 1000}k" if deals % 1000 == 0 else str(deals)


def inside(args: list[str]) -> str:
    """Run a Python process on the side (Django set up there, never here), its
    output passed on as it comes; its last line is returned."""
    process = subprocess.Popen(  # noqa: S603
        [PYTHON, *args], cwd=ROOT, stdout=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    last = ""
    for line in process.stdout:
        if line.strip():
            last = line.rstrip("\n")
            if not last.startswith("{"):
                log(f"    {last}")
    if process.wait() != 0:
        raise RuntimeError(f"{args[:2]} failed ({process.returncode})")
    return last


# bench/reminders_bench.py's own measurements, pointed at this size's database.
REMINDERS = """
import json, sys, time
sys.path.insert(0, "bench")
import reminders_bench as rb
rb.DB_URL = {url!r}
rb.setup_django()
import reminders_moments as moments
print(json.dumps({{
    **moments.measure_backfill(),
    **moments.measure_minute_scan(),
    **moments.measure_hour_of_scans(),
    **rb.measure_import(),
}}, default=str))
"""


def reminder_figures(db_url: str) -> dict:
    return json.loads(inside(["-c", REMINDERS.format(url=db_url)]))


def explain(*args: str) -> str:
    """bench/explain.py's answer; the same question asked twice in a run is answered once."""
    if args not in _explained:
        _explained[args] = _explain(*args)
    return _explained[args]


_explained: dict[tuple, str] = {}


def _explain(*args: str) -> str:
    process = subprocess.run(  # noqa: S603
        [PYTHON, "bench/explain.py", *args], cwd=ROOT, capture_output=True, text=True
    )
    return (process.stdout or process.stderr[-2000:]).strip()


@dataclass
class Figure:
    key: str
    name: str
    target: str
    # (what the column shows, whether the target is met) from a size's results.
    read: object
    # What it spends its time on: (results, database URL) -> text, or None.
    why: object = None


def _reminders(key: str, scale: float, unit: str, limit: float):
    def read(r):
        value = r["reminders"][key] * scale
        return f"{value:,.1f} {unit}" if value < 100 else f"{value:,.0f} {unit}", value <= limit

    return read


def _board(r):
    page, cached = r["pages"]["board, first page, uncached"], r["pages"]["board, first page"]
    median, queries = page["median_ms"], cached["queries"]
    return f"{median:,.0f} ms, {queries} q", median <= 150 and queries <= 12


def _ratio(r):
    # The page and its SQL timed in turns (bench/run.py, page_and_sql_paired); a
    # column measured before that was written has only the page's timing against a
    # replay made before the server started.
    page = r["pages"].get("board, first page, paired") or r["pages"]["board, first page"]
    value = page["median_ms"] / page["sql_ms"] if page["sql_ms"] else float("inf")
    return f"{value:.2f}× ({page['median_ms']:.0f}/{page['sql_ms']:.0f} ms)", value <= 1.5


def _day(r):
    day = r["day"]
    return f"p95 {day['all']['p95_ms']:,.0f} ms, {day['error_count']} err", (
        day["all"]["p95_ms"] < 300 and day["error_count"] == 0
    )


def _csv(r):
    csv = r["pages"]["csv export"]
    rate = csv["rows"] / csv["seconds"] if csv["seconds"] else 0
    growth = csv["worker_peak_rss_mb_after"] - csv["worker_peak_rss_mb_before"]
    return f"{rate:,.0f} rows/s, +{growth:.0f} MB", rate >= 30_000 and growth <= CSV_GROWTH_MB


def _seed(r):
    seed = r.get("seed") or {}
    if "seed_scale_seconds" not in seed:
        return "not recorded", True
    return f"{seed['seed_scale_seconds'] / 60:.1f} min", True


def _day_why(r, _url):
    day = r["day"]
    kinds = sorted(
        ((k, v) for k, v in day.items() if isinstance(v, dict) and "p95_ms" in v and k != "all"),
        key=lambda kv: -kv[1]["p95_ms"],
    )
    lines = [f"{k}: n={v['n']} median {v['median_ms']} ms p95 {v['p95_ms']} ms" for k, v in kinds]
    return "\n".join(lines + [f"errors: {day['errors'][:3]}"])


FIGURES = [
    Figure("seed", "seed_scale (deals, payments, audits, reminders, history)", "reported", _seed),
    Figure(
        "scan",
        "minute scan, nothing due",
        "≤ 100 ms",
        _reminders("minute_scan_ms_median", 1, "ms", 100),
        lambda r, url: explain("scan", url),
    ),
    Figure(
        "sweep",
        "hourly sweep (now: an hour of minute scans)",
        "≤ 5 s",
        _reminders("hour_of_scans_s", 1, "s", 5),
        # The hour is 60 minute scans: a profile of one (a sweep now wakes every deal).
        lambda r, url: explain("scan", url),
    ),
    Figure(
        "import",
        "200 imported deals → their reminders",
        "≤ 5 s",
        _reminders("import_200_check_ins_s", 1, "s", 5),
        lambda r, url: explain("evaluate", url),
    ),
    Figure(
        "board",
        "board first page, uncached (median, queries)",
        "≤ 150 ms, ≤ 12 q",
        _board,
        lambda r, url: explain("page", url, MANAGER, "/board/"),
    ),
    Figure(
        "ratio",
        "board page ÷ its own SQL run alone",
        "≤ 1.5×",
        _ratio,
        lambda r, url: explain("page", url, MANAGER, "/board/"),
    ),
    Figure("day", "a day of 300 people, 2 gunicorn workers", "p95 < 300 ms, 0 err", _day, _day_why),
    Figure(
        "csv",
        "CSV export of every unpaid deal",
        "≥ 30,000 rows/s, flat",
        _csv,
        lambda r, url: explain("page", url, MANAGER, "/board/export.csv"),
    ),
]


def commit() -> str:
    out = subprocess.run(  # noqa: S603
        ["git", "describe", "--always", "--dirty"],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def seeded(deals: int, reuse: bool) -> tuple[str, dict]:
    """The size's database (seeded now, or kept with --reuse) and its seed's record."""
    name = f"{PREFIX}_{label(deals)}"
    record = RESULTS / f"seed-{name}.json"
    started = time.monotonic()
    output = []
    url = run.prepare_database(name, deals, reuse, report=output)
    if output:  # seeded now: keep how long it took
        record.write_text(
            json.dumps(
                {
                    "deals": deals,
                    "seconds": round(time.monotonic() - started, 1),
                    "seed_scale": output[0],
                    "seed_scale_seconds": float(re.search(r" in ([0-9.]+) s", output[0])[1]),
                    "loadavg": os.getloadavg(),
                    "commit": commit(),
                },
                indent=2,
            )
        )
    return url, json.loads(record.read_text()) if record.exists() else {}


def measure(deals: int, args) -> dict:
    url, seed = seeded(deals, args.reuse)
    size = label(deals)
    log(f"[{size}] measuring on {url.rsplit('/', 1)[-1]} (load {_load()})")
    results = {"deals": deals, "commit": commit(), "seed": seed, "loadavg_start": os.getloadavg()}
    log(f"[{size}] reminders engine (bench/reminders_bench.py)")
    results["reminders"] = reminder_figures(url)
    log(f"[{size}] pages and CSV export (bench/run.py)")
    results["pages"] = run.bench_size(size, url, args.runs)
    log(f"[{size}] a day of {args.users} people (bench/day.py)")
    from day import bench_day

    results["day"] = bench_day(url, args.users, args.day_seconds)
    results["loadavg_end"] = os.getloadavg()
    results["why"] = {}
    for figure in FIGURES:
        shown, ok = figure.read(results)
        if not ok and figure.why is not None:
            log(f"[{size}] MISS {figure.name} ({shown}): explaining")
            results["why"][figure.key] = figure.why(results, url)
    return results


def _load(values=None) -> str:
    return " ".join(f"{v:.1f}" for v in (values or os.getloadavg()))


def table(columns: dict[str, dict]) -> str:
    """The one table: figure | target | one column per size | ok/MISS, then the misses' why."""
    sizes = list(columns)
    rows = [["figure", "target", *(s.upper() for s in sizes), "ok/MISS"]]
    whys = []
    for figure in FIGURES:
        cells, missed = [], []
        for size in sizes:
            try:
                shown, ok = figure.read(columns[size])
            except (KeyError, TypeError, ZeroDivisionError) as error:
                shown, ok = f"not measured ({error})", False
            cells.append(shown)
            if not ok:
                missed.append(size.upper())
                why = columns[size].get("why", {}).get(figure.key)
                if why:
                    whys.append(f"MISS {figure.name} at {size.upper()}:\n{why}")
        verdict = "ok" if not missed else "MISS " + ", ".join(missed)
        rows.append([figure.name, figure.target, *cells, verdict])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "Load average (1, 5, 15 min) now "
        + _load()
        + "; during each size: "
        + "; ".join(
            f"{s.upper()} {_load(c.get('loadavg_start'))} → {_load(c.get('loadavg_end'))} "
            f"(commit {c.get('commit', '?')})"
            for s, c in columns.items()
        )
    ]
    for index, row in enumerate(rows):
        lines.append(" | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if index == 0:
            lines.append("-+-".join("-" * width for width in widths))
    return "\n".join(lines + [""] + whys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deals", type=int, default=BASE, help="the large size (default 100k)")
    parser.add_argument("--base", type=int, default=BASE, help="the small size (default 100k)")
    parser.add_argument("--reuse", action="store_true", help="keep databases already seeded")
    parser.add_argument(
        "--reuse-results",
        action="append",
        default=[],
        metavar="SIZE",
        help="take this size's column from bench/results/SIZE.json (e.g. 100k)",
    )
    parser.add_argument("--print", action="store_true", help="print the last table again")
    parser.add_argument("--runs", type=int, default=30, help="requests per page timing")
    parser.add_argument("--users", type=int, default=300, help="people signed in for the day")
    parser.add_argument("--day-seconds", type=float, default=60)
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    sizes = sorted({args.base, args.deals})
    columns = {}
    for deals in sizes:
        size = label(deals)
        path = RESULTS / f"{size}.json"
        if args.print or size in args.reuse_results:
            if path.exists():
                columns[size] = json.loads(path.read_text())
            continue
        log(f"Cleared benchmark at {deals:,} deals (load {_load()})")
        columns[size] = measure(deals, args)
        path.write_text(json.dumps(columns[size], indent=2, default=str))
        log(f"  figures written to {path}")
    printed = table(columns)
    (RESULTS / "table.txt").write_text(printed + "\n")
    log("")
    log(printed)


if __name__ == "__main__":
    main()
