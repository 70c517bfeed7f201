"""Durations as users write them ("90s", "10m", "1h30m") and as kagglekit prints them."""
from __future__ import annotations

import math
import re

from .errors import PlanError

_UNIT_S = {"s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1, "m": 60, "min": 60, "mins": 60, "minute": 60,
           "minutes": 60, "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600, "d": 86400, "day": 86400,
           "days": 86400}
_PART = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)\s*")


def parse_duration(value: str | float | int) -> float:
    """Return the seconds in `value`: a number of seconds, "90s", "10m", "1h", "1h30m", "1.5h" or "HH:MM:SS".

    Raises PlanError for anything else, or for a duration that is not positive.
    """
    fix = "write it as e.g. '90s', '10m', '1h30m', '1:30:00' or a number of seconds"
    if isinstance(value, bool) or value is None:
        raise PlanError(f"time budget {value!r} is not a duration; {fix}.")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip().lower()
        if re.fullmatch(r"\d+(?::\d{1,2}){1,2}", text):  # M:SS or H:MM:SS
            parts = [int(p) for p in text.split(":")]
            seconds = float(sum(p * 60 ** i for i, p in enumerate(reversed(parts))))
        else:
            seconds, pos = 0.0, 0
            while pos < len(text):
                m = _PART.match(text, pos)
                if not m or m.end() == pos or (m.group(2) and m.group(2) not in _UNIT_S):
                    raise PlanError(f"time budget {value!r} is not a duration; {fix}.")
                if not m.group(2) and (pos > 0 or m.end() < len(text)):  # a bare number must be the whole text
                    raise PlanError(f"time budget {value!r} is not a duration; {fix}.")
                seconds += float(m.group(1)) * _UNIT_S[m.group(2) or "s"]
                pos = m.end()
            if not text:
                raise PlanError(f"time budget {value!r} is empty; {fix}.")
    if not math.isfinite(seconds) or seconds <= 0:
        raise PlanError(f"time budget {value!r} must be a positive duration; {fix}.")
    return seconds


def format_duration(seconds: float) -> str:
    """Return `seconds` as a short text: "45 s", "12 min", "1 h 30 min"."""
    seconds = max(0.0, float(seconds))
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min".replace(".0 min", " min")
    hours, rest = divmod(int(round(seconds / 60)), 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def process_started() -> float:
    """Return the wall-clock time (``time.time()``) this process started: Linux's /proc, else now.

    ``kagglekit run`` counts its budget from here, so the interpreter's and the backend's start-up count too.
    """
    import os
    import time

    now = time.time()
    try:
        with open("/proc/self/stat", encoding="ascii") as fh:
            ticks = int(fh.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime, in clock ticks since boot
        with open("/proc/stat", encoding="ascii") as fh:
            boot = next(int(line.split()[1]) for line in fh if line.startswith("btime"))
        started = boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return now
    return started if now - 86400 < started <= now else now
