"""profitability: incremental rollup by day

Revision ID: 0015_profit_incremental
Revises: 0013_profit_daily
Create Date: 2026-12-02 04:00:00.000000

The rollup keeps each tenant-day's exact usage (`profitability_day_usage`), each
tenant-month's (`profitability_month_usage`, the sums of its days) and the month's job ids and
end-user keys (`profitability_month_keys`), so a new or late event costs re-aggregating its
day, not its month. Loads mark tenant-days (`profitability_dirty_days`, versioned as the
tenant-month marks). Every tenant-month with events is marked here, so the next rollup builds
the new tables from the events. Row-level security as in 0009: the platform's alone.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.db.base

revision: str = "0015_profit_incremental"
down_revision: str | None = "0013_profit_daily"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
PLATFORM_ROLE = "streamflow_system"
APP_ROLE = "streamflow_app"
TABLES = (
    "profitability_dirty_days",
    "profitability_day_usage",
    "profitability_month_usage",
    "profitability_month_keys",
)
SUMS = (
    "events",
    "tokens_in",
    "tokens_out",
    "requests",
    "cost_thousandths",
    "unpriced_events",
    "jobs",
    "ai_jobs",
    "users",
    "ai_users",
)


def _organization(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["organization_id"],
        ["organizations.id"],
        name=op.f(f"fk_{table}_organization_id_organizations"),
        ondelete="CASCADE",
    )


def _usage(table: str, period: str) -> None:
    op.create_table(
        table,
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column(period, sa.Date(), nullable=False),
        *(sa.Column(name, BIG, nullable=False) for name in SUMS),
        sa.Column("breakdown", sa.Text(), nullable=False),
        _organization(table),
        sa.PrimaryKeyConstraint("organization_id", period, name=op.f(f"pk_{table}")),
    )


def upgrade() -> None:
    op.create_table(
        "profitability_dirty_days",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("marked_at", models.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("version", BIG, nullable=False, server_default="1"),
        _organization("profitability_dirty_days"),
        sa.PrimaryKeyConstraint("organization_id", "day", name=op.f("pk_profitability_dirty_days")),
    )
    _usage("profitability_day_usage", "day")
    _usage("profitability_month_usage", "month")
    op.create_table(
        "profitability_month_keys",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=1), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("ai", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint(
            "organization_id", "month", "kind", "key", name=op.f("pk_profitability_month_keys")
        ),
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        for table in TABLES:
            op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {PLATFORM_ROLE}")
            op.execute(f"REVOKE ALL ON {table} FROM {APP_ROLE}")
            op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
            op.execute(
                f"CREATE POLICY {table}_platform ON {table} FOR ALL TO {PLATFORM_ROLE} "
                "USING (true) WITH CHECK (true)"
            )
        month = "date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date"
        now = "now()"
    else:
        month = "date(occurred_at, 'start of month')"
        now = "CURRENT_TIMESTAMP"
    # The months stored so far were computed from events: build their usage from them.
    op.execute(
        "INSERT INTO profitability_dirty_periods (organization_id, month, marked_at) "
        f"SELECT DISTINCT organization_id, {month}, {now} FROM usage_events WHERE true "
        "ON CONFLICT (organization_id, month) DO UPDATE SET "
        "version = profitability_dirty_periods.version + 1"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP POLICY IF EXISTS {table}_platform ON {table}")
    for table in reversed(TABLES):
        op.drop_table(table)
