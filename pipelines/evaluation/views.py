"""Evaluation results as readers see them (the read models), as JSON-ready documents.

One shape for the API, the CLI and cache warming, so a warmed cache entry is exactly what the
API would have answered: the read models of `read_models`, dumped to JSON by `run_detail` and
`comparison_payload`.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow.parquet as pq
import structlog
from sqlalchemy.orm import Session

from models.cache.keys import DOCUMENT_VERSION, run_detail_key, run_tag
from models.cache.settings import CacheSettings
from models.db.enums import RunStatus
from models.db.repositories.audit import AuditRepository, record_audit
from models.db.repositories.comparisons import ComparisonRepository
from models.db.repositories.evaluations import EvaluationRepository
from models.db.tables import EvaluationRun, GoldenDataset, GoldenDatasetVersion
from pipelines.errors import InvalidInput, NotFound
from pipelines.evaluation import intervals
from pipelines.evaluation.read_models import (
    AliasMove,
    ConfusionMatrix,
    DatasetRef,
    EvaluationDetail,
    EvaluationSummary,
    ExampleScore,
    Metric,
    ModelRef,
    OrganizationRunSummary,
    PairedExample,
    Progress,
    QualityScorePoint,
    QualityWeightsUsed,
    RunRef,
    SliceMetrics,
)
from pipelines.evaluation.read_models import RunComparison as ComparisonView
from pipelines.evaluation.runs import get_run, run_dataset
from pipelines.pagination import Paged, after_key, next_cursor

log = structlog.get_logger()

if TYPE_CHECKING:
    from pipelines.evaluation.service import RunComparison


def timestamp(moment: datetime) -> str:
    """A UTC time as RFC 3339 with `Z`, the way the API's response models write times."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def subject(run: EvaluationRun) -> str:
    """How a run's subject reads: model version (alias) or predictions file."""
    if run.registered_model_name:
        alias = f" ({run.model_alias})" if run.model_alias else ""
        return f"{run.registered_model_name}@{run.model_version}{alias}"
    return f"predictions {run.predictions_filename}"


def _model(run: EvaluationRun) -> ModelRef | None:
    if not run.registered_model_name:
        return None
    return ModelRef(
        name=run.registered_model_name, version=run.model_version, alias=run.model_alias
    )


def _dataset(dataset: GoldenDataset, version: GoldenDatasetVersion) -> DatasetRef:
    return DatasetRef(name=dataset.name, version=version.version, sha256=version.content_hash)


def _summary_fields(
    run: EvaluationRun, dataset: GoldenDataset, version: GoldenDatasetVersion
) -> dict[str, Any]:
    return {
        "id": run.id,
        "status": run.status,
        "task": run.task,
        "agent_type": run.agent_type,
        "subject": subject(run),
        "model": _model(run),
        "predictions_file": run.predictions_filename,
        "examples": run.example_count,
        "golden_dataset": _dataset(dataset, version),
        "created_at": run.created_at,
        "finished_at": run.finished_at,
    }


def evaluation_summary(
    run: EvaluationRun, dataset: GoldenDataset, version: GoldenDatasetVersion
) -> EvaluationSummary:
    """A run as listed, with the dataset version it evaluated."""
    return EvaluationSummary(**_summary_fields(run, dataset, version))


def evaluation_detail(
    session: Session, *, organization_id: uuid.UUID, run_id: uuid.UUID | str
) -> EvaluationDetail:
    """A run with its dataset version, progress, metrics and CIs (overall and per slice)."""
    run = get_run(session, organization_id=organization_id, run_id=run_id)
    dataset, version = run_dataset(session, organization_id=organization_id, run=run)
    runs = EvaluationRepository(session)
    metrics = runs.metrics(run.id)
    policy = reading_policy(run)
    overall = [Metric.of(m, **policy) for m in metrics if m.slice == ""]
    quality = next((m for m in overall if m.name == "quality_score"), None)
    slices: dict[str, list[Metric]] = {}
    for m in metrics:
        if m.slice:
            slices.setdefault(m.slice, []).append(Metric.of(m, **policy))
    stored_batches = (
        len(runs.stored_batches(run.id)) if run.status != RunStatus.COMPLETED else run.batch_count
    )
    classification = run.task == "classification"
    labels = run.config.get("labels") or (version.label_set if classification else None)
    return EvaluationDetail(
        **_summary_fields(run, dataset, version),
        progress=Progress(batches_done=stored_batches, batches_total=run.batch_count),
        config=run.config,
        mlflow_run_id=run.mlflow_run_id,
        flow_run_id=run.flow_run_id,
        error=run.error,
        quality_score=quality,
        metrics=overall,
        slices=[
            SliceMetrics(
                slice=name,
                metrics=rows,
                averaged_over=averaged_over(rows) if classification else None,
            )
            for name, rows in sorted(slices.items())
        ],
        labels=list(labels) if labels else None,
        averaged_over=averaged_over(overall) if classification and overall else None,
        confusion_matrix=(
            ConfusionMatrix.model_validate(run.confusion_matrix) if run.confusion_matrix else None
        ),
        scoring_signatures=run.scoring_signatures,
    )


