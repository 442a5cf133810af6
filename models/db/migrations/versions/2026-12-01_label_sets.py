"""label sets, scoring signatures and confusion matrices

Revision ID: 0005_label_sets
Revises: 0004_dashboards
Create Date: 2026-12-01 06:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005_label_sets"
down_revision: str | None = "0004_dashboards"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("golden_dataset_versions") as table:
        table.add_column(sa.Column("label_set", JSON, nullable=True))
    with op.batch_alter_table("evaluation_runs") as table:
        table.add_column(sa.Column("scoring_signatures", JSON, nullable=True))
        table.add_column(sa.Column("confusion_matrix", JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("evaluation_runs") as table:
        table.drop_column("confusion_matrix")
        table.drop_column("scoring_signatures")
    with op.batch_alter_table("golden_dataset_versions") as table:
        table.drop_column("label_set")
