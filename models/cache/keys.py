"""Names of cached results: the key each document lives under and the tags that drop it.

Shared by the API, which reads through the cache, and the evaluation flow, which warms it when
a run finishes, so both address the same entries. Keys name immutable things (a completed run,
a document version) and carry the organisation, so a cached value is never wrong for its
reader, only missing.
"""

from __future__ import annotations

import uuid

DOCUMENT_VERSION = "v4"
"""Version of the cached documents' shape; bump it when their fields change."""


def run_tag(run_id: uuid.UUID | str) -> str:
    """Cache tag of everything derived from one run."""
    return f"run:{run_id}"


def run_detail_key(organization_id: uuid.UUID | str, run_id: uuid.UUID | str) -> str:
    """Cache key of a run's detail document (org in the key: no cross-tenant hits)."""
    return f"org:{organization_id}:run:{run_id}:detail:{DOCUMENT_VERSION}"


def comparison_key(
    organization_id: uuid.UUID | str,
    run_a: uuid.UUID | str,
    run_b: uuid.UUID | str,
    primary: str | None = None,
) -> str:
    """Cache key of the paired comparison of run b against run a (order matters), decided on
    `primary` (None: the default primary metric)."""
    decided_on = "" if primary is None else f":primary:{primary}"
    return f"org:{organization_id}:comparison:{run_a}:{run_b}{decided_on}:{DOCUMENT_VERSION}"