def reading_policy(run: EvaluationRun) -> dict[str, Any]:
    """How a run's metrics are flagged: its minimum n and its quality score's parts."""
    options = (run.config or {}).get("options") or {}
    weights = (run.config or {}).get("quality_weights") or {}
    return {
        "min_n": int(options.get("min_n", intervals.DEFAULT_MIN_N)),
        "parts": tuple(weights),
    }


def averaged_over(metrics: list[Metric]) -> list[str]:
    """The labels macro averages ran over: those with support, i.e. a defined recall."""
    return [m.label for m in metrics if m.name == "recall" and m.label and m.value is not None]


def run_detail(
    session: Session, *, organization_id: uuid.UUID, run_id: uuid.UUID | str
) -> dict[str, Any]:
    """`evaluation_detail` as the JSON document the API serves and the cache stores."""
    return evaluation_detail(session, organization_id=organization_id, run_id=run_id).model_dump(
        mode="json"
    )


def encode(document: dict[str, Any]) -> bytes:
    """Compact JSON bytes of a document, as cached and served."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def warm_run_detail(
    session: Session, settings: CacheSettings, *, organization_id: uuid.UUID, run_id: uuid.UUID
) -> None:
    """Put a finished run's detail into the shared cache before anyone asks for it.

    Drops what was cached from the run before (its tag), so a reader never gets an older
    document. Without Redis there is no shared cache and nothing is read.
    """
    if settings.redis_url is None:
        return
    from models.cache.cache import warm  # Redis's client, only where a cache is warmed

    document = run_detail(session, organization_id=organization_id, run_id=run_id)
    warm(
        settings, run_detail_key(organization_id, run_id), encode(document), tags=[run_tag(run_id)]
    )


def compare_runs(
    session: Session,
    *,
    organization_id: uuid.UUID,
    run_a: uuid.UUID | str,
    run_b: uuid.UUID | str,
    primary: str | None = None,
) -> RunComparison:
    """`service.compare_runs`, imported when first needed: it brings the scoring stack."""
    from pipelines.evaluation.service import compare_runs as compare

    return compare(
        session, organization_id=organization_id, run_a=run_a, run_b=run_b, primary=primary
    )


def comparison(result: RunComparison) -> ComparisonView:
    """A paired comparison as readers see it, with each run's own overall metrics."""
    return ComparisonView(
        run_a=RunRef(
            id=result.run_a.id,
            subject=subject(result.run_a),
            metrics=[
                Metric.of(m, **reading_policy(result.run_a)) for m in result.metrics_a.values()
            ],
        ),
        run_b=RunRef(
            id=result.run_b.id,
            subject=subject(result.run_b),
            metrics=[
                Metric.of(m, **reading_policy(result.run_b)) for m in result.metrics_b.values()
            ],
        ),
        task=result.run_a.task,
        n=result.comparison.n,
        overall=list(result.comparison.overall),
        slices=list(result.comparison.slices),
        mcnemar=list(result.comparison.mcnemar),
        labels=list(result.labels) if result.labels else None,
        scoring_options=result.scoring_options,
        quality_weights=(
            QualityWeightsUsed(
                agent_type=result.quality.agent_type,
                weights=dict(result.quality.weights),
                source=result.quality_source or "declared",
            )
            if result.quality is not None
            else None
        ),
        verdict=result.comparison.verdict,
    )


def comparison_payload(result: RunComparison) -> dict[str, Any]:
    """`comparison` as the JSON document the API serves and the cache stores."""
    return comparison(result).model_dump(mode="json")


def runs_page(
    session: Session, *, organization_id: uuid.UUID, cursor: str | None, limit: int
) -> Paged[EvaluationSummary]:
    """An organisation's runs, newest first, with the dataset version each evaluated."""
    page = EvaluationRepository(session).page_with_datasets(
        organization_id, after=after_key(cursor, EvaluationRepository.ORDER), limit=limit
    )
    return Paged([evaluation_summary(*row) for row in page.items], next_cursor(page))


