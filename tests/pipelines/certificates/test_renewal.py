"""Renewal decisions, backoff, failure budget, Retry-After and CAA on literal inputs, with an
injected clock (`now` is a parameter everywhere)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipelines.certificates.budget import (
    BudgetState,
    FailureBudget,
    after_failure,
    backoff_seconds,
    budget_allows,
    retry_after_seconds,
)
from pipelines.certificates.caa import caa_names, caa_permits
from pipelines.certificates.renewal import RenewalPolicy, decide_renewal, renewal_time

ISSUED = datetime(2026, 1, 1, tzinfo=UTC)


class TestRenewal:
    def test_a_90_day_certificate_renews_with_30_days_left(self) -> None:
        assert renewal_time(ISSUED, ISSUED + timedelta(days=90)) == ISSUED + timedelta(days=60)

    def test_a_pebble_five_year_certificate_renews_at_two_thirds(self) -> None:
        not_after = ISSUED + timedelta(days=1826)
        due = ISSUED + timedelta(days=1826) * 2 / 3
        before = decide_renewal(
            not_before=ISSUED, not_after=not_after, now=due - timedelta(seconds=1)
        )
        at = decide_renewal(not_before=ISSUED, not_after=not_after, now=due)
        assert (before.renew, at.renew) == (False, True)
        assert before.due_at == at.due_at == due

    def test_short_lifetimes_renew_at_half(self) -> None:
        assert renewal_time(ISSUED, ISSUED + timedelta(days=6)) == ISSUED + timedelta(days=3)

    def test_the_ratio_is_configurable(self) -> None:
        policy = RenewalPolicy(remaining_ratio=0.5)
        assert renewal_time(ISSUED, ISSUED + timedelta(days=90), policy) == ISSUED + timedelta(
            days=45
        )
        with pytest.raises(ValueError, match="between 0 and 1"):
            RenewalPolicy(remaining_ratio=1.5)

    def test_ari_moves_the_renewal_and_expiry_always_renews(self) -> None:
        not_after = ISSUED + timedelta(days=90)
        ari = ISSUED + timedelta(days=10)
        now = ISSUED + timedelta(days=11)
        decision = decide_renewal(not_before=ISSUED, not_after=not_after, now=now, ari_time=ari)
        assert decision.renew
        assert "ARI" in decision.reason
        expired = decide_renewal(not_before=ISSUED, not_after=not_after, now=not_after)
        assert (expired.renew, expired.reason) == (True, "expired")


class TestBackoffAndBudget:
    def test_backoff_doubles_to_a_cap_with_bounded_jitter(self) -> None:
        plain = [
            backoff_seconds(n, base=1, cap=10, jitter=0, random_fraction=0.3)
            for n in (1, 2, 3, 4, 5)
        ]
        assert plain == [1, 2, 4, 8, 10]
        low = backoff_seconds(3, base=1, cap=10, jitter=0.25, random_fraction=0.0)
        high = backoff_seconds(3, base=1, cap=10, jitter=0.25, random_fraction=0.999999)
        assert (low, round(high, 3)) == (3.0, 5.0)

    def test_retry_after_as_seconds_or_a_date(self) -> None:
        now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
        assert retry_after_seconds("120", now=now) == 120
        assert retry_after_seconds("Tue, 01 Dec 2026 12:00:30 GMT", now=now) == 30
        assert retry_after_seconds("soon", now=now) is None
        assert retry_after_seconds(None, now=now) is None

    def test_the_budget_stops_attempts_until_the_window_passes(self) -> None:
        budget = FailureBudget(max_failures=3, window=timedelta(hours=1))
        now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
        state = BudgetState(0, None, 0)
        nexts = []
        for minute in range(3):
            state, next_at = after_failure(
                state, now=now + timedelta(minutes=minute), budget=budget
            )
            nexts.append(next_at)
        assert state.failures == 3
        assert not budget_allows(state, now=now + timedelta(minutes=59), budget=budget)
        assert budget_allows(state, now=now + timedelta(hours=1), budget=budget)
        assert nexts[-1] == now + timedelta(hours=1)  # no attempt before the window ends
        assert nexts[0] == now + timedelta(minutes=1)


class TestCaa:
    def test_issue_properties(self) -> None:
        records = ['0 issue "letsencrypt.org"', '0 iodef "mailto:x@example.com"']
        assert caa_permits(records, ["letsencrypt.org"], wildcard=False)
        assert not caa_permits(records, ["pebble.letsencrypt.org"], wildcard=False)
        assert caa_permits(['0 iodef "mailto:x@example.com"'], ["any.ca"], wildcard=False)
        assert caa_permits(
            ['0 issue "letsencrypt.org; validationmethods=dns-01"'],
            ["letsencrypt.org"],
            wildcard=False,
        )

    def test_issuewild_governs_wildcards(self) -> None:
        records = ['0 issue "letsencrypt.org"', '0 issuewild ";"']
        assert caa_permits(records, ["letsencrypt.org"], wildcard=False)
        assert not caa_permits(records, ["letsencrypt.org"], wildcard=True)

    def test_names_climb_to_below_the_tld(self) -> None:
        assert caa_names("*.a.shop.example.com") == [
            "a.shop.example.com",
            "shop.example.com",
            "example.com",
        ]


def test_a_renewal_order_names_the_certificate_it_replaces() -> None:
    """RFC 9773 `replaces`, absent from the `acme` library's NewOrder, is sent when given."""
    from acme import messages

    from pipelines.certificates.service import _NewOrder

    identifier = messages.Identifier(typ=messages.IDENTIFIER_FQDN, value="shop.example.com")
    with_replaces = _NewOrder(
        identifiers=[identifier], replaces="aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"
    )
    assert with_replaces.to_partial_json()["replaces"] == "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"
    assert "replaces" not in _NewOrder(identifiers=[identifier]).to_partial_json()
