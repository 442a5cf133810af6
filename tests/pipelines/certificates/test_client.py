"""The ACME client's retry loop with an injected clock and sleep: `Retry-After` is honoured,
retries stop at their budget or the order's deadline, definite problems are not retried."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from acme import messages

from pipelines.certificates.keys import new_private_key_pem
from pipelines.certificates.service import AcmeClient, AcmeConfig, IssuanceFailed

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _client(slept: list[float], **config: object) -> AcmeClient:
    return AcmeClient(
        AcmeConfig("https://127.0.0.1:9/dir", backoff_base_seconds=0.5, **config),  # type: ignore[arg-type]
        new_private_key_pem(),
        None,
        clock=lambda: NOW + timedelta(seconds=sum(slept)),  # time passes while it sleeps
        sleep=slept.append,
        rng=random.Random(7),
    )


def _problem(code: str) -> messages.Error:
    return messages.Error(typ=f"urn:ietf:params:acme:error:{code}", detail=code)


def test_retry_after_is_honoured() -> None:
    slept: list[float] = []
    client = _client(slept)

    def rate_limited() -> str:
        if len(slept) < 2:
            client.net.last_retry_after = "7"
            raise _problem("rateLimited")
        return "done"

    assert client.call("new order", rate_limited) == "done"
    assert slept == [7.0, 7.0]
    assert client.retries == 2


def test_bad_nonces_back_off_with_jitter_until_the_budget_is_spent() -> None:
    slept: list[float] = []
    client = _client(slept, request_retries=4, jitter=0.25)

    def always_bad() -> None:
        raise _problem("badNonce")

    with pytest.raises(IssuanceFailed, match="gave up after 5 tries"):
        client.call("finalize", always_bad)
    assert len(slept) == 4
    for attempt, delay in enumerate(slept, start=1):
        assert 0.5 * 2 ** (attempt - 1) * 0.75 <= delay <= 0.5 * 2 ** (attempt - 1) * 1.25


def test_the_deadline_caps_the_wait() -> None:
    slept: list[float] = []
    client = _client(slept)

    def limited() -> None:
        client.net.last_retry_after = "3600"
        raise _problem("rateLimited")

    with pytest.raises(IssuanceFailed, match="deadline"):
        client.call("new order", limited, deadline=NOW + timedelta(seconds=30))
    assert slept == [30.0]


def test_a_definite_problem_is_not_retried() -> None:
    slept: list[float] = []
    client = _client(slept)

    def refused() -> None:
        raise _problem("rejectedIdentifier")

    with pytest.raises(messages.Error):
        client.call("new order", refused)
    assert slept == []
