"""Prices (versions by effective date), periods to recompute, and tenants' profitability rows."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, cast

import pyarrow as pa
import pyarrow.csv as pa_csv
from sqlalchemy import Table, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import load_only

from models.db.repositories.base import Key, Keyset, KeysetPage, Repository
from models.db.tables import (
    AdoptionTierSchedule,
    AiCostRate,
    InfrastructureCostRule,
    Organization,
    ProfitabilityDirtyDay,
    ProfitabilityDirtyPeriod,
    TenantPlan,
    TenantProfitability,
    UsageEvent,
)

FIGURES = (
    "currency",
    "events",
    "tokens_in",
    "tokens_out",
    "requests",
    "subscription_micros",
    "overage_micros",
    "gross_revenue_micros",
    "discount_micros",
    "revenue_micros",
    "ai_cost_micros",
    "infra_cost_micros",
    "margin_micros",
    "margin_bps",
    "adoption_basis",
    "adoption_numerator",
    "adoption_denominator",
    "adoption_ppm",
    "tier",
    "discount_bps",
    "unpriced_events",
    "ai_cost_breakdown",
    "explanation",
)
"""The computed columns of a profitability row (all but its key and `computed_at`)."""
JSON_FIGURES = ("ai_cost_breakdown", "explanation")
TENANT_VISIBLE = (
    TenantProfitability.organization_id,
    TenantProfitability.period_kind,
    TenantProfitability.period_start,
    TenantProfitability.currency,
    TenantProfitability.events,
    TenantProfitability.tokens_in,
    TenantProfitability.tokens_out,
    TenantProfitability.requests,
    TenantProfitability.gross_revenue_micros,
    TenantProfitability.discount_micros,
    TenantProfitability.adoption_basis,
    TenantProfitability.adoption_numerator,
    TenantProfitability.adoption_denominator,
    TenantProfitability.adoption_ppm,
    TenantProfitability.tier,
    TenantProfitability.discount_bps,
    TenantProfitability.explanation,
    TenantProfitability.computed_at,
)
"""The columns a tenant reads of its own rows (on PostgreSQL its login may read no others):
usage and the discount explanation, never costs or margins."""


class ProfitabilityRepository(Repository):
    """SQL for prices, dirty periods and profitability rows."""

    PERIOD_ORDER = Keyset.of(
        TenantProfitability.period_start, TenantProfitability.organization_id, descending=True
    )
    """Analysts' listing: latest period first."""
    TREND_ORDER = Keyset.of(TenantProfitability.period_start)
    """A tenant's trend: oldest period first."""
    RANKING_ORDER = Keyset.of(
        TenantProfitability.margin_micros, TenantProfitability.organization_id, descending=True
    )
    """Tenants ranked by margin, highest first."""

    # --- prices -------------------------------------------------------------------------------

    def currencies(self) -> set[str]:
        found: set[str] = set()
        for table in (TenantPlan, AiCostRate, InfrastructureCostRule):
            found.update(self.session.scalars(select(table.currency).distinct()))
        return found

    def plan_on(self, organization_id: uuid.UUID, effective_from: date) -> TenantPlan | None:
        return self.session.scalars(
            select(TenantPlan).where(
                TenantPlan.organization_id == organization_id,
                TenantPlan.effective_from == effective_from,
            )
        ).first()

    def cost_rate_on(self, model_version: str, effective_from: date) -> AiCostRate | None:
        return self.session.scalars(
            select(AiCostRate).where(
                AiCostRate.model_version == model_version,
                AiCostRate.effective_from == effective_from,
            )
        ).first()

    def infrastructure_rule_on(self, effective_from: date) -> InfrastructureCostRule | None:
        return self.session.scalars(
            select(InfrastructureCostRule).where(
                InfrastructureCostRule.effective_from == effective_from
            )
        ).first()

    def tier_schedule_on(self, effective_from: date) -> AdoptionTierSchedule | None:
        return self.session.scalars(
            select(AdoptionTierSchedule).where(
                AdoptionTierSchedule.effective_from == effective_from
            )
        ).first()

    def add(self, row: Any) -> Any:
        self.session.add(row)
        self.session.flush()
        return row

    def plans(self, organization_ids: Sequence[uuid.UUID] | None = None) -> list[TenantPlan]:
        query = select(TenantPlan).order_by(TenantPlan.organization_id, TenantPlan.effective_from)
        if organization_ids is not None:
            query = query.where(TenantPlan.organization_id.in_(list(organization_ids)))
        return list(self.session.scalars(query))

    def cost_rates(self) -> list[AiCostRate]:
        return list(
            self.session.scalars(
                select(AiCostRate).order_by(AiCostRate.model_version, AiCostRate.effective_from)
            )
        )

    def infrastructure_rules(self) -> list[InfrastructureCostRule]:
        return list(
            self.session.scalars(
                select(InfrastructureCostRule).order_by(InfrastructureCostRule.effective_from)
            )
        )

    def tier_schedules(self) -> list[AdoptionTierSchedule]:
        return list(
            self.session.scalars(
                select(AdoptionTierSchedule).order_by(AdoptionTierSchedule.effective_from)
            )
        )

    PLAN_ORDER = Keyset.of(TenantPlan.effective_from, TenantPlan.id, descending=True)

    def page_plans(
        self, *, organization_id: uuid.UUID | None, after: Key | None, limit: int
    ) -> KeysetPage[tuple[TenantPlan, str]]:
        query = select(TenantPlan, Organization.slug).join(
            Organization, Organization.id == TenantPlan.organization_id
        )
        if organization_id is not None:
            query = query.where(TenantPlan.organization_id == organization_id)
        return self.page(query, self.PLAN_ORDER, after=after, limit=limit)

    # --- which tenant-months to compute -------------------------------------------------------

    def tenants_with_plans(self) -> list[uuid.UUID]:
        return list(self.session.scalars(select(TenantPlan.organization_id).distinct()))

    def tenants_with_events_since(
        self, since: datetime, model_version: str | None = None
    ) -> list[uuid.UUID]:
        query = select(UsageEvent.organization_id).distinct().where(UsageEvent.occurred_at >= since)
        if model_version is not None:
            query = query.where(UsageEvent.model_version == model_version)
        return list(self.session.scalars(query))

    def tenants_with_events_between(self, since: datetime, until: datetime) -> list[uuid.UUID]:
        return list(
            self.session.scalars(
                select(UsageEvent.organization_id)
                .distinct()
                .where(UsageEvent.occurred_at >= since, UsageEvent.occurred_at < until)
            )
        )

    def mark_dirty(self, periods: Iterable[tuple[uuid.UUID, date]], *, now: datetime) -> int:
        """Mark tenant-months to recompute (again, if marked already: a new version).

        One upsert per chunk (`INSERT … ON CONFLICT DO UPDATE`, PostgreSQL and SQLite alike),
        in key order: a price change from a day decades back marks tens of thousands of months,
        which a select, update and insert per chunk took seconds of Python to build.
        """
        rows = sorted(set(periods))
        dialect = self.session.get_bind().dialect.name
        upsert = postgresql_insert if dialect == "postgresql" else sqlite_insert
        table = cast(Table, ProfitabilityDirtyPeriod.__table__)
        statement = upsert(table)
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.organization_id, table.c.month],
            set_={"marked_at": statement.excluded.marked_at, "version": table.c.version + 1},
        )
        for start in range(0, len(rows), 5000):
            self.session.execute(
                statement,
                [
                    {"organization_id": org, "month": month, "marked_at": now}
                    for org, month in rows[start : start + 5000]
                ],
            )
        return len(rows)

    def dirty(
        self, *, since: date | None = None, until: date | None = None
    ) -> list[tuple[uuid.UUID, date]]:
        query = select(ProfitabilityDirtyPeriod.organization_id, ProfitabilityDirtyPeriod.month)
        if since is not None:
            query = query.where(ProfitabilityDirtyPeriod.month >= since)
        if until is not None:
            query = query.where(ProfitabilityDirtyPeriod.month < until)
        return [(org, month) for org, month in self.session.execute(query)]

    def dirty_versions(
        self, periods: Sequence[tuple[uuid.UUID, date]]
    ) -> dict[tuple[uuid.UUID, date], int]:
        """The mark versions of those of these tenant-months that are marked."""
        wanted = set(periods)
        found: dict[tuple[uuid.UUID, date], int] = {}
        organizations = sorted({org for org, _ in wanted})
        mark = ProfitabilityDirtyPeriod
        for start in range(0, len(organizations), 500):
            rows = self.session.execute(
                select(mark.organization_id, mark.month, mark.version).where(
                    mark.organization_id.in_(organizations[start : start + 500])
                )
            )
            found.update({(o, m): v for o, m, v in rows if (o, m) in wanted})
        return found

    def clear_dirty(self, seen: Mapping[tuple[uuid.UUID, date], int]) -> int:
        """Forget these marks if they are still at the version read (a mark raised since, by
        a transaction the reader could not see, stays). The number cleared."""
        if not seen:
            return 0
        mark = ProfitabilityDirtyPeriod
        statement = delete(mark).where(
            mark.organization_id == bindparam("o"),
            mark.month == bindparam("m"),
            mark.version == bindparam("v"),
        )
        result = self.session.connection().execute(
            statement, [{"o": o, "m": m, "v": v} for (o, m), v in sorted(seen.items())]
        )
        return max(int(getattr(result, "rowcount", 0) or 0), 0)

    def dirty_day_months(
        self, *, since: date | None = None, until: date | None = None
    ) -> set[tuple[uuid.UUID, date]]:
        """The tenant-months with marked days (months in [since, until) when given)."""
        query = select(ProfitabilityDirtyDay.organization_id, ProfitabilityDirtyDay.day)
        if since is not None:
            query = query.where(ProfitabilityDirtyDay.day >= since)
        if until is not None:
            query = query.where(ProfitabilityDirtyDay.day < until)
        return {(org, day.replace(day=1)) for org, day in self.session.execute(query)}

    def dirty_day_versions(
        self, months: Sequence[tuple[uuid.UUID, date]]
    ) -> dict[tuple[uuid.UUID, date], int]:
        """The mark versions of the marked days of these tenant-months."""
        wanted = set(months)
        found: dict[tuple[uuid.UUID, date], int] = {}
        organizations = sorted({org for org, _ in wanted})
        mark = ProfitabilityDirtyDay
        for start in range(0, len(organizations), 500):
            rows = self.session.execute(
                select(mark.organization_id, mark.day, mark.version).where(
                    mark.organization_id.in_(organizations[start : start + 500])
                )
            )
            found.update({(o, d): v for o, d, v in rows if (o, d.replace(day=1)) in wanted})
        return found

    def clear_dirty_days(self, seen: Mapping[tuple[uuid.UUID, date], int]) -> int:
        """Forget these day marks if they are still at the version read. The number cleared."""
        if not seen:
            return 0
        if self.session.get_bind().dialect.name == "postgresql":
            # One statement for thousands of marks: COPY them in, delete by a join.
            driver: Any = self.session.connection().connection.driver_connection
            with driver.cursor() as cursor:
                cursor.execute(
                    "CREATE TEMP TABLE IF NOT EXISTS seen_dirty_days (organization_id uuid, "
                    "day date, version bigint) ON COMMIT DROP"
                )
                cursor.execute("DELETE FROM seen_dirty_days")
                with cursor.copy("COPY seen_dirty_days FROM STDIN") as copy:
                    for (org, day), version in seen.items():
                        copy.write_row((org, day, version))
                cursor.execute("ANALYZE seen_dirty_days")
                cursor.execute(
                    "DELETE FROM profitability_dirty_days d USING seen_dirty_days s "
                    "WHERE d.organization_id = s.organization_id AND d.day = s.day "
                    "AND d.version = s.version"
                )
                return max(int(cursor.rowcount), 0)
        mark = ProfitabilityDirtyDay
        statement = delete(mark).where(
            mark.organization_id == bindparam("o"),
            mark.day == bindparam("d"),
            mark.version == bindparam("v"),
        )
        result = self.session.connection().execute(
            statement, [{"o": o, "d": d, "v": v} for (o, d), v in sorted(seen.items())]
        )
        return max(int(getattr(result, "rowcount", 0) or 0), 0)

    # --- profitability rows -------------------------------------------------------------------

    KEY = ("organization_id", "period_kind", "period_start")

    def stored_figures(
        self, periods: Sequence[tuple[uuid.UUID, date]]
    ) -> dict[tuple[uuid.UUID, str, date], tuple[Any, ...]]:
        """The computed columns (`FIGURES` order) of the stored rows of these tenant-months."""
        wanted = set(periods)
        found: dict[tuple[uuid.UUID, str, date], tuple[Any, ...]] = {}
        organizations = sorted({org for org, _ in wanted})
        first = min((month for _, month in wanted), default=None)
        last = max((month for _, month in wanted), default=None)
        if first is None or last is None:
            return found
        following = date(last.year + last.month // 12, last.month % 12 + 1, 1)
        columns = [getattr(TenantProfitability, name) for name in (*self.KEY, *FIGURES)]
        for start in range(0, len(organizations), 500):
            query = select(*columns).where(
                TenantProfitability.organization_id.in_(organizations[start : start + 500]),
                TenantProfitability.period_start >= first,
                TenantProfitability.period_start < following,
            )
            for row in self.session.execute(query):
                org, kind, period_start = row[0], row[1], row[2]
                if (org, period_start.replace(day=1)) in wanted:
                    found[(org, kind, period_start)] = tuple(row[3:])
        return found

    def insert_rows(self, rows: list[dict[str, Any]]) -> None:
        """Add rows (PostgreSQL: COPY; SQLite: executemany)."""
        if not rows:
            return
        if self.session.get_bind().dialect.name != "postgresql":
            self.session.execute(insert(TenantProfitability), rows)
            return
        names = ", ".join([*self.KEY, *FIGURES, "computed_at"])
        driver: Any = self.session.connection().connection.driver_connection
        # COPY into a table under row-level security is refused: COPY into a temporary table
        # of the same shape, then one INSERT … SELECT (which the policies check).
        with driver.cursor() as cursor:
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS profitability_staging "
                "(LIKE tenant_profitability) ON COMMIT DROP"
            )
            cursor.execute("DELETE FROM profitability_staging")
            with cursor.copy(f"COPY profitability_staging ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(
                        [
                            json.dumps(row[name]) if name in JSON_FIGURES else row[name]
                            for name in [*self.KEY, *FIGURES, "computed_at"]
                        ]
                    )
            cursor.execute(
                f"INSERT INTO tenant_profitability ({names}) "
                f"SELECT {names} FROM profitability_staging"
            )

    def upsert_figures(
        self,
        periods: Sequence[tuple[uuid.UUID, date]],
        figures: pa.Table,
        *,
        now: datetime,
        from_days: Mapping[tuple[uuid.UUID, date], date] | None = None,
    ) -> tuple[int, int, int, int]:
        """Make the stored rows of these tenant-months the given ones (`KEY` + `FIGURES`
        columns, JSON as text) in bulk: insert new rows, update rows whose figures changed,
        delete rows without figures; unchanged rows are not touched. With `from_days`, only the
        month row and the day rows from its first day to write on are a tenant-month's (the
        days before are left as they are). Returns (inserted, updated, unchanged, deleted)."""
        starts = from_days or {}
        if not periods:
            return 0, 0, 0, 0
        postgres = self.session.get_bind().dialect.name == "postgresql"
        driver: Any = self.session.connection().connection.driver_connection
        names = [*self.KEY, *FIGURES, "computed_at"]
        columns = ", ".join(names)
        figures = figures.select([*self.KEY, *FIGURES])
        if postgres:
            cursor = driver.cursor()
            # COPY into a table under row-level security is refused: COPY into temporary
            # tables, then set-based statements (which the policies check).
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS profitability_staging "
                "(LIKE tenant_profitability) ON COMMIT DROP"
            )
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS profitability_targets "
                "(organization_id uuid, month date, from_day date) ON COMMIT DROP"
            )
            # Emptied by DELETE: a temporary table made in this transaction is empty, and
            # TRUNCATE would give it new files on disk each time.
            cursor.execute("DELETE FROM profitability_staging")
            cursor.execute("DELETE FROM profitability_targets")
            with cursor.copy(
                "COPY profitability_targets (organization_id, month, from_day) FROM STDIN"
            ) as copy:
                for organization_id, month in periods:
                    copy.write_row(
                        (organization_id, month, starts.get((organization_id, month), month))
                    )
            stamped = figures.append_column(
                "computed_at", pa.array([now] * figures.num_rows, pa.timestamp("us", tz="UTC"))
            )
            buffer = io.BytesIO()
            pa_csv.write_csv(stamped, buffer, pa_csv.WriteOptions(include_header=False))
            with cursor.copy(
                f"COPY profitability_staging ({columns}) FROM STDIN (FORMAT csv)"
            ) as copy:
                copy.write(buffer.getbuffer())
            # Statistics of the targets (one row each), so the planner joins them by index;
            # the staged figures' row count it takes from their size (an ANALYZE of a full
            # rebuild's figures costs more than it saves).
            cursor.execute("ANALYZE profitability_targets")
            distinct = " OR ".join(f"t.{name} IS DISTINCT FROM excluded.{name}" for name in FIGURES)
            # The rows of the targets, each tenant-month's by the primary key (its month row
            # and its days from the first to write): `OFFSET 0` keeps each probe apart, where
            # a join guessed a third of the table per bound and scanned all of it.
            stored = (
                "SELECT t.ctid, t.organization_id, t.period_kind, t.period_start "
                "FROM profitability_targets x CROSS JOIN LATERAL (SELECT p.ctid, "
                "p.organization_id, p.period_kind, p.period_start FROM tenant_profitability p "
                "WHERE p.organization_id = x.organization_id AND ((p.period_kind = 'month' "
                "AND p.period_start = x.month) OR (p.period_kind = 'day' "
                "AND p.period_start >= greatest(x.from_day, x.month) "
                "AND p.period_start < (x.month + interval '1 month'))) OFFSET 0) t"
            )
            gone = (
                "DELETE FROM tenant_profitability WHERE ctid = ANY(ARRAY("
                f"SELECT t.ctid FROM ({stored}) t WHERE NOT EXISTS "
                "(SELECT 1 FROM profitability_staging s WHERE {same_key})))"
            )
        else:
            cursor = driver.cursor()
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS profitability_staging AS "
                "SELECT * FROM tenant_profitability WHERE false"
            )
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS profitability_targets "
                "(organization_id TEXT, month TEXT, from_day TEXT)"
            )
            cursor.execute("DELETE FROM profitability_staging")
            cursor.execute("DELETE FROM profitability_targets")
            cursor.executemany(
                "INSERT INTO profitability_targets VALUES (?, ?, ?)",
                [
                    (org.hex, month.isoformat(), starts.get((org, month), month).isoformat())
                    for org, month in periods
                ],
            )
            # SQLite stores UUIDs as 32 hex digits and dates and times as text.
            stamp = now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
            values = {name: figures.column(name).to_pylist() for name in figures.column_names}
            values["organization_id"] = [uuid.UUID(org).hex for org in values["organization_id"]]
            values["period_start"] = [day.isoformat() for day in values["period_start"]]
            values["computed_at"] = [stamp] * figures.num_rows
            cursor.executemany(
                f"INSERT INTO profitability_staging ({columns}) "
                f"VALUES ({', '.join('?' * len(names))})",
                zip(*(values[name] for name in names), strict=True),
            )
            distinct = " OR ".join(f"t.{name} IS NOT excluded.{name}" for name in FIGURES)
            in_period = (
                "((t.period_kind = 'month' AND t.period_start = x.month) "
                "OR t.period_start >= x.from_day) "
                "AND t.period_start >= x.month AND t.period_start < date(x.month, '+1 month')"
            )
            gone = (
                "DELETE FROM tenant_profitability AS t WHERE EXISTS (SELECT 1 FROM "
                "profitability_targets x WHERE x.organization_id = t.organization_id AND "
                f"{in_period}) AND NOT EXISTS (SELECT 1 FROM profitability_staging s "
                "WHERE {same_key})"
            )
        same_key = " AND ".join(f"s.{name} = t.{name}" for name in self.KEY)
        if not postgres:
            cursor.execute(
                "SELECT count(*) FROM profitability_staging s WHERE NOT EXISTS "
                f"(SELECT 1 FROM tenant_profitability t WHERE {same_key})"
            )
            inserted = int(cursor.fetchone()[0])
        cursor.execute(gone.replace("{same_key}", same_key))
        deleted = max(int(cursor.rowcount), 0)
        updates = ", ".join(f"{name} = excluded.{name}" for name in [*FIGURES, "computed_at"])
        upsert = (
            f"INSERT INTO tenant_profitability AS t ({columns}) "
            f"SELECT {columns} FROM profitability_staging WHERE true "
            f"ON CONFLICT ({', '.join(self.KEY)}) DO UPDATE SET {updates} WHERE {distinct}"
        )
        if postgres:
            # The rows written come back: new ones have no earlier row version (`xmax = 0`),
            # so no count of the new rows beforehand.
            cursor.execute(
                f"WITH written AS ({upsert} RETURNING xmax = 0 AS new) "
                "SELECT count(*) FILTER (WHERE new), count(*) FROM written"
            )
            inserted, written = (int(n) for n in cursor.fetchone())
        else:
            cursor.execute(upsert)
            written = max(int(cursor.rowcount), 0)
        cursor.close()
        updated = written - inserted
        return inserted, updated, figures.num_rows - written, deleted

    def update_rows(self, rows: list[dict[str, Any]]) -> None:
        """Change rows by primary key (each dict holds the key and the new values)."""
        if rows:
            self.session.execute(update(TenantProfitability), rows)

    def delete_rows(self, keys: Sequence[tuple[uuid.UUID, str, date]]) -> None:
        for key in keys:
            self.session.execute(
                delete(TenantProfitability).where(
                    TenantProfitability.organization_id == key[0],
                    TenantProfitability.period_kind == key[1],
                    TenantProfitability.period_start == key[2],
                )
            )

    def _matching(
        self,
        *,
        period_kind: str,
        since: date | None,
        until: date | None,
        organization_id: uuid.UUID | None,
    ) -> Any:
        query = select(TenantProfitability, Organization.slug).join(
            Organization, Organization.id == TenantProfitability.organization_id
        )
        query = query.where(TenantProfitability.period_kind == period_kind)
        if since is not None:
            query = query.where(TenantProfitability.period_start >= since)
        if until is not None:
            query = query.where(TenantProfitability.period_start < until)
        if organization_id is not None:
            query = query.where(TenantProfitability.organization_id == organization_id)
        return query

    def page_periods(
        self,
        *,
        period_kind: str,
        since: date | None,
        until: date | None,
        organization_id: uuid.UUID | None,
        after: Key | None,
        limit: int,
        keyset: Keyset | None = None,
    ) -> KeysetPage[tuple[TenantProfitability, str]]:
        query = self._matching(
            period_kind=period_kind, since=since, until=until, organization_id=organization_id
        )
        return self.page(query, keyset or self.PERIOD_ORDER, after=after, limit=limit)

    def page_own_periods(
        self,
        *,
        organization_id: uuid.UUID,
        period_kind: str,
        since: date | None,
        until: date | None,
        after: Key | None,
        limit: int,
    ) -> KeysetPage[tuple[TenantProfitability, str]]:
        """A tenant's own rows, loading only the columns it may read."""
        query = self._matching(
            period_kind=period_kind, since=since, until=until, organization_id=organization_id
        ).options(load_only(*TENANT_VISIBLE))
        return self.page(query, self.PERIOD_ORDER, after=after, limit=limit)

    def all_periods(
        self,
        *,
        period_kind: str,
        since: date | None,
        until: date | None,
        organization_id: uuid.UUID | None,
    ) -> list[tuple[TenantProfitability, str]]:
        query = self._matching(
            period_kind=period_kind, since=since, until=until, organization_id=organization_id
        ).order_by(TenantProfitability.period_start, Organization.slug)
        return [(row, slug) for row, slug in self.session.execute(query)]

    def totals(self, *, period_kind: str, period_start: date) -> dict[str, int]:
        row = self.session.execute(
            select(
                func.count(),
                func.coalesce(func.sum(TenantProfitability.revenue_micros), 0),
                func.coalesce(func.sum(TenantProfitability.margin_micros), 0),
            ).where(
                TenantProfitability.period_kind == period_kind,
                TenantProfitability.period_start == period_start,
            )
        ).one()
        return {"tenants": int(row[0]), "revenue_micros": int(row[1]), "margin_micros": int(row[2])}