def run_examples_page(
    session: Session,
    *,
    organization_id: uuid.UUID,
    run_id: uuid.UUID | str,
    cursor: str | None,
    limit: int,
) -> Paged[ExampleScore]:
    """Per-example predictions and scores of a run, by example id."""
    run = get_run(session, organization_id=organization_id, run_id=run_id)
    after = after_key(cursor, EvaluationRepository.SCORE_ORDER)
    page = EvaluationRepository(session).page_scores(run.id, after=after, limit=limit)
    return Paged([ExampleScore.model_validate(row) for row in page.items], next_cursor(page))


def quality_scores_page(
    session: Session,
    *,
    organization_id: uuid.UUID,
    agent_type: str | None,
    cursor: str | None,
    limit: int,
) -> Paged[QualityScorePoint]:
    """The quality score of each completed run, oldest finished first: a time series."""
    page = EvaluationRepository(session).quality_scores(
        organization_id,
        agent_type=agent_type,
        after=after_key(cursor, EvaluationRepository.QUALITY_ORDER),
        limit=limit,
    )
    return Paged(
        [
            QualityScorePoint(
                run_id=run.id,
                finished_at=_finished(run),
                agent_type=run.agent_type,
                task=run.task,
                subject=subject(run),
                model=_model(run),
                value=metric.value,
                ci_low=metric.ci_low,
                ci_high=metric.ci_high,
                n=metric.n,
            )
            for run, metric in page.items
        ],
        next_cursor(page),
    )


def _finished(run: EvaluationRun) -> datetime:
    assert run.finished_at is not None, "completed runs have finished_at"
    return run.finished_at


def run_summary(
    session: Session, *, organization_id: uuid.UUID, run_id: uuid.UUID | str
) -> EvaluationSummary:
    """A run as listed, with the dataset version it evaluated."""
    run = get_run(session, organization_id=organization_id, run_id=run_id)
    dataset, version = run_dataset(session, organization_id=organization_id, run=run)
    return evaluation_summary(run, dataset, version)


def runs_across_organizations_page(
    session: Session,
    *,
    organization_id: uuid.UUID | None = None,
    agent_type: str | None = None,
    model_name: str | None = None,
    dataset_name: str | None = None,
    status: str | None = None,
    cursor: str | None,
    limit: int,
) -> Paged[OrganizationRunSummary]:
    """Runs of every organisation (or one), newest first: what the provider's analysts browse."""
    page = EvaluationRepository(session).page_across_organizations(
        organization_id=organization_id,
        agent_type=agent_type,
        model_name=model_name,
        dataset_name=dataset_name,
        status=status,
        after=after_key(cursor, EvaluationRepository.ORDER),
        limit=limit,
    )
    return Paged(
        [
            OrganizationRunSummary(
                **_summary_fields(run, dataset, version), organization=organization.slug
            )
            for run, dataset, version, organization in page.items
        ],
        next_cursor(page),
    )


def run_owner(session: Session, run_id: str) -> uuid.UUID:
    """The organisation that owns a run, given its full id (provider views see every one)."""
    try:
        parsed = uuid.UUID(run_id)
    except ValueError:
        raise InvalidInput(f"{run_id!r} is not a run id", field="run_id") from None
    owner = EvaluationRepository(session).organization_of(parsed)
    if owner is None:
        raise NotFound(f"evaluation run {parsed} not found", field="run_id")
    return owner


def pair_owner(session: Session, run_a: str, run_b: str) -> uuid.UUID:
    """The organisation owning both runs (full ids); two organisations' runs are not compared."""
    owner = run_owner(session, run_a)
    if run_owner(session, run_b) != owner:
        raise InvalidInput("both runs must belong to the same organisation", field="run_b")
    return owner


def per_example_metrics(
    session: Session, *, organization_id: uuid.UUID, run_id: uuid.UUID
) -> list[str]:
    """The numeric per-example scores a run stored (what an example table can filter on)."""
    run = get_run(session, organization_id=organization_id, run_id=run_id)
    page = EvaluationRepository(session).page_scores(run.id, after=None, limit=1)
    if not page.items:
        return []
    scores = page.items[0].scores
    return sorted(
        name
        for name, value in scores.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    )


