"""profitability: versioned dirty marks

Revision ID: 0013_profit_daily
Revises: 0012_comparisons
Create Date: 2026-12-02 00:45:00.000000

Each dirty mark of a tenant-month carries a `version`, raised every time the tenant-month is
marked again (new or late events, a price change). A rollup reads the versions of its
tenant-months before it extracts their events and clears only marks still at the version it
read: a mark made by an ingest that commits after the extract survives.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_profit_daily"
down_revision: str | None = "0012_comparisons"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("profitability_dirty_periods") as table:
        table.add_column(sa.Column("version", BIG, nullable=False, server_default="1"))


def downgrade() -> None:
    with op.batch_alter_table("profitability_dirty_periods") as table:
        table.drop_column("version")
