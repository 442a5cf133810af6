"""Golden dataset use cases: import a file as an immutable version, list, show, diff."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import structlog
from sqlalchemy.orm import Session

from models.db.repositories.audit import record_audit
from models.db.repositories.golden_datasets import GoldenDatasetRepository
from models.db.tables import GoldenDataset, GoldenDatasetVersion
from pipelines.errors import Conflict, InvalidInput, NotFound
from pipelines.golden_datasets.schema import GoldenDatasetTask
from pipelines.golden_datasets.validation import DEFAULT_MAX_ROW_BYTES, read_golden_file
from pipelines.golden_datasets.versions import VersionDiff, diff_versions

log = structlog.get_logger()


@dataclass(frozen=True)
class ImportResult:
    """The version an import produced or found, and whether it is new."""

    dataset: GoldenDataset
    version: GoldenDatasetVersion
    created: bool


@dataclass(frozen=True)
class DatasetReference:
    """`NAME` or `NAME@VERSION` as users type it."""

    name: str
    version: int | None

    @classmethod
    def parse(cls, text: str) -> DatasetReference:
        name, _, version = text.strip().partition("@")
        if not name:
            raise InvalidInput(f"dataset reference {text!r} is empty; use NAME or NAME@VERSION")
        if version and not version.isdigit():
            raise InvalidInput(
                f"dataset reference {text!r}: version {version!r} must be a number, e.g. {name}@2"
            )
        return cls(name=name, version=int(version) if version else None)


def import_golden_dataset(
    session: Session,
    *,
    organization_id: uuid.UUID,
    actor: str,
    name: str,
    task: str,
    data: bytes,
    filename: str,
    storage_dir: Path,
    labels: Sequence[str] | None = None,
    max_row_bytes: int = DEFAULT_MAX_ROW_BYTES,
) -> ImportResult:
    """Validate a file and store it as the next version of `name` (or find the same content).

    A classification dataset's label set is `labels` when given (every `expected` value must
    be one of them), else its `expected` values; it is stored with the version, and every run
    on the version is scored against it. `max_row_bytes` caps a row's text (UTF-8 bytes).
    """
    try:
        parsed_task = GoldenDatasetTask(task)
    except ValueError:
        choices = ", ".join(t.value for t in GoldenDatasetTask)
        raise InvalidInput(f"task {task!r} is not one of: {choices}", field="task") from None
    validated = read_golden_file(
        data, filename=filename, task=parsed_task, labels=labels, max_row_bytes=max_row_bytes
    )
    datasets = GoldenDatasetRepository(session)
    dataset = datasets.get_owned(organization_id, name)
    if dataset is None:
        dataset = datasets.add(organization_id=organization_id, name=name, task=parsed_task.value)
    elif dataset.task != parsed_task.value:
        raise Conflict(
            f"golden dataset {name!r} is a {dataset.task} dataset; import it as task "
            f"{dataset.task} or choose another name",
            field="task",
        )
    existing = datasets.get_version_by_hash(dataset.id, validated.content_hash)
    if existing is not None:
        log.info("golden_dataset.import_unchanged", dataset=name, version=existing.version)
        return ImportResult(dataset=dataset, version=existing, created=False)

    latest = datasets.get_version(dataset.id)
    number = 1 if latest is None else latest.version + 1
    relative = Path(str(dataset.id)) / f"{validated.content_hash}.parquet"
    _write_parquet_atomically(validated.frame, storage_dir / relative)
    slices = validated.frame["slice"].fillna("").astype(str)
    version = datasets.add_version(
        GoldenDatasetVersion(
            golden_dataset_id=dataset.id,
            version=number,
            content_hash=validated.content_hash,
            row_count=len(validated.frame),
            storage_path=relative.as_posix(),
            source_filename=Path(filename).name,
            slice_counts={k: int(v) for k, v in slices[slices != ""].value_counts().items()},
            label_set=None if validated.label_set is None else list(validated.label_set),
        )
    )
    record_audit(
        session,
        "golden_dataset_version.created",
        version.id,
        actor=actor,
        organization_id=organization_id,
        details={
            "dataset": name,
            "version": number,
            "content_hash": validated.content_hash,
            "rows": len(validated.frame),
            "labels": None if validated.label_set is None else len(validated.label_set),
        },
    )
    log.info("golden_dataset.imported", dataset=name, version=number, rows=len(validated.frame))
    return ImportResult(dataset=dataset, version=version, created=True)


def _write_parquet_atomically(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(handle)
    try:
        frame.to_parquet(temporary, index=False)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def resolve_version(
    session: Session, *, organization_id: uuid.UUID, reference: str
) -> tuple[GoldenDataset, GoldenDatasetVersion]:
    """The dataset and version a `NAME[@VERSION]` reference names for this organisation."""
    parsed = DatasetReference.parse(reference)
    datasets = GoldenDatasetRepository(session)
    dataset = datasets.get_by_name(organization_id, parsed.name)
    if dataset is None:
        raise NotFound(f"golden dataset {parsed.name!r} not found", field="dataset")
    version = datasets.get_version(dataset.id, parsed.version)
    if version is None:
        raise NotFound(
            f"golden dataset {parsed.name!r} has no version {parsed.version}; "
            f"the dataset's versions list the ones there are",
            field="dataset",
        )
    return dataset, version


def load_version_frame(storage_dir: Path, version: GoldenDatasetVersion) -> pd.DataFrame:
    """The rows of a stored version (id, input, expected, slice, tags), ordered by id."""
    path = storage_dir / version.storage_path
    if not path.exists():
        raise NotFound(f"the file of golden dataset version {version.id} is missing at {path}")
    frame = pd.read_parquet(path)
    if len(frame) != version.row_count:
        raise Conflict(f"stored file {path} has {len(frame)} rows, expected {version.row_count}")
    return frame


def list_datasets(
    session: Session, *, organization_id: uuid.UUID, after: str | None = None, limit: int = 100
) -> list[tuple[GoldenDataset, GoldenDatasetVersion | None]]:
    """Datasets this organisation may use, with their latest version, up to `limit` after a name."""
    datasets = GoldenDatasetRepository(session)
    return datasets.page_visible(
        organization_id, after=(after,) if after else None, limit=limit
    ).items


def list_versions(
    session: Session, *, organization_id: uuid.UUID, name: str
) -> tuple[GoldenDataset, list[GoldenDatasetVersion]]:
    """A dataset and all of its versions."""
    datasets = GoldenDatasetRepository(session)
    dataset = datasets.get_by_name(organization_id, name)
    if dataset is None:
        raise NotFound(f"golden dataset {name!r} not found", field="dataset")
    return dataset, datasets.versions(dataset.id)


def version_labels(version: GoldenDatasetVersion, expected: Sequence[str]) -> tuple[str, ...]:
    """A classification version's label set: stored at import, else (versions imported before
    label sets were stored) its `expected` values, sorted."""
    if version.label_set is not None:
        return tuple(version.label_set)
    return tuple(sorted({str(value) for value in expected}))


def diff(
    session: Session, *, organization_id: uuid.UUID, storage_dir: Path, old: str, new: str
) -> VersionDiff:
    """Added, removed and changed example ids between two versions."""
    _, old_version = resolve_version(session, organization_id=organization_id, reference=old)
    _, new_version = resolve_version(session, organization_id=organization_id, reference=new)
    return diff_versions(
        load_version_frame(storage_dir, old_version), load_version_frame(storage_dir, new_version)
    )
