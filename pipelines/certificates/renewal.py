"""When a certificate is due for renewal (pure; the caller passes `now`).

Renew when a third of the lifetime is left (a half for lifetimes of ten days or less), as
certbot 4, lego `--dynamic` and CertMagic do; a renewal window from ACME Renewal Information
(RFC 9773), when the CA offers one, takes precedence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

SHORT_LIFETIME = timedelta(days=10)


@dataclass(frozen=True)
class RenewalPolicy:
    """The share of a certificate's lifetime left at which it is renewed."""

    remaining_ratio: float = 1 / 3
    short_remaining_ratio: float = 1 / 2

    def __post_init__(self) -> None:
        for ratio in (self.remaining_ratio, self.short_remaining_ratio):
            if not 0 < ratio < 1:
                raise ValueError(f"a renewal ratio is between 0 and 1, not {ratio}")


def renewal_time(
    not_before: datetime, not_after: datetime, policy: RenewalPolicy | None = None
) -> datetime:
    """When a certificate valid from `not_before` to `not_after` should be renewed."""
    policy = policy or RenewalPolicy()
    lifetime = not_after - not_before
    ratio = policy.short_remaining_ratio if lifetime <= SHORT_LIFETIME else policy.remaining_ratio
    return not_after - lifetime * ratio


@dataclass(frozen=True)
class RenewalDecision:
    """Whether to renew now, when it is (or was) due, and why."""

    renew: bool
    due_at: datetime
    reason: str


def decide_renewal(
    *,
    not_before: datetime,
    not_after: datetime,
    now: datetime,
    ari_time: datetime | None = None,
    policy: RenewalPolicy | None = None,
) -> RenewalDecision:
    """Renew at the ARI-suggested time when the CA gave one, else at the lifetime ratio."""
    if now >= not_after:
        return RenewalDecision(True, not_after, "expired")
    if ari_time is not None:
        if now >= ari_time:
            return RenewalDecision(True, ari_time, "inside the CA's renewal window (ARI)")
        return RenewalDecision(False, ari_time, "before the CA's renewal window (ARI)")
    due = renewal_time(not_before, not_after, policy)
    if now >= due:
        return RenewalDecision(True, due, "less than the renewal share of its lifetime is left")
    return RenewalDecision(False, due, "more than the renewal share of its lifetime is left")
