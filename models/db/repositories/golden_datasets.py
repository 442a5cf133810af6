"""Golden datasets and their immutable versions."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, or_, select

from models.db.base import new_id
from models.db.repositories.base import Key, Keyset, KeysetPage, Repository
from models.db.tables import GoldenDataset, GoldenDatasetVersion, Organization


class GoldenDatasetRepository(Repository):
    """SQL for golden datasets, scoped to what one organisation may see.

    An organisation sees its own datasets and the provider's shared ones; its own win on a
    name clash.
    """

    ORDER = Keyset.of(GoldenDataset.name)
    """Listings run by name."""

    def _visible(self, organization_id: uuid.UUID) -> Any:
        provider_ids = select(Organization.id).where(Organization.kind == "provider")
        return or_(
            GoldenDataset.organization_id == organization_id,
            GoldenDataset.organization_id.in_(provider_ids),
        )

    def get_by_name(self, organization_id: uuid.UUID, name: str) -> GoldenDataset | None:
        rows = self.session.scalars(
            select(GoldenDataset).where(self._visible(organization_id), GoldenDataset.name == name)
        ).all()
        own = [row for row in rows if row.organization_id == organization_id]
        candidates = own or list(rows)
        return candidates[0] if candidates else None

    def get_owned(self, organization_id: uuid.UUID, name: str) -> GoldenDataset | None:
        return self.session.scalars(
            select(GoldenDataset).where(
                GoldenDataset.organization_id == organization_id, GoldenDataset.name == name
            )
        ).first()

    def add(self, *, organization_id: uuid.UUID, name: str, task: str) -> GoldenDataset:
        """The organisation's dataset `name`, created unless a concurrent import created it
        first (then that one, whatever its task)."""
        self.insert_unless_taken(
            GoldenDataset,
            {"id": new_id(), "organization_id": organization_id, "name": name, "task": task},
        )
        dataset = self.get_owned(organization_id, name)
        assert dataset is not None, "a dataset just inserted or found taken must be readable"
        return dataset

    def page_visible(
        self, organization_id: uuid.UUID, *, after: Key | None = None, limit: int = 100
    ) -> KeysetPage[tuple[GoldenDataset, GoldenDatasetVersion | None]]:
        """Datasets in `ORDER` with their latest version."""
        latest = (
            select(
                GoldenDatasetVersion.golden_dataset_id,
                func.max(GoldenDatasetVersion.version).label("version"),
            )
            .group_by(GoldenDatasetVersion.golden_dataset_id)
            .subquery()
        )
        query = (
            select(GoldenDataset, GoldenDatasetVersion)
            .outerjoin(latest, latest.c.golden_dataset_id == GoldenDataset.id)
            .outerjoin(
                GoldenDatasetVersion,
                (GoldenDatasetVersion.golden_dataset_id == GoldenDataset.id)
                & (GoldenDatasetVersion.version == latest.c.version),
            )
            .where(self._visible(organization_id))
        )
        return self.page(query, self.ORDER, after=after, limit=limit)

    def versions(self, golden_dataset_id: uuid.UUID) -> list[GoldenDatasetVersion]:
        return list(
            self.session.scalars(
                select(GoldenDatasetVersion)
                .where(GoldenDatasetVersion.golden_dataset_id == golden_dataset_id)
                .order_by(GoldenDatasetVersion.version)
            )
        )

    def get_version(
        self, golden_dataset_id: uuid.UUID, version: int | None = None
    ) -> GoldenDatasetVersion | None:
        """A version by number, or the latest when `version` is None."""
        query = select(GoldenDatasetVersion).where(
            GoldenDatasetVersion.golden_dataset_id == golden_dataset_id
        )
        if version is None:
            query = query.order_by(GoldenDatasetVersion.version.desc())
        else:
            query = query.where(GoldenDatasetVersion.version == version)
        return self.session.scalars(query.limit(1)).first()

    def get_version_by_id(
        self, organization_id: uuid.UUID, version_id: uuid.UUID
    ) -> tuple[GoldenDataset, GoldenDatasetVersion] | None:
        row = self.session.execute(
            select(GoldenDataset, GoldenDatasetVersion)
            .join(GoldenDatasetVersion, GoldenDatasetVersion.golden_dataset_id == GoldenDataset.id)
            .where(GoldenDatasetVersion.id == version_id, self._visible(organization_id))
        ).first()
        return None if row is None else (row[0], row[1])

    def get_version_by_hash(
        self, golden_dataset_id: uuid.UUID, content_hash: str
    ) -> GoldenDatasetVersion | None:
        return self.session.scalars(
            select(GoldenDatasetVersion).where(
                GoldenDatasetVersion.golden_dataset_id == golden_dataset_id,
                GoldenDatasetVersion.content_hash == content_hash,
            )
        ).first()

    def add_version(self, version: GoldenDatasetVersion) -> GoldenDatasetVersion | None:
        """Store `version`; None when its number or content is taken already (a concurrent
        import stored one first): read again and decide."""
        version.id = version.id or new_id()
        values = {
            column.key: getattr(version, column.key)
            for column in GoldenDatasetVersion.__table__.columns
            if getattr(version, column.key) is not None
        }
        if not self.insert_unless_taken(GoldenDatasetVersion, values):
            return None
        return self.session.get(GoldenDatasetVersion, version.id)
