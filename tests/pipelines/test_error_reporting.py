"""Sentry reporting is on only when a DSN is configured."""

from __future__ import annotations

import sentry_sdk

from pipelines.logging import init_error_reporting


def test_no_dsn_reports_nothing() -> None:
    assert init_error_reporting(None, component="api") is False
    assert init_error_reporting("", component="api") is False
    assert not sentry_sdk.get_client().is_active()


def test_a_dsn_turns_reporting_on() -> None:
    try:
        assert init_error_reporting("http://key@127.0.0.1:9/1", component="flows") is True
        client = sentry_sdk.get_client()
        assert client.is_active()
        assert client.options["server_name"] == "flows"
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.init(dsn=None)
