"""`streamflow usage` and `streamflow profitability` end to end: import a usage file, set
prices, run the rollup flow on the local orchestrator, read and export the figures."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from typer.testing import CliRunner

from flows.cli import app
from flows.runtime import Runtime
from models.db.tables import TenantProfitability, UsageEvent

runner = CliRunner()


def _run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _json(*args: str) -> object:
    code, out, err = _run(*args, "--json")
    assert code == 0, err
    return json.loads(out)


def _last_month() -> date:
    first = datetime.now(UTC).date().replace(day=1)
    return (first - timedelta(days=1)).replace(day=1)


def _usage_file(tmp_path: Path, month: date, *, bad_row: bool = False) -> Path:
    path = tmp_path / "usage.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "event_id",
                "tenant",
                "occurred_at",
                "agent_type",
                "model_version",
                "tokens_in",
                "tokens_out",
                "requests",
                "job_id",
            ]
        )
        for n in range(30):
            day = month + timedelta(days=n % 5)
            tokens = "oops" if bad_row and n == 17 else str(100 + n)
            writer.writerow(
                [
                    f"ev-{n}",
                    "acme",
                    f"{day.isoformat()}T09:30:00+00:00",
                    "summarizer",
                    "summ@2",
                    tokens,
                    "50",
                    "1",
                    f"job-{n % 10}",
                ]
            )
    return path


class TestProfitabilityCommands:
    def test_import_price_rollup_read_and_export(self, streamflow: Runtime, tmp_path: Path) -> None:
        month = _last_month()
        assert _run("orgs", "create", "acme")[0] == 0
        code, _, err = _run("usage", "import", str(_usage_file(tmp_path, month, bad_row=True)))
        assert code == 1
        assert "row 18, tokens_in: must be a whole number" in err
        with streamflow.sessions() as session:
            assert session.scalar(select(func.count()).select_from(UsageEvent)) == 0
        path = _usage_file(tmp_path, month)
        assert _json("usage", "import", str(path))["inserted"] == 30
        assert _json("usage", "import", str(path))["duplicates"] == 30
        start = month.isoformat()
        plan = _json(
            "profitability",
            "price",
            "plan",
            "acme",
            "--effective-from",
            start,
            "--monthly-fee",
            "300",
            "--included-tokens",
            "1000",
            "--overage-per-1k",
            "2",
        )
        assert plan["created"] is True
        assert (
            _run(
                "profitability",
                "price",
                "ai-cost",
                "summ@2",
                "--effective-from",
                start,
                "--per-1k-in",
                "0.5",
                "--per-1k-out",
                "1.5",
            )[0]
            == 0
        )
        assert (
            _run(
                "profitability",
                "price",
                "tiers",
                "--effective-from",
                start,
                "--tier",
                "base:0:0",
                "--tier",
                "gold:90:20",
            )[0]
            == 0
        )
        until = (month + timedelta(days=32)).replace(day=1).isoformat()
        rolled = _json("profitability", "rollup", "--since", start, "--until", until)
        assert rolled["tenant_months"] == 1
        days_in_month = (date(month.year + month.month // 12, month.month % 12 + 1, 1) - month).days
        assert rolled["inserted"] == 1 + days_in_month  # the month, and each day of the plan
        again = _json("profitability", "rollup", "--since", start, "--until", until)
        assert (again["inserted"], again["updated"], again["unchanged"]) == (
            0,
            0,
            rolled["inserted"],
        )
        listed = _json("profitability", "list", "--period", "month")
        (figures,) = listed["items"]  # type: ignore[index]
        assert figures["tenant"] == "acme"
        assert figures["subscription_micros"] == 300_000_000
        assert figures["tier"] == "gold"
        assert figures["events"] == 30
        export = tmp_path / "figures.csv"
        assert _run("profitability", "export", str(export))[0] == 0
        rows = list(csv.DictReader(io.StringIO(export.read_text())))
        assert [r["tenant"] for r in rows] == ["acme"]
        with streamflow.sessions() as session:
            days = session.scalar(
                select(func.count())
                .select_from(TenantProfitability)
                .where(TenantProfitability.period_kind == "day")
            )
        assert days == days_in_month
