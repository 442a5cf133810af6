"""The in-process memory of authenticated API keys."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from api.principals import PrincipalCache
from pipelines.access.service import Principal
from tests.models.cache.conftest import FakeClock

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def principal(slug: str) -> Principal:
    return Principal(uuid.uuid4(), slug, uuid.uuid4(), frozenset({"results:read"}))


class TestPrincipalCache:
    def test_remembers_a_key_for_the_ttl(self) -> None:
        """A key is remembered until its TTL has passed, then forgotten."""
        clock = FakeClock()
        cache = PrincipalCache(5, clock=clock)
        acme = principal("acme")
        cache.put("sf_a_secret", acme, now=NOW)
        clock.advance(4.9)
        assert cache.get("sf_a_secret") == acme
        assert cache.get("sf_b_secret") is None
        clock.advance(0.1)
        assert cache.get("sf_a_secret") is None

    def test_when_full_forgets_the_least_recently_used_key_only(self) -> None:
        """Past max_entries one key goes, the one used longest ago; the others stay."""
        cache = PrincipalCache(60, max_entries=2, clock=FakeClock())
        a, b, c = principal("a"), principal("b"), principal("c")
        cache.put("key-a", a, now=NOW)
        cache.put("key-b", b, now=NOW)
        assert cache.get("key-a") == a
        cache.put("key-c", c, now=NOW)
        assert (cache.get("key-a"), cache.get("key-b"), cache.get("key-c")) == (a, None, c)

    def test_forget_all_and_a_zero_ttl(self) -> None:
        """forget_all drops every key; a TTL of 0 remembers nothing."""
        cache = PrincipalCache(60, clock=FakeClock())
        cache.put("key-a", principal("a"), now=NOW)
        cache.forget_all()
        assert cache.get("key-a") is None
        off = PrincipalCache(0)
        off.put("key-a", principal("a"), now=NOW)
        assert off.get("key-a") is None
