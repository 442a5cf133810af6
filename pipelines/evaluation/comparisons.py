"""Comparisons computed off the request path: stored when a run completes, read by everyone.

A paired comparison of two 100,000-example runs costs about a minute of CPU (paired bootstrap
over every example), too long for a page or an API request to wait for. When a run completes,
the evaluation flow compares it with its agent type's champion run on the same dataset version
and stores the result here: the same document (`views.comparison_payload`, the one read model)
the API computes on demand, so a reader cannot tell which path answered.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy.orm import Session

from models.cache.keys import DOCUMENT_VERSION
from models.db.repositories.audit import record_audit
from models.db.repositories.comparisons import ComparisonRepository
from pipelines.evaluation.runs import get_run
from pipelines.evaluation.views import compare_runs, comparison_payload

log = structlog.get_logger()

CHAMPION = "champion"
"""Why a comparison was stored: a completed run against its agent type's champion run."""


@dataclass(frozen=True)
class StoredComparison:
    """What `compare_with_champion` did: the pair it compared, or why it compared nothing."""

    run_a: uuid.UUID | None
    """The champion's run (the baseline, A), if one was found."""
    run_b: uuid.UUID
    stored: bool
    reason: str
    """`stored`, `already stored`, or why nothing was compared."""


def stored_comparison(
    session: Session, *, organization_id: uuid.UUID, run_a: uuid.UUID, run_b: uuid.UUID
) -> dict[str, Any] | None:
    """The stored comparison of run b against run a (current document version), if any."""
    found = ComparisonRepository(session).get(
        organization_id, run_a=run_a, run_b=run_b, document_version=DOCUMENT_VERSION
    )
    return None if found is None else found.document


def store_comparison(
    session: Session,
    *,
    organization_id: uuid.UUID,
    run_a: uuid.UUID,
    run_b: uuid.UUID,
    actor: str,
    reason: str = CHAMPION,
) -> bool:
    """Compute the comparison of run b against run a (default primary metric) and store it;
    True when stored, False when one was stored already. Raises what `compare_runs` raises
    (Conflict for runs that cannot be compared)."""
    repository = ComparisonRepository(session)
    if repository.get(organization_id, run_a=run_a, run_b=run_b, document_version=DOCUMENT_VERSION):
        return False
    document = comparison_payload(
        compare_runs(session, organization_id=organization_id, run_a=run_a, run_b=run_b)
    )
    stored = repository.add_unless_stored(
        organization_id,
        run_a=run_a,
        run_b=run_b,
        document_version=DOCUMENT_VERSION,
        document=document,
        reason=reason,
    )
    if stored:
        record_audit(
            session,
            "evaluation_comparison.stored",
            run_b,
            actor=actor,
            organization_id=organization_id,
            details={"run_a": str(run_a), "run_b": str(run_b), "reason": reason},
        )
    return stored


def compare_with_champion(
    session: Session,
    *,
    organization_id: uuid.UUID,
    run_id: uuid.UUID,
    champion: tuple[str, str] | None,
    actor: str,
) -> StoredComparison:
    """Store the comparison of a completed run (B) with the champion's run (A): the newest
    completed run of the champion model version (`champion`: name, version) on the same
    dataset version in the same organisation. Nothing is compared when there is no champion,
    no such run, or the run is the champion's own."""
    run = get_run(session, organization_id=organization_id, run_id=run_id)
    if champion is None:
        return StoredComparison(None, run.id, False, "no champion model version")
    name, version = champion
    if (run.registered_model_name, run.model_version) == (name, version):
        return StoredComparison(None, run.id, False, "the run is the champion's")
    baseline = ComparisonRepository(session).latest_completed_run(
        organization_id,
        registered_model_name=name,
        model_version=version,
        golden_dataset_version_id=run.golden_dataset_version_id,
        excluding=run.id,
    )
    if baseline is None:
        return StoredComparison(
            None, run.id, False, f"no completed run of {name}@{version} on this dataset version"
        )
    stored = store_comparison(
        session, organization_id=organization_id, run_a=baseline.id, run_b=run.id, actor=actor
    )
    log.info(
        "evaluation.comparison_stored" if stored else "evaluation.comparison_already_stored",
        run_a=str(baseline.id),
        run_b=str(run.id),
    )
    return StoredComparison(baseline.id, run.id, stored, "stored" if stored else "already stored")
