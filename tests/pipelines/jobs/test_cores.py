"""The pure cores of jobs and webhooks on literal inputs: the retry schedule, signatures
(checked against the standardwebhooks package), the SSRF guard's rules and URL parsing."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from pipelines.errors import InvalidInput
from pipelines.jobs.retry import (
    JOB_SCHEDULE,
    WEBHOOK_SCHEDULE,
    RetrySchedule,
    parse_retry_after,
    schedule_for,
)
from pipelines.webhooks.addresses import refused_reason
from pipelines.webhooks.service import Target, parse_target
from pipelines.webhooks.signing import encode_secret, sign, webhook_headers


class TestRetrySchedule:
    def test_the_webhook_schedule_spans_about_three_days(self) -> None:
        schedule = schedule_for("webhook")
        assert schedule.max_attempts == 10
        assert 2.9 < sum(WEBHOOK_SCHEDULE) / 86400 < 3.3
        assert schedule_for("email").delays == JOB_SCHEDULE

    def test_delays_follow_the_schedule_with_jitter(self) -> None:
        schedule = RetrySchedule((0, 5, 300), jitter=0.1)
        assert schedule.delay_after(1, draw=0.5) == 5
        assert schedule.delay_after(1, draw=0.0) == pytest.approx(4.5)
        assert schedule.delay_after(2, draw=0.999999) == pytest.approx(330, abs=0.01)
        assert schedule.delay_after(3, draw=0.5) is None

    def test_retry_after_extends_a_delay_up_to_a_day(self) -> None:
        schedule = RetrySchedule((0, 5, 300))
        assert schedule.delay_after(1, draw=0.5, retry_after=120) == 120
        assert schedule.delay_after(1, draw=0.5, retry_after=1) == 5
        assert schedule.delay_after(1, draw=0.5, retry_after=10**9) == 86400

    def test_bad_arguments_are_refused(self) -> None:
        with pytest.raises(ValueError, match="at least 1"):
            RetrySchedule((0, 5)).delay_after(0, draw=0.5)
        with pytest.raises(ValueError, match="draw"):
            RetrySchedule((0, 5)).delay_after(1, draw=1.0)

    @pytest.mark.parametrize(
        ("value", "seconds"),
        [
            ("120", 120.0),
            ("Tue, 01 Dec 2026 12:01:00 GMT", 60.0),
            ("Tue, 01 Dec 2026 11:00:00 GMT", 0.0),
            ("soon", None),
            ("", None),
            (None, None),
        ],
    )
    def test_retry_after_parses_seconds_and_dates(
        self, value: str | None, seconds: float | None
    ) -> None:
        now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
        assert parse_retry_after(value, now=now) == seconds


class TestSignatures:
    def test_a_signature_verifies_with_the_standardwebhooks_package(self) -> None:
        secret = encode_secret(bytes(range(32)))
        body = b'{"type":"evaluation.completed"}'
        timestamp = int(datetime.now(UTC).timestamp())
        headers = webhook_headers([secret], "msg_1", timestamp, body)
        assert Webhook(secret).verify(body, headers) == {"type": "evaluation.completed"}

    def test_rotation_signs_with_every_live_secret(self) -> None:
        old, new = encode_secret(b"o" * 32), encode_secret(b"n" * 32)
        body = b"{}"
        timestamp = int(datetime.now(UTC).timestamp())
        headers = webhook_headers([new, old], "msg_2", timestamp, body)
        assert headers["webhook-signature"] == " ".join(
            [sign(new, "msg_2", timestamp, body), sign(old, "msg_2", timestamp, body)]
        )
        for secret in (old, new):
            assert Webhook(secret).verify(body, headers) == {}

    def test_the_signature_is_the_documented_hmac(self) -> None:
        # The Standard Webhooks specification's own example.
        secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        body = b'{"test": 2432232314}'
        expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        assert sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == expected

    def test_secrets_have_24_to_64_random_bytes(self) -> None:
        secret = encode_secret(b"x" * 24)
        assert base64.b64decode(secret.removeprefix("whsec_")) == b"x" * 24
        with pytest.raises(ValueError, match="24 to 64"):
            encode_secret(b"x" * 16)


class TestAddresses:
    @pytest.mark.parametrize(
        ("address", "reason"),
        [
            ("127.0.0.1", "loopback"),
            ("::1", "loopback"),
            ("10.1.2.3", "private"),
            ("192.168.0.1", "private"),
            ("169.254.169.254", "link-local"),
            ("fe80::1", "link-local"),
            ("::ffff:127.0.0.1", "loopback"),
            ("0.0.0.0", "unicast"),
            ("100.64.0.1", "private"),
        ],
    )
    def test_internal_addresses_are_refused(self, address: str, reason: str) -> None:
        assert reason in (refused_reason(address, allow_private=False) or "")

    def test_public_addresses_pass_and_a_setting_allows_private_ones(self) -> None:
        assert refused_reason("93.184.216.34", allow_private=False) is None
        assert refused_reason("2606:4700::1111", allow_private=False) is None
        assert refused_reason("127.0.0.1", allow_private=True) is None
        assert refused_reason("0.0.0.0", allow_private=True) is not None

    def test_urls_are_parsed_into_targets(self) -> None:
        assert parse_target("https://hooks.example.com/x") == Target(
            "https", "hooks.example.com", 443
        )
        assert parse_target("http://127.0.0.1:8080/x") == Target("http", "127.0.0.1", 8080)
        for bad in ("ftp://x.example/", "https://", "/relative", "https://u:p@x.example/"):
            with pytest.raises(InvalidInput):
                parse_target(bad)
