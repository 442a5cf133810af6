"""stored evaluation comparisons

Revision ID: 0012_comparisons
Revises: 0011_promotion
Create Date: 2026-12-02 00:45:00.000000

A paired comparison of two completed runs, computed by the evaluation flow when a run completes
(against its agent type's champion run) and read by the compare page and `/v1/comparisons`
instead of being computed on a request.

Row-level security as in 0003_rls / 0009_profitability (PostgreSQL only): enabled and forced,
one permissive `evaluation_comparisons_platform` policy for `streamflow_system` (the flow
writes, the dashboards read), and a tenant policy that reads the organisation's own rows only
(`streamflow_tenant()`); tenants write none.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.db.base

revision: str = "0012_comparisons"
down_revision: str | None = "0011_promotion"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "streamflow_app"
PLATFORM_ROLE = "streamflow_system"
TENANT = "(SELECT streamflow_tenant())"
TABLE = "evaluation_comparisons"


def _enable_row_level_security() -> None:
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {TABLE} TO {PLATFORM_ROLE}")
    op.execute(f"REVOKE ALL ON {TABLE} FROM {APP_ROLE}")
    op.execute(f"GRANT SELECT ON {TABLE} TO {APP_ROLE}")
    op.execute(f"ALTER TABLE {TABLE} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {TABLE} FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY {TABLE}_platform ON {TABLE} FOR ALL TO {PLATFORM_ROLE} "
        "USING (true) WITH CHECK (true)"
    )
    op.execute(
        f"CREATE POLICY {TABLE}_tenant_select ON {TABLE} FOR SELECT TO {APP_ROLE} "
        f"USING (organization_id = {TENANT})"
    )


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("run_a_id", sa.Uuid(), nullable=False),
        sa.Column("run_b_id", sa.Uuid(), nullable=False),
        sa.Column("document_version", sa.String(length=16), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("computed_at", models.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_evaluation_comparisons_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_a_id"],
            ["evaluation_runs.id"],
            name=op.f("fk_evaluation_comparisons_run_a_id_evaluation_runs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_b_id"],
            ["evaluation_runs.id"],
            name=op.f("fk_evaluation_comparisons_run_b_id_evaluation_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluation_comparisons")),
        sa.UniqueConstraint(
            "run_a_id",
            "run_b_id",
            "document_version",
            name=op.f("uq_evaluation_comparisons_run_a_id_run_b_id_document_version"),
        ),
    )
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_evaluation_comparisons_organization_id"),
            ["organization_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_evaluation_comparisons_run_b_id"), ["run_b_id"], unique=False
        )
    if op.get_bind().dialect.name == "postgresql":
        _enable_row_level_security()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP POLICY IF EXISTS {TABLE}_tenant_select ON {TABLE}")
        op.execute(f"DROP POLICY IF EXISTS {TABLE}_platform ON {TABLE}")
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evaluation_comparisons_run_b_id"))
        batch_op.drop_index(batch_op.f("ix_evaluation_comparisons_organization_id"))
    op.drop_table(TABLE)
