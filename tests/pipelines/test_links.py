"""Absolute links under the API's public base URL (pure)."""

from __future__ import annotations

import pytest

from flows.dispatcher import Dispatcher
from pipelines.links import LOCAL_PUBLIC_URL, absolute_links, absolute_url, with_links


@pytest.mark.parametrize(
    ("base", "path", "expected"),
    [
        ("https://api.example.com", "/v1/notices", "https://api.example.com/v1/notices"),
        ("https://api.example.com/", "/v1/notices", "https://api.example.com/v1/notices"),
        (
            "https://example.com/sf/",
            "v1/reports/1?format=csv",
            "https://example.com/sf/v1/reports/1?format=csv",
        ),
        ("https://api.example.com", "https://other.example/x", "https://other.example/x"),
    ],
)
def test_absolute_url(base: str, path: str, expected: str) -> None:
    assert absolute_url(base, path) == expected


def test_links_end_a_message_as_absolute_lines() -> None:
    links = {"HTML": "/v1/reports/r/content?format=html", "CSV": "/v1/reports/r/content?format=csv"}
    assert absolute_links("https://a.example", {"self": "/v1/x"}) == {
        "self": "https://a.example/v1/x"
    }
    assert with_links("https://a.example", "Ready.\n", links) == (
        "Ready.\n\nHTML: https://a.example/v1/reports/r/content?format=html\n"
        "CSV: https://a.example/v1/reports/r/content?format=csv\n"
    )
    assert with_links("https://a.example", "Ready.\n", {}) == "Ready.\n"


def test_the_public_url_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAMFLOW_PUBLIC_URL", raising=False)
    assert Dispatcher.from_environment(None).public_url == LOCAL_PUBLIC_URL  # type: ignore[arg-type]
    monkeypatch.setenv("STREAMFLOW_PUBLIC_URL", "https://api.example.com")
    assert Dispatcher.from_environment(None).public_url == "https://api.example.com"  # type: ignore[arg-type]
