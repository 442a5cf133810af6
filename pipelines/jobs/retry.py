"""When a failed job is tried again: a schedule of delays with jitter, `Retry-After` honoured.

Pure: the caller passes the random draw and the current time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime

from models.db.enums import JobKind

WEBHOOK_SCHEDULE = (0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
"""Standard Webhooks' example schedule (seconds before each attempt): immediately, 5 s, 5 min,
30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h — about three days in all."""
JOB_SCHEDULE = (0, 10, 60, 300, 1800)
"""Other jobs (e-mail, reports, AI tasks): five attempts within about 40 minutes."""
MAX_RETRY_AFTER_SECONDS = 86400
"""A receiver's `Retry-After` is honoured up to a day."""


@dataclass(frozen=True)
class RetrySchedule:
    """Delays before each attempt; `delays[0]` is the first attempt's (usually 0)."""

    delays: tuple[int, ...]
    jitter: float = 0.1
    """Each retry's delay is stretched or shrunk by up to this fraction."""

    @property
    def max_attempts(self) -> int:
        return len(self.delays)

    def delay_after(
        self, attempts_made: int, *, draw: float, retry_after: float | None = None
    ) -> float | None:
        """Seconds to wait before the next attempt after `attempts_made` attempts, or None if
        none is left. `draw` is uniform in [0, 1); `retry_after` is the receiver's wish."""
        if attempts_made < 1:
            raise ValueError("attempts_made counts attempts already made: at least 1")
        if not 0.0 <= draw < 1.0:
            raise ValueError("draw must be in [0, 1)")
        if attempts_made >= len(self.delays):
            return None
        base = self.delays[attempts_made]
        delay = base * (1 + self.jitter * (2 * draw - 1))
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_RETRY_AFTER_SECONDS))
        return max(delay, 0.0)


def schedule_for(kind: str) -> RetrySchedule:
    """The retry schedule of a job kind."""
    return RetrySchedule(WEBHOOK_SCHEDULE if kind == JobKind.WEBHOOK else JOB_SCHEDULE)


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds a `Retry-After` header asks for (delta seconds or an HTTP date); None if absent
    or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max((when - now).total_seconds(), 0.0)
