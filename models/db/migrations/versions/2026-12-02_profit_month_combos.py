"""profitability: a month's usage by agent type and model version as rows

Revision ID: 0017_profit_month_combos
Revises: 0016_usage_load
Create Date: 2026-12-02 15:00:00.000000

A tenant-month's usage by agent type and model version moves from a JSON breakdown in
`profitability_month_usage` (rewritten whole, and parsed twice, for every new day) to rows of
`profitability_month_combos`, kept by difference: a new day writes the few combinations it
used. Every tenant-month with stored usage is marked, so the next rollup builds its rows from
the events. Row-level security as in 0009: the platform's alone.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_profit_month_combos"
down_revision: str | None = "0016_usage_load"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
PLATFORM_ROLE = "streamflow_system"
APP_ROLE = "streamflow_app"
TABLE = "profitability_month_combos"
SUMS = ("events", "tokens_in", "tokens_out", "requests", "cost", "unpriced_events")


def _mark_stored_months() -> None:
    now = "now()" if op.get_bind().dialect.name == "postgresql" else "CURRENT_TIMESTAMP"
    op.execute(
        "INSERT INTO profitability_dirty_periods (organization_id, month, marked_at) "
        f"SELECT organization_id, month, {now} FROM profitability_month_usage WHERE true "
        "ON CONFLICT (organization_id, month) DO UPDATE SET "
        "version = profitability_dirty_periods.version + 1"
    )


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("agent_type", sa.String(length=64), nullable=False),
        sa.Column("model_version", sa.String(length=200), nullable=False),
        *(sa.Column(name, BIG, nullable=False) for name in SUMS),
        sa.PrimaryKeyConstraint(
            "organization_id",
            "month",
            "agent_type",
            "model_version",
            name=op.f("pk_profitability_month_combos"),
        ),
    )
    with op.batch_alter_table("profitability_month_usage", schema=None) as batch_op:
        batch_op.drop_column("breakdown")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {TABLE} TO {PLATFORM_ROLE}")
        op.execute(f"REVOKE ALL ON {TABLE} FROM {APP_ROLE}")
        op.execute(f"ALTER TABLE {TABLE} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {TABLE} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY {TABLE}_platform ON {TABLE} FOR ALL TO {PLATFORM_ROLE} "
            "USING (true) WITH CHECK (true)"
        )
    _mark_stored_months()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP POLICY IF EXISTS {TABLE}_platform ON {TABLE}")
    op.drop_table(TABLE)
    with op.batch_alter_table("profitability_month_usage", schema=None) as batch_op:
        batch_op.add_column(sa.Column("breakdown", sa.Text(), nullable=False, server_default="[]"))
    _mark_stored_months()
