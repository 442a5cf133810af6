"""Retries and limits of ACME work (pure): backoff with jitter, `Retry-After`, failure budget.

A broken domain must not burn the CA's rate limits (Let's Encrypt allows 5 failed
authorizations per hostname per account per hour): each certificate has a budget of failed
attempts per window, and consecutive failures push the next attempt out exponentially.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime


def backoff_seconds(
    attempt: int, *, base: float, cap: float, jitter: float, random_fraction: float
) -> float:
    """Delay before retry `attempt` (1-based): exponential, capped, with ± `jitter` share.

    `random_fraction` in [0, 1) comes from the caller's random source.
    """
    if attempt < 1:
        raise ValueError("attempts count from 1")
    delay = min(cap, base * 2.0 ** (attempt - 1))
    return float(max(0.0, delay * (1 + jitter * (2 * random_fraction - 1))))


def retry_after_seconds(value: str | None, *, now: datetime) -> float | None:
    """Seconds a `Retry-After` header asks to wait (delta seconds or an HTTP date), or None."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True)
class FailureBudget:
    """At most `max_failures` failed attempts per certificate in any `window`."""

    max_failures: int = 5
    window: timedelta = timedelta(hours=1)
    backoff_base: timedelta = timedelta(minutes=1)
    backoff_cap: timedelta = timedelta(hours=6)


@dataclass(frozen=True)
class BudgetState:
    """A certificate's failures in its current window and in a row."""

    failures: int
    window_started_at: datetime | None
    consecutive_failures: int


def after_failure(
    state: BudgetState, *, now: datetime, budget: FailureBudget
) -> tuple[BudgetState, datetime]:
    """The state after one more failed attempt, and the earliest time of the next one."""
    fresh = state.window_started_at is None or now - state.window_started_at >= budget.window
    failures = 1 if fresh else state.failures + 1
    started = now if fresh else state.window_started_at
    assert started is not None
    consecutive = state.consecutive_failures + 1
    delay = min(budget.backoff_cap, budget.backoff_base * 2 ** min(consecutive - 1, 20))
    next_at = now + delay
    if failures >= budget.max_failures:
        next_at = max(next_at, started + budget.window)
    return BudgetState(failures, started, consecutive), next_at


def budget_allows(state: BudgetState, *, now: datetime, budget: FailureBudget) -> bool:
    """Whether another attempt fits in the budget at `now`."""
    if state.window_started_at is None or now - state.window_started_at >= budget.window:
        return True
    return state.failures < budget.max_failures
