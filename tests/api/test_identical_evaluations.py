"""Identical evaluation requests through the API (abuse suite: concurrent identical runs).

A second identical request joins the run in progress instead of starting a second flow for it,
and a completed run's cached document never disagrees with the database: a completed run is
final, so late failures of other flows leave it (and every cache of it) as it is.
"""

from __future__ import annotations

import json

from models.db.tables import EvaluationRun
from pipelines.evaluation import service
from pipelines.evaluation.views import run_detail
from tests.api.conftest import World
from tests.api.test_provider_routes import (  # noqa: F401 - fixtures
    signed,
    summarizer,
    summarizer_store,
)

P = "/provider/v1"


def test_an_identical_start_joins_the_run_in_progress(world: World, summarizer: str) -> None:  # noqa: F811
    """The same request twice: one run, one flow launched; the second answer names that run."""
    body = {"organization": "tenant-a", "model": summarizer, "dataset": "tenant-a-notes"}
    first = signed(world, "POST", f"{P}/evaluations", json=body)
    second = signed(world, "POST", f"{P}/evaluations", json=body)
    assert (first.status_code, second.status_code) == (202, 202), second.text
    assert second.json()["run_id"] == first.json()["run_id"]
    assert (second.json()["status"], second.json()["reused"]) == ("pending", False)
    assert world.launcher.launched == [
        {
            "organization": "tenant-a",
            "actor": "provider:key-2026a",
            "run_id": first.json()["run_id"],
        }
    ]


def test_a_cached_completed_run_stays_what_the_database_says(world: World) -> None:
    """A completed run is read (and cached), then a late flow fails on it: the run stays
    completed with no error, and the cached answer equals a fresh read of the database."""
    tenant = world.tenant_a
    url = f"/v1/evaluations/{tenant.run_id}"
    cached = world.client.get(url, headers=tenant.headers)
    assert cached.status_code == 200
    with world.state.sessions() as session, session.begin():
        for claim in (None, "a-late-flow"):
            service.fail_run(
                session,
                organization_id=tenant.organization_id,
                run_id=tenant.run_id,
                actor="flow",
                error=RuntimeError("duplicate key value violates unique constraint"),
                claim=claim,
            )
    with world.state.sessions() as session, session.begin():
        stored = session.get(EvaluationRun, tenant.run_id)
        assert stored is not None
        assert (stored.status, stored.error) == ("completed", None)
        fresh = run_detail(session, organization_id=tenant.organization_id, run_id=tenant.run_id)
    again = world.client.get(url, headers=tenant.headers)
    assert again.json() == cached.json() == json.loads(json.dumps(fresh, default=str))
