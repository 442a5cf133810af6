"""The `streamflow` command as users run it: exit codes, one-line errors, JSON for scripts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from flows.cli import app
from flows.runtime import Runtime
from models.db.tables import AuditLogEntry, GoldenDatasetVersion

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _json(*args: str) -> object:
    code, out, err = _run(*args, "--json")
    assert code == 0, err
    return json.loads(out)


def _notes_file(tmp_path: Path, rows: int = 24) -> Path:
    path = tmp_path / "notes.jsonl"
    path.write_text(
        "\n".join(
            json.dumps(
                {
                    "id": f"n{i:02d}",
                    "input": f"Arrived. Replaced filter {i}. Tested airflow.",
                    "expected": f"Replaced filter {i} and tested airflow.",
                    "slice": "hvac" if i % 2 else "plumbing",
                }
            )
            for i in range(rows)
        )
    )
    return path


class TestDatasetsCommands:
    def test_import_list_show_diff(self, streamflow: Runtime, tmp_path: Path) -> None:
        """Import makes version 1, re-import finds it, new content makes 2, diff names the ids."""
        assert _run("orgs", "create", "provider", "--kind", "provider")[0] == 0
        path = _notes_file(tmp_path)
        first = _json(
            "datasets", "import", str(path), "--name", "notes", "--task", "text_generation"
        )
        again = _json(
            "datasets", "import", str(path), "--name", "notes", "--task", "text_generation"
        )
        assert first["version"] == 1
        assert first["created"] is True
        assert again["version"] == 1
        assert again["created"] is False
        path.write_text(path.read_text().replace("filter 3.", "filter three."))
        second = _json(
            "datasets", "import", str(path), "--name", "notes", "--task", "text_generation"
        )
        assert second["version"] == 2
        listed = _json("datasets", "list")
        assert [item["name"] for item in listed["items"]] == ["notes"]
        shown = _json("datasets", "show", "notes@1")
        assert [v["version"] for v in shown["versions"]] == [1, 2]
        assert shown["slices"] == {"hvac": 12, "plumbing": 12}
        assert _json("datasets", "diff", "notes@1", "notes@2") == {
            "added": [],
            "removed": [],
            "changed": ["n03"],
        }

    def test_bad_file_is_one_clear_error_and_writes_nothing(
        self, streamflow: Runtime, tmp_path: Path
    ) -> None:
        """A file with an empty expected value exits 1 naming line and column; nothing is stored."""
        _run("orgs", "create", "provider", "--kind", "provider")
        bad = tmp_path / "bad.csv"
        bad.write_text("id,input,expected\na1,hello,billing\na2,hi,\n")
        code, out, err = _run(
            "datasets", "import", str(bad), "--name", "bad", "--task", "classification"
        )
        assert code == 1
        assert out == ""
        assert "line 3" in err
        assert "expected" in err
        with streamflow.sessions() as session:
            assert session.scalar(select(func.count()).select_from(GoldenDatasetVersion)) == 0
            actions = set(session.scalars(select(AuditLogEntry.action)))
        assert "golden_dataset_version.created" not in actions

    def test_label_sets_and_the_row_limit(
        self, streamflow: Runtime, tmp_path: Path, monkeypatch
    ) -> None:
        """--labels declares the label set (shown by import and show); a bad one names the flag;
        STREAMFLOW_DATASET_MAX_ROW_BYTES is the per-row limit."""
        _run("orgs", "create", "provider", "--kind", "provider")
        tickets = tmp_path / "tickets.csv"
        tickets.write_text("id,input,expected\nt1,my invoice,billing\nt2,money back,refund\n")
        imported = _json(
            "datasets", "import", str(tickets), "--name", "t", "--task", "classification",
            "--labels", "billing,refund,other",
        )  # fmt: skip
        assert imported["labels"] == ["billing", "other", "refund"]
        assert _json("datasets", "show", "t")["labels"] == ["billing", "other", "refund"]
        code, _, err = _run(
            "datasets", "import", str(tickets), "--name", "u", "--task", "classification",
            "--labels", "billing,billing,refund",
        )  # fmt: skip
        assert code == 1
        assert err.count("\n") == 1
        assert "--labels: the label set names 'billing' more than once" in err
        monkeypatch.setenv("STREAMFLOW_DATASET_MAX_ROW_BYTES", "12")
        code, _, err = _run(
            "datasets", "import", str(tickets), "--name", "v", "--task", "classification"
        )
        assert code == 1
        assert "the limit is 12" in err

    def test_unknown_dataset_names_the_fix(self, streamflow: Runtime) -> None:
        """Asking for a dataset that does not exist says how to list them."""
        _run("orgs", "create", "provider", "--kind", "provider")
        code, _, err = _run("datasets", "show", "nope")
        assert code == 1
        assert "streamflow datasets list" in err


class TestEvalCommands:
    def test_run_list_show_examples_compare(self, streamflow: Runtime, tmp_path: Path) -> None:
        """Two predictions files evaluate, list, page their examples and compare pairwise."""
        _run("orgs", "create", "provider", "--kind", "provider")
        notes = _notes_file(tmp_path)
        _json("datasets", "import", str(notes), "--name", "notes", "--task", "text_generation")
        rows = [json.loads(line) for line in notes.read_text().splitlines()]
        good, weak = tmp_path / "good.csv", tmp_path / "weak.csv"
        good.write_text("id,prediction\n" + "\n".join(f"{r['id']},{r['expected']}" for r in rows))
        weak.write_text("id,prediction\n" + "\n".join(f"{r['id']},Arrived." for r in rows))
        run_a = _json(
            "eval",
            "run",
            "--predictions",
            str(weak),
            "--dataset",
            "notes",
            "--batch-size",
            "10",
            "--agent-type",
            "summarizer",
        )
        run_b = _json("eval", "run", "--predictions", str(good), "--dataset", "notes@1")
        assert run_a["status"] == "completed"
        assert run_a["examples"] == 24
        names = {m["name"] for m in run_b["metrics"]}
        assert {"rougeL_f", "bleu", "chrf", "exact_match", "quality_score"} <= names
        exact = next(m for m in run_b["metrics"] if m["name"] == "exact_match")
        assert exact["value"] == 1.0
        assert {s["slice"] for s in run_b["slices"]} == {"hvac", "plumbing"}
        again = _json("eval", "run", "--predictions", str(good), "--dataset", "notes@1")
        assert again["reused"] is True
        assert again["id"] == run_b["id"]
        listed = _json("eval", "list", "--limit", "1")
        assert len(listed["items"]) == 1
        assert listed["next_cursor"]
        rest = _json("eval", "list", "--limit", "5", "--cursor", listed["next_cursor"])
        assert {listed["items"][0]["id"], rest["items"][0]["id"]} == {run_a["id"], run_b["id"]}
        page_one = _json("eval", "examples", run_a["id"][:8], "--limit", "20")
        page_two = _json(
            "eval",
            "examples",
            run_a["id"][:8],
            "--limit",
            "20",
            "--cursor",
            page_one["next_cursor"],
        )
        ids = [i["example_id"] for i in page_one["items"] + page_two["items"]]
        assert ids == sorted(r["id"] for r in rows)
        comparison = _json("eval", "compare", run_a["id"], run_b["id"])
        exact_diff = next(r for r in comparison["overall"] if r["name"] == "exact_match")
        assert exact_diff["difference"] == 1.0
        assert comparison["mcnemar"][0]["only_b_correct"] == 24
        assert comparison["mcnemar"][0]["p_value"] < 1e-6
        verdict = comparison["verdict"]
        assert (verdict["primary_metric"], verdict["outcome"]) == ("quality_score", "better")
        assert verdict["flags"] == ["small_n"]
        assert verdict["ci_low"] > 0
        assert verdict["p_value"] <= verdict["alpha"]
        code, out, _ = _run("eval", "compare", run_a["id"], run_b["id"])
        assert code == 0
        assert verdict["statement"] in out
        assert f"Holm across {verdict['secondary']['size']} tests" in out
        plan = _json(
            "eval", "plan", "--runs", run_a["id"], run_b["id"], "--effect", "0.05", "--n", "500"
        )
        assert plan["paired_sd"] == pytest.approx(verdict["effect"]["paired_sd"])
        assert plan["n_required"] >= 2
        assert plan["minimum_detectable_effect"] > 0
        code, out, _ = _run("eval", "plan", "--paired-sd", "0.2", "--effect", "0.02")
        assert code == 0
        assert "n = 785 paired examples" in out
        code, _, err = _run("eval", "plan", "--effect", "0.02")
        assert code == 1
        assert "--paired-sd" in err
        shown = _json("eval", "show", run_a["id"][:8])
        assert all("small_n" in m["flags"] for m in shown["metrics"])
        exact_a = next(m for m in shown["metrics"] if m["name"] == "exact_match")
        assert exact_a["method"] == "wilson"
        assert exact_a["ci_high"] > exact_a["ci_low"] == 0.0
        code, out, err = _run("eval", "compare", run_a["id"][:8], run_a["id"])
        assert (code, out) == (1, "")
        assert err.startswith("error: RUN_B: run_b names the same run as run_a")
        assert len(err.strip().splitlines()) == 1
        code, out, _ = _run("eval", "show", run_a["id"][:8])
        assert code == 0
        assert "rougeL_f" in out
        assert "small_n" in out
        assert _json("eval", "show", run_a["id"][:8])["id"] == run_a["id"]

    def test_eval_run_needs_exactly_one_subject(self, streamflow: Runtime) -> None:
        """Neither --model nor --predictions is a usage error with the fix named, exit code 1."""
        code, _, err = _run("eval", "run", "--dataset", "notes")
        assert code == 1
        assert "--model" in err
        assert "--predictions" in err


class TestModelsCommands:
    def test_register_builtin_list_alias(self, streamflow: Runtime, tmp_path: Path) -> None:
        """A built-in agent trains on a file, registers with tags, and takes an alias."""
        train = tmp_path / "train.csv"
        train.write_text(
            "id,input,expected\n"
            + "\n".join(
                f"t{i},{text} {i},{label}"
                for i in range(40)
                for text, label in [
                    ("invoice wrong amount", "billing")
                    if i % 2
                    else ("reschedule my visit", "schedule")
                ]
            )
        )
        name = f"clf-{tmp_path.name[-6:]}".lower().replace("_", "-")
        registered = _json(
            "models", "register", "--name", name, "--builtin", "tfidf-logreg", "--train", str(train)
        )
        assert registered["agent_type"] == "intent_classifier"
        assert registered["task"] == "classification"
        assert _run("models", "alias", name, "champion", registered["version"])[0] == 0
        versions = _json("models", "list", "--name", name)
        assert versions[0]["aliases"] == ["champion"]
        code, _, err = _run("models", "alias", name, "champion", "99")
        assert code == 1
        assert "not registered" in err


class TestKeysCommands:
    def test_create_list_revoke(self, streamflow: Runtime) -> None:
        """A key is printed once, listed without its secret, and revoked with an audit row."""
        _run("orgs", "create", "provider", "--kind", "provider")
        _run("orgs", "create", "acme")
        created = _json("keys", "create", "acme", "--name", "ci", "--scope", "results:read")
        assert created["api_key"].startswith(f"sf_{created['prefix']}_")
        listed = _json("keys", "list", "acme")
        assert [k["id"] for k in listed] == [created["id"]]
        assert created["api_key"] not in json.dumps(listed)
        code, _, _ = _run("keys", "revoke", "acme", created["id"])
        assert code == 0
        assert _json("keys", "list", "acme")[0]["revoked_at"] is not None
        with streamflow.sessions() as session:
            actions = set(session.scalars(select(AuditLogEntry.action)))
        assert {"api_key.issued", "api_key.revoked"} <= actions
        code, _, err = _run("keys", "create", "acme", "--name", "x", "--scope", "everything")
        assert code == 1
        assert "results:read" in err


class TestCliEdge:
    def test_help_imports_no_heavy_library(self) -> None:
        """`streamflow --help`, `eval --help` and `datasets --help` load no mlflow/pandas/API."""
        import subprocess
        import sys

        probe = (
            "import sys\n"
            "from flows.cli import app\n"
            "for args in (['--help'], ['eval', '--help'], ['datasets', '--help']):\n"
            "    try:\n"
            "        app(args)\n"
            "    except SystemExit as done:\n"
            "        assert done.code == 0, done.code\n"
            "heavy = ('mlflow', 'scipy', 'pandas', 'prefect', 'api', 'sqlalchemy')\n"
            "print(sorted(m for m in heavy if m in sys.modules))\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, check=True
        )
        assert done.stdout.strip().splitlines()[-1] == "[]"

    def test_usage_errors_are_one_line_with_exit_code_1(self) -> None:
        """A bad option value or an unknown command: one stderr line naming it, exit code 1."""
        code, out, err = _run(
            "eval", "run", "--dataset", "x", "--model", "m@1", "--batch-size", "0"
        )
        assert (code, out) == (1, "")
        assert len(err.strip().splitlines()) == 1
        assert "--batch-size" in err
        assert "streamflow eval run --help" in err
        code, _, err = _run("eval", "nope")
        assert code == 1
        assert "No such command 'nope'" in err

    def test_domain_errors_name_the_flag(self) -> None:
        """A domain error's field becomes the option the user typed; NotFound adds what to run."""
        from flows.cli.output import error_line
        from pipelines.errors import InvalidInput, NotFound

        assert error_line(InvalidInput("must be at least 1", field="batch_size")) == (
            "--batch-size: must be at least 1"
        )
        # A message that starts with its own field names it once, as the option.
        assert error_line(InvalidInput("min_n: give a number", field="min_n")) == (
            "--min-n: give a number"
        )
        assert error_line(NotFound("organization 'x' not found", field="organization")) == (
            "organization 'x' not found; create it with `streamflow orgs create SLUG`"
        )
        assert error_line(RuntimeError("bug")) is None

    def test_a_schema_this_login_cannot_migrate_is_one_line(self) -> None:
        """A login that may not migrate an old schema says what to run, not a traceback."""
        from flows.cli.output import error_line
        from models.db.migrate import SchemaNotMigrated

        line = error_line(SchemaNotMigrated("run `streamflow db upgrade` with the owner's URL"))
        assert line == "run `streamflow db upgrade` with the owner's URL"

    def test_results_printed_after_progress_stop_the_progress_display(self, monkeypatch) -> None:
        """Printing a result takes the progress bars off the screen first, so nothing overlaps."""
        from flows.cli.output import console, errors, progress, progress_display
        from flows.runtime import report_progress

        monkeypatch.setattr(errors, "_force_terminal", True)
        with progress(True):
            report_progress("scoring", 1, 4)
            display = progress_display._display
            assert display is not None
            assert display.live.is_started
            console.print("result", end="")
            assert not display.live.is_started
            report_progress("scoring", 2, 4)
            assert progress_display._display is not None
            assert progress_display._display.live.is_started
        assert progress_display._display is None

    def test_no_progress_bars_when_stderr_is_not_a_terminal(self, monkeypatch) -> None:
        """Piped or logged stderr gets no bars (they would print blank lines there)."""
        from flows.cli.output import errors, progress, progress_display
        from flows.runtime import report_progress

        monkeypatch.setattr(errors, "_force_terminal", False)
        with progress(True):
            report_progress("scoring", 1, 4)
            assert progress_display._display is None