def paired_examples_page(
    session: Session,
    *,
    organization_id: uuid.UUID,
    run_a: uuid.UUID | str,
    run_b: uuid.UUID | str,
    storage_dir: Path,
    metric: str,
    show: str,
    threshold: float | None,
    cursor: str | None,
    limit: int,
) -> Paged[PairedExample]:
    """Examples of two runs side by side with the golden input and expected text.

    Filtered on one per-example metric: every example, the regressed (B < A), the improved
    (B > A), or those where B is below `threshold`. Only one page is read, from the database and
    from the golden dataset's file.
    """
    first = get_run(session, organization_id=organization_id, run_id=run_a)
    second = get_run(session, organization_id=organization_id, run_id=run_b)
    if first.golden_dataset_version_id != second.golden_dataset_version_id:
        raise InvalidInput(
            "the two runs evaluated different golden dataset versions; pick runs on the same one",
            field="run_b",
        )
    if metric not in per_example_metrics(session, organization_id=organization_id, run_id=first.id):
        raise InvalidInput(f"run {first.id} has no per-example metric {metric!r}", field="metric")
    runs = EvaluationRepository(session)
    page = runs.page_paired_scores(
        first.id,
        second.id,
        metric=metric,
        show=show,
        threshold=threshold,
        after=after_key(cursor, EvaluationRepository.PAIRED_ORDER),
        limit=limit,
    )
    _, version = run_dataset(session, organization_id=organization_id, run=first)
    golden = _golden_texts(
        storage_dir / version.storage_path, [a.example_id for a, _ in page.items]
    )
    items = []
    for a, b in page.items:
        value_a, value_b = _number(a.scores.get(metric)), _number(b.scores.get(metric))
        source, expected = golden.get(a.example_id, (None, None))
        items.append(
            PairedExample(
                example_id=a.example_id,
                slice=a.slice,
                input=source,
                expected=expected,
                prediction_a=a.prediction,
                prediction_b=b.prediction,
                score_a=value_a,
                score_b=value_b,
                difference=None if value_a is None or value_b is None else value_b - value_a,
            )
        )
    return Paged(items, next_cursor(page))


def paired_counts(
    session: Session, *, organization_id: uuid.UUID, run_a: uuid.UUID, run_b: uuid.UUID, metric: str
) -> dict[str, int]:
    """How many examples regressed, improved or stayed equal between two runs on `metric`."""
    first = get_run(session, organization_id=organization_id, run_id=run_a)
    second = get_run(session, organization_id=organization_id, run_id=run_b)
    return EvaluationRepository(session).count_paired(first.id, second.id, metric=metric)


def _golden_texts(path: Path, example_ids: list[str]) -> dict[str, tuple[str, str]]:
    if not example_ids or not path.exists():
        return {}
    table = pq.read_table(
        path, columns=["id", "input", "expected"], filters=[("id", "in", example_ids)]
    )
    rows = table.to_pydict()
    return {
        example_id: (source, expected)
        for example_id, source, expected in zip(
            rows["id"], rows["input"], rows["expected"], strict=True
        )
    }


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def alias_moves(session: Session, *, model_names: set[str], limit: int = 500) -> list[AliasMove]:
    """When an alias of one of these registered models moved, and to which version, oldest first."""
    page = AuditRepository(session).page_matching(action="model_alias.moved", limit=limit)
    moves = []
    for entry, _ in page.items:
        name, _, alias = entry.target_id.partition("@")
        if name in model_names:
            version = entry.details.get("to_version")
            moves.append(
                AliasMove(
                    at=entry.occurred_at,
                    model=name,
                    alias=alias,
                    version=None if version is None else str(version),
                )
            )
    return sorted(moves, key=lambda move: move.at)


# --- comparisons computed off the request path ------------------------------------------------
# A paired comparison of two 100,000-example runs costs about a minute of CPU (paired bootstrap
# over every example), too long for a page or an API request to wait for. When a run completes,
# the evaluation flow compares it with its agent type's champion run on the same dataset version
# and stores the document here (`comparison_payload`, the one read model), as `warm_run_detail`
# puts a finished run's detail in the cache: readers then cannot tell which path answered.

CHAMPION_REASON = "champion"
"""Why a comparison was stored: a completed run against its agent type's champion run."""


@dataclass(frozen=True)
class ChampionComparison:
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
    reason: str = CHAMPION_REASON,
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
) -> ChampionComparison:
    """Store the comparison of a completed run (B) with the champion's run (A): the newest
    completed run of the champion model version (`champion`: name, version) on the same
    dataset version in the same organisation. Nothing is compared when there is no champion,
    no such run, or the run is the champion's own."""
    run = get_run(session, organization_id=organization_id, run_id=run_id)
    if champion is None:
        return ChampionComparison(None, run.id, False, "no champion model version")
    name, version = champion
    if (run.registered_model_name, run.model_version) == (name, version):
        return ChampionComparison(None, run.id, False, "the run is the champion's")
    baseline = ComparisonRepository(session).latest_completed_run(
        organization_id,
        registered_model_name=name,
        model_version=version,
        golden_dataset_version_id=run.golden_dataset_version_id,
        excluding=run.id,
    )
    if baseline is None:
        return ChampionComparison(
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
    return ChampionComparison(baseline.id, run.id, stored, "stored" if stored else "already stored")
