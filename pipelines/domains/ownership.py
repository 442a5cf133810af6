"""What an ownership or routing check means, and when to check again (pure).

A DNS lookup ends in one of five ways. Only two of them say the tenant does not own the name
(a wrong or missing TXT value, NXDOMAIN); a timeout or SERVFAIL says nothing about ownership,
so it never changes a domain's status and is retried with backoff.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from models.db.enums import DomainStatus, OwnershipOutcome, RoutingOutcome


class LookupKind(StrEnum):
    """How one DNS query ended."""

    ANSWER = "answer"
    NODATA = "nodata"
    NXDOMAIN = "nxdomain"
    SERVFAIL = "servfail"
    TIMEOUT = "timeout"


@dataclass(frozen=True)
class Lookup:
    """The result of one DNS query: how it ended and the values found."""

    kind: LookupKind
    values: tuple[str, ...] = ()
    detail: str = ""


@dataclass(frozen=True)
class Judgement:
    """What one check concluded, with what was found and a sentence for the tenant."""

    outcome: OwnershipOutcome
    found: tuple[str, ...]
    detail: str


def judge_ownership(lookup: Lookup, *, record: str, token: str) -> Judgement:
    """The outcome of a TXT lookup at `record` for a tenant whose token is `token`."""
    if lookup.kind is LookupKind.ANSWER and token in lookup.values:
        return Judgement(OwnershipOutcome.VERIFIED, lookup.values, f"TXT {record} holds the token")
    if lookup.kind is LookupKind.ANSWER:
        return Judgement(
            OwnershipOutcome.WRONG_VALUE,
            lookup.values,
            f"TXT {record} holds {', '.join(repr(v) for v in lookup.values)}, not the token",
        )
    if lookup.kind is LookupKind.NODATA:
        return Judgement(
            OwnershipOutcome.MISSING,
            (),
            f"{record} exists but has no TXT record; publish the token",
        )
    if lookup.kind is LookupKind.NXDOMAIN:
        return Judgement(
            OwnershipOutcome.NXDOMAIN, (), f"{record} does not exist (NXDOMAIN); publish the token"
        )
    reason = "timed out" if lookup.kind is LookupKind.TIMEOUT else "answered SERVFAIL"
    return Judgement(
        OwnershipOutcome.UNAVAILABLE,
        (),
        f"could not check: the lookup of {record} {reason}"
        + (f" ({lookup.detail})" if lookup.detail else "")
        + "; it is retried, the domain's status is unchanged",
    )


def judge_routing(
    cname: Lookup,
    addresses: Lookup,
    *,
    targets: Sequence[str],
    platform_addresses: Sequence[str],
) -> tuple[RoutingOutcome, tuple[str, ...]]:
    """Whether a hostname points at the platform: a CNAME to a target, or one of its addresses."""
    if not targets and not platform_addresses:
        return RoutingOutcome.NOT_CONFIGURED, ()
    wanted = {t.lower().rstrip(".") for t in targets}
    cnames = tuple(v.lower().rstrip(".") for v in cname.values)
    if cname.kind is LookupKind.ANSWER and wanted & set(cnames):
        return RoutingOutcome.POINTS_HERE, cnames
    if addresses.kind is LookupKind.ANSWER and set(addresses.values) & set(platform_addresses):
        return RoutingOutcome.POINTS_HERE, addresses.values
    found = cnames + addresses.values
    if found:
        return RoutingOutcome.POINTS_ELSEWHERE, found
    failed = {LookupKind.SERVFAIL, LookupKind.TIMEOUT}
    if cname.kind in failed or addresses.kind in failed:
        return RoutingOutcome.UNAVAILABLE, ()
    return RoutingOutcome.NOT_FOUND, ()


@dataclass(frozen=True)
class CheckPolicy:
    """How often domains are re-checked and how long a verified one may fail before it lapses."""

    interval: timedelta = timedelta(hours=6)
    pending_interval: timedelta = timedelta(minutes=5)
    retry_base: timedelta = timedelta(minutes=1)
    retry_cap: timedelta = timedelta(hours=1)
    grace: timedelta = timedelta(hours=72)


@dataclass(frozen=True)
class DomainState:
    """The parts of a domain a check changes."""

    status: DomainStatus
    verified_at: datetime | None
    failing_since: datetime | None
    unavailable_streak: int


@dataclass(frozen=True)
class Transition:
    """The domain after a check, and whether the tenant must be told it lapsed."""

    state: DomainState
    next_check_at: datetime
    lapsed: bool
    became_verified: bool


def apply_check(
    state: DomainState, judgement: Judgement, *, now: datetime, policy: CheckPolicy
) -> Transition:
    """The domain's next state after a check with `judgement` at `now`."""
    outcome = judgement.outcome
    if outcome is OwnershipOutcome.UNAVAILABLE:
        streak = state.unavailable_streak + 1
        delay = min(policy.retry_cap, policy.retry_base * (2 ** min(streak - 1, 20)))
        kept = DomainState(state.status, state.verified_at, state.failing_since, streak)
        return Transition(kept, now + delay, lapsed=False, became_verified=False)
    if outcome is OwnershipOutcome.VERIFIED:
        became = state.status is not DomainStatus.VERIFIED
        verified = DomainState(DomainStatus.VERIFIED, now, None, 0)
        return Transition(verified, now + policy.interval, lapsed=False, became_verified=became)
    # A real failure: a pending claim stays pending; a verified domain lapses after the grace.
    if state.status is DomainStatus.VERIFIED:
        since = state.failing_since or now
        if now - since >= policy.grace:
            lapsed = DomainState(DomainStatus.UNVERIFIED, state.verified_at, since, 0)
            return Transition(lapsed, now + policy.pending_interval, True, False)
        failing = DomainState(DomainStatus.VERIFIED, state.verified_at, since, 0)
        next_check = min(now + policy.pending_interval, since + policy.grace)
        return Transition(failing, next_check, lapsed=False, became_verified=False)
    kept = DomainState(state.status, state.verified_at, state.failing_since, 0)
    return Transition(kept, now + policy.pending_interval, lapsed=False, became_verified=False)
