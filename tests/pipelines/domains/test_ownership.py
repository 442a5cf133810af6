"""Ownership outcomes: the state machine on literal inputs, and real lookups against
pebble-challtestsrv's DNS server on a loopback port."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from models.db.enums import DomainStatus, OwnershipOutcome, RoutingOutcome
from pipelines.domains.ownership import (
    CheckPolicy,
    DomainState,
    Judgement,
    apply_check,
)
from pipelines.domains.service import DnsConfig, check_ownership, check_routing
from tests.acme_servers import ChallTestSrv, Knot

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
POLICY = CheckPolicy(grace=timedelta(hours=72))
FAILED = Judgement(OwnershipOutcome.WRONG_VALUE, ("other",), "wrong")
UNAVAILABLE = Judgement(OwnershipOutcome.UNAVAILABLE, (), "could not check")
VERIFIED = Judgement(OwnershipOutcome.VERIFIED, ("tok",), "ok")


def _verified(failing_since: datetime | None = None) -> DomainState:
    return DomainState(DomainStatus.VERIFIED, NOW - timedelta(days=9), failing_since, 0)


class TestStateMachine:
    def test_a_pending_claim_becomes_verified(self) -> None:
        pending = DomainState(DomainStatus.PENDING, None, None, 0)
        result = apply_check(pending, VERIFIED, now=NOW, policy=POLICY)
        assert result.state.status is DomainStatus.VERIFIED
        assert result.became_verified
        assert result.next_check_at == NOW + POLICY.interval

    def test_a_verified_domain_keeps_its_status_inside_the_grace_period(self) -> None:
        first = apply_check(_verified(), FAILED, now=NOW, policy=POLICY)
        assert first.state.status is DomainStatus.VERIFIED
        assert first.state.failing_since == NOW
        later = apply_check(first.state, FAILED, now=NOW + timedelta(hours=71), policy=POLICY)
        assert later.state.status is DomainStatus.VERIFIED
        assert not later.lapsed

    def test_past_the_grace_period_it_lapses_once(self) -> None:
        lapsed = apply_check(_verified(NOW - timedelta(hours=72)), FAILED, now=NOW, policy=POLICY)
        assert lapsed.state.status is DomainStatus.UNVERIFIED
        assert lapsed.lapsed
        again = apply_check(lapsed.state, FAILED, now=NOW + timedelta(hours=1), policy=POLICY)
        assert again.state.status is DomainStatus.UNVERIFIED
        assert not again.lapsed

    def test_could_not_check_never_fails_and_backs_off(self) -> None:
        state = _verified(NOW - timedelta(days=30))
        delays = []
        for _ in range(4):
            result = apply_check(state, UNAVAILABLE, now=NOW, policy=POLICY)
            assert result.state.status is DomainStatus.VERIFIED
            assert not result.lapsed
            delays.append(result.next_check_at - NOW)
            state = result.state
        assert delays == [timedelta(minutes=m) for m in (1, 2, 4, 8)]

    def test_seeing_the_token_again_ends_the_grace_period(self) -> None:
        result = apply_check(_verified(NOW - timedelta(hours=5)), VERIFIED, now=NOW, policy=POLICY)
        assert result.state.failing_since is None
        assert not result.became_verified


class TestLookupsAgainstChallTestSrv:
    def test_outcomes_are_kept_apart(self, challtestsrv: ChallTestSrv) -> None:
        """Verified; wrong value (with what was found); NXDOMAIN; SERVFAIL = could not check."""
        base = f"{uuid.uuid4().hex[:8]}.example.com"
        config = DnsConfig(resolvers=(challtestsrv.resolver,), timeout_seconds=2)
        record = f"_streamflow-verification.{base}"

        challtestsrv.set_txt(record, "streamflow-verification=right")
        ok = check_ownership(base, "streamflow-verification=right", config)
        assert (ok.outcome, ok.found) == (
            OwnershipOutcome.VERIFIED,
            ("streamflow-verification=right",),
        )

        wrong = check_ownership(base, "streamflow-verification=mine", config)
        assert wrong.outcome is OwnershipOutcome.WRONG_VALUE
        assert wrong.found == ("streamflow-verification=right",)
        assert "streamflow-verification=right" in wrong.detail

        challtestsrv.clear_txt(record)
        missing = check_ownership(base, "streamflow-verification=right", config)
        assert missing.outcome is OwnershipOutcome.MISSING  # challtestsrv answers NODATA

        challtestsrv.post("/set-servfail", {"host": record})
        try:
            failing = check_ownership(base, "streamflow-verification=right", config)
        finally:
            challtestsrv.post("/clear-servfail", {"host": record})
        assert failing.outcome is OwnershipOutcome.UNAVAILABLE
        assert "could not check" in failing.detail

    def test_nxdomain_from_a_real_authoritative_server(self, knot: Knot) -> None:
        """challtestsrv never says NXDOMAIN; Knot, authoritative for its zone, does."""
        config = DnsConfig(resolvers=(knot.server,), timeout_seconds=2)
        found = check_ownership(f"shop.{knot.zone}", "tok", config)
        assert found.outcome is OwnershipOutcome.NXDOMAIN
        assert "NXDOMAIN" in found.detail

    def test_a_dead_resolver_is_could_not_check(self) -> None:
        """Nothing listens on the port: the lookup times out, which is not a failure."""
        config = DnsConfig(resolvers=("127.0.0.1:9",), timeout_seconds=0.3)
        found = check_ownership("shop.example.com", "tok", config)
        assert found.outcome is OwnershipOutcome.UNAVAILABLE

    def test_routing_is_reported_apart(self, challtestsrv: ChallTestSrv) -> None:
        """challtestsrv answers every A query with 127.0.0.1 unless told otherwise."""
        here = DnsConfig(
            resolvers=(challtestsrv.resolver,), routing_addresses=("127.0.0.1",), timeout_seconds=2
        )
        assert check_routing("shop.example.com", here)[0] is RoutingOutcome.POINTS_HERE
        elsewhere = DnsConfig(
            resolvers=(challtestsrv.resolver,), routing_addresses=("192.0.2.1",), timeout_seconds=2
        )
        outcome, found = check_routing("shop.example.com", elsewhere)
        assert (outcome, found) == (RoutingOutcome.POINTS_ELSEWHERE, ("127.0.0.1",))
        assert check_routing("shop.example.com", DnsConfig())[0] is RoutingOutcome.NOT_CONFIGURED
