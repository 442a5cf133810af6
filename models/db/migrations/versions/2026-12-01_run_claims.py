"""run claims: one active run per identity, claimed by one flow at a time

Revision ID: 0008_runs
Revises: 0007_domains
Create Date: 2026-12-01 06:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.db.base

revision: str = "0008_runs"
down_revision: str | None = "0007_domains"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE = "status IN ('pending', 'running')"
IDENTITY = ("organization_id", "subject_key", "golden_dataset_version_id", "config_hash")
SUPERSEDED = (
    "superseded by a newer run of the same model version, dataset version and config; "
    "read that run instead"
)


def upgrade() -> None:
    with op.batch_alter_table("evaluation_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("heartbeat_at", models.db.base.UtcDateTime(timezone=True), nullable=True)
        )
    # Before the index can hold, only the newest active run of an identity stays active.
    same_identity = " AND ".join(f"newer.{c} = evaluation_runs.{c}" for c in IDENTITY)
    op.execute(
        sa.text(
            "UPDATE evaluation_runs SET status = 'failed', error = :reason "
            f"WHERE {ACTIVE} AND EXISTS (SELECT 1 FROM evaluation_runs newer "
            f"WHERE {same_identity} AND newer.{ACTIVE} AND (newer.created_at > "
            "evaluation_runs.created_at OR (newer.created_at = evaluation_runs.created_at "
            "AND newer.id > evaluation_runs.id)))"
        ).bindparams(reason=SUPERSEDED)
    )
    op.create_index(
        "uq_evaluation_runs_active",
        "evaluation_runs",
        list(IDENTITY),
        unique=True,
        sqlite_where=sa.text(ACTIVE),
        postgresql_where=sa.text(ACTIVE),
    )


def downgrade() -> None:
    op.drop_index("uq_evaluation_runs_active", table_name="evaluation_runs")
    with op.batch_alter_table("evaluation_runs", schema=None) as batch_op:
        batch_op.drop_column("heartbeat_at")
        batch_op.drop_column("claimed_by")
