"""Tests that run on the real clock (a live server and a browser) but are about
"today": give the user a time zone where it is midday now, so that a few hours
either side of now are still today, whatever the hour the suite runs at."""

import datetime


def zone_at_midday(now: datetime.datetime) -> str:
    """An IANA zone (Etc/GMT±N) whose local time is 11:30-12:30 at ``now``."""
    utc = now.astimezone(datetime.UTC)
    offset = 12 - utc.hour - (1 if utc.minute >= 30 else 0)  # -12 ... +12 hours
    offset = max(-11, min(offset, 12))  # Etc/GMT+11 ... Etc/GMT-12 exist
    # POSIX signs: Etc/GMT-5 is five hours ahead of UTC.
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"
