"""promotion gates, immutable promotion decisions, drift reports

Revision ID: 0011_promotion
Revises: 0010_experiments
Create Date: 2026-12-02 00:45:00

All three tables are the platform's: provider-level, with no organisation column. Row-level
security as in 0009_profitability (PostgreSQL only): enabled and forced, one permissive
`<table>_platform` policy for `streamflow_system`, nothing granted to `streamflow_app`.

Promotion decisions are evidence: triggers refuse UPDATE and DELETE on both backends.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import models.db.base

revision: str = "0011_promotion"
down_revision: str | None = "0010_experiments"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "streamflow_app"
PLATFORM_ROLE = "streamflow_system"
TABLES = ("promotion_gates", "promotion_decisions", "drift_reports")
IMMUTABLE = "promotion_decisions"
MESSAGE = "promotion decisions are immutable evidence"

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _enable_row_level_security() -> None:
    for table in TABLES:
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {PLATFORM_ROLE}")
        op.execute(f"REVOKE ALL ON {table} FROM {APP_ROLE}")
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY {table}_platform ON {table} FOR ALL TO {PLATFORM_ROLE} "
            "USING (true) WITH CHECK (true)"
        )


def _disable_row_level_security() -> None:
    for table in TABLES:
        op.execute(f"DROP POLICY IF EXISTS {table}_platform ON {table}")


def _create_immutability_triggers(dialect: str) -> None:
    if dialect == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION streamflow_refuse_change() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION '% (% refused)', TG_ARGV[0], TG_OP "
            "USING ERRCODE = 'integrity_constraint_violation'; END $$"
        )
        op.execute(
            f"CREATE TRIGGER {IMMUTABLE}_immutable BEFORE UPDATE OR DELETE ON {IMMUTABLE} "
            f"FOR EACH ROW EXECUTE FUNCTION streamflow_refuse_change('{MESSAGE}')"
        )
        op.execute(
            f"CREATE TRIGGER {IMMUTABLE}_no_truncate BEFORE TRUNCATE ON {IMMUTABLE} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION streamflow_refuse_change('{MESSAGE}')"
        )
    else:
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {IMMUTABLE}_no_{operation.lower()} BEFORE {operation} "
                f"ON {IMMUTABLE} BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
            )


def _drop_immutability_triggers(dialect: str) -> None:
    if dialect == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {IMMUTABLE}_immutable ON {IMMUTABLE}")
        op.execute(f"DROP TRIGGER IF EXISTS {IMMUTABLE}_no_truncate ON {IMMUTABLE}")
        op.execute("DROP FUNCTION IF EXISTS streamflow_refuse_change()")
    else:
        for operation in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {IMMUTABLE}_no_{operation}")


def upgrade() -> None:
    op.create_table(
        "promotion_gates",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("agent_type", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("config", JSON, nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", models.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotion_gates")),
        sa.UniqueConstraint(
            "agent_type", "version", name=op.f("uq_promotion_gates_agent_type_version")
        ),
    )
    op.create_table(
        "promotion_decisions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("agent_type", sa.String(length=64), nullable=False),
        sa.Column("experiment_id", sa.Uuid(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("champion_version", sa.String(length=200), nullable=False),
        sa.Column("challenger_version", sa.String(length=200), nullable=False),
        sa.Column("dataset_version_id", sa.Uuid(), nullable=True),
        sa.Column("dataset_digest", sa.String(length=64), nullable=True),
        sa.Column("window_start", models.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("window_end", models.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("gate_version", sa.Integer(), nullable=True),
        sa.Column("gate_config", JSON, nullable=False),
        sa.Column("evidence", JSON, nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("created_at", models.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "outcome IN ('promote', 'reject', 'wait')",
            name=op.f("ck_promotion_decisions_outcome"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotion_decisions")),
    )
    with op.batch_alter_table("promotion_decisions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_promotion_decisions_agent_created",
            ["agent_type", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index("ix_promotion_decisions_created", ["created_at", "id"], unique=False)
    op.create_table(
        "drift_reports",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("agent_type", sa.String(length=64), nullable=False),
        sa.Column("window_start", models.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("window_end", models.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("dataset_version_id", sa.Uuid(), nullable=True),
        sa.Column("dataset_digest", sa.String(length=64), nullable=True),
        sa.Column("n_current", sa.Integer(), nullable=False),
        sa.Column("n_reference", sa.Integer(), nullable=False),
        sa.Column("drift_share", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("drifted", sa.Boolean(), nullable=False),
        sa.Column("drifted_columns", JSON, nullable=False),
        sa.Column("html_path", sa.String(length=500), nullable=True),
        sa.Column("html_sha256", sa.String(length=64), nullable=True),
        sa.Column("created_at", models.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drift_reports")),
    )
    with op.batch_alter_table("drift_reports", schema=None) as batch_op:
        batch_op.create_index(
            "ix_drift_reports_agent_created", ["agent_type", "created_at", "id"], unique=False
        )
    dialect = op.get_bind().dialect.name
    _create_immutability_triggers(dialect)
    if dialect == "postgresql":
        _enable_row_level_security()


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        _disable_row_level_security()
    _drop_immutability_triggers(dialect)
    with op.batch_alter_table("drift_reports", schema=None) as batch_op:
        batch_op.drop_index("ix_drift_reports_agent_created")
    op.drop_table("drift_reports")
    with op.batch_alter_table("promotion_decisions", schema=None) as batch_op:
        batch_op.drop_index("ix_promotion_decisions_created")
        batch_op.drop_index("ix_promotion_decisions_agent_created")
    op.drop_table("promotion_decisions")
    op.drop_table("promotion_gates")
