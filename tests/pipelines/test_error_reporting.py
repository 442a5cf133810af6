"""Sentry reporting is on only when a DSN is configured."""

from __future__ import annotations

import json
import sys

import sentry_sdk
from sentry_sdk.utils import event_from_exception

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


def test_a_report_carries_no_database_values_nor_local_variables() -> None:
    """What PostgreSQL quotes in DETAIL is scrubbed as in the logs; frames carry no locals."""
    secret = "a tenant's prediction text"
    try:
        init_error_reporting("http://key@127.0.0.1:9/1", component="api")
        options = sentry_sdk.get_client().options
        assert options["include_local_variables"] is False
        try:
            raise RuntimeError(
                'duplicate key value violates unique constraint "uq"\n'
                f"DETAIL:  Key (k)=({secret}) already exists."
            )
        except RuntimeError:
            event, hint = event_from_exception(sys.exc_info(), client_options=options)
        assert secret in json.dumps(event)
        reported = options["before_send"](event, hint)
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.init(dsn=None)
    text = json.dumps(reported)
    assert secret not in text
    assert "DETAIL: (hidden: it quotes stored values)" in text
