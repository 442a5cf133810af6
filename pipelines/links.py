"""Absolute links to the API for messages that leave it (webhook payloads, e-mails).

Jobs store API paths (`/v1/reports/…`); a message is given absolute links when it is sent, with
the API's public base URL the caller passes in (`STREAMFLOW_PUBLIC_URL`, read at the edge), so
a changed public address applies to messages still in the queue. Pure: no settings are read.
"""

from __future__ import annotations

from collections.abc import Mapping

LOCAL_PUBLIC_URL = "http://127.0.0.1:8000"
"""Where `streamflow serve` listens by default: the public URL when none is set."""


def absolute_url(base_url: str, path: str) -> str:
    """`path` under `base_url` (which may carry a path prefix, e.g. behind a proxy); a link
    that is already absolute is kept."""
    if path.startswith(("https://", "http://")):
        return path
    return base_url.rstrip("/") + "/" + path.lstrip("/")


def absolute_links(base_url: str, links: Mapping[str, object]) -> dict[str, str]:
    """Every link of a `links` object made absolute."""
    return {name: absolute_url(base_url, str(path)) for name, path in links.items()}


def with_links(base_url: str, text: str, links: Mapping[str, object]) -> str:
    """A plain-text message followed by one `label: absolute link` line per link."""
    if not links:
        return text
    lines = "\n".join(f"{label}: {url}" for label, url in absolute_links(base_url, links).items())
    return f"{text.rstrip()}\n\n{lines}\n"
