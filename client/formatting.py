"""How times, durations and counts read to an agent.

Kept apart from the widgets so the wording is the same everywhere (inbox, thread, toast) and
can be tested without a window.
"""

from __future__ import annotations

import time
from datetime import datetime

# Per channel: (seconds after which the wait is "getting long", seconds after which it is late).
# A chat customer watching the screen feels two minutes; an email customer expects hours.
WAIT_THRESHOLDS: dict[str, tuple[float, float]] = {
    "chat": (60, 180),
    "sms": (300, 900),
    "voice": (20, 60),
    "email": (3600, 4 * 3600),
}


def duration(seconds: float) -> str:
    """A compact waiting time: 45s, 3m, 1h 20m, 2d 4h."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    m = s // 60
    if m < 60:
        return f"{m}m"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h}h {m:02d}m" if m else f"{h}h"
    d, h = divmod(h, 24)
    return f"{d}d {h}h" if h else f"{d}d"


def wait_level(channel: str | None, seconds: float) -> int:
    """0 = fine, 1 = getting long, 2 = late, by the channel's expectations."""
    warn, late = WAIT_THRESHOLDS.get(channel or "", (300, 900))
    if seconds >= late:
        return 2
    if seconds >= warn:
        return 1
    return 0


def clock(ts: float | None, now: float | None = None) -> str:
    """A message time: 14:05 today, 'Tue 14:05' this week, '3 Nov 14:05' before."""
    if ts is None:
        return ""
    now = time.time() if now is None else now
    when = datetime.fromtimestamp(ts)
    today = datetime.fromtimestamp(now).date()
    days = (today - when.date()).days
    if days == 0:
        return when.strftime("%H:%M")
    if 0 < days < 7:
        return when.strftime("%a %H:%M")
    return f"{when.day} {when.strftime('%b %H:%M')}"


def short_day(ts: float | None, now: float | None = None) -> str:
    """The time of a row that is not waiting: 14:05 today, 'Yesterday', 'Tue', '3 Nov'."""
    if ts is None:
        return ""
    now = time.time() if now is None else now
    when = datetime.fromtimestamp(ts)
    days = (datetime.fromtimestamp(now).date() - when.date()).days
    if days == 0:
        return when.strftime("%H:%M")
    if days == 1:
        return "Yesterday"
    if 0 < days < 7:
        return when.strftime("%a")
    return f"{when.day} {when.strftime('%b')}"


def plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"
