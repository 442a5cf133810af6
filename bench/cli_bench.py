"""Wall-clock of the `streamflow` command as a user meets it: `uv run python -m bench.cli_bench`.

Every figure is a fresh process (median of several runs): `--help`, list commands, the local
orchestrator's start on a fresh and on a migrated home and its reuse, and a 5,000-pair
predictions-file import + evaluation through the CLI against a plain `rouge-score` loop over the
same pairs, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.evaluation_bench import generate

STREAMFLOW = str(Path(sys.executable).with_name("streamflow"))


def _env(home: Path) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("STREAMFLOW_", "PREFECT_"))
    }
    env["STREAMFLOW_HOME"] = str(home)
    return env


def _timed(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run([STREAMFLOW, *args], env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"streamflow {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return elapsed


def _median(args: list[str], env: dict[str, str], runs: int) -> dict[str, float]:
    times = [_timed(args, env) for _ in range(runs)]
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times)}


def _stock_rouge_seconds(predictions: list[str], references: list[str]) -> float:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)
    started = time.perf_counter()
    for prediction, reference in zip(predictions, references, strict=True):
        scorer.score(target=reference, prediction=prediction)
    return time.perf_counter() - started


def run(runs: int = 5, pairs: int = 5000, seed: int = 20261201) -> dict[str, Any]:
    """Measure; returns the figures."""
    figures: dict[str, Any] = {"runs": runs, "pairs": pairs, "cpu_count": os.cpu_count()}
    home = Path(tempfile.mkdtemp(prefix="streamflow-cli-bench-"))
    env = _env(home)
    try:
        figures["help"] = _median(["--help"], env, runs)
        figures["db_upgrade_fresh_home_s"] = _timed(["db", "upgrade"], env)
        figures["datasets_list"] = _median(["datasets", "list"], env, runs)
        figures["eval_list"] = _median(["eval", "list"], env, runs)
        figures["orchestrator_start_migrated_home_s"] = _timed(["server", "start"], env)
        figures["orchestrator_reuse"] = _median(["server", "start"], env, runs)
        _timed(["server", "stop"], env)
        figures["orchestrator_start_again_s"] = _timed(["server", "start"], env)

        golden, predicted = generate(pairs, seed)
        golden_file = home / "golden.jsonl"
        golden_file.write_text("\n".join(json.dumps(row) for row in golden))
        predictions_file = home / "predictions.jsonl"
        predictions_file.write_text("\n".join(json.dumps(row) for row in predicted))
        imported = _timed(
            ["datasets", "import", str(golden_file), "--name", "bench", "--task",
             "text_generation"],
            env,
        )  # fmt: skip
        evaluated = _timed(
            ["eval", "run", "--dataset", "bench", "--predictions", str(predictions_file),
             "--agent-type", "summarizer", "--json"],
            env,
        )  # fmt: skip
        stock = _stock_rouge_seconds(
            [row["prediction"] for row in predicted], [row["expected"] for row in golden]
        )
        figures["cli_import_s"] = imported
        figures["cli_evaluate_s"] = evaluated
        figures["rouge_score_loop_s"] = stock
        figures["cli_vs_rouge_score_loop"] = stock / (imported + evaluated)
    finally:
        subprocess.run([STREAMFLOW, "server", "stop"], env=env, capture_output=True, check=False)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="Fresh processes per figure.")
    parser.add_argument("--pairs", type=int, default=5000, help="Pairs evaluated via the CLI.")
    args = parser.parse_args()
    print(json.dumps(run(args.runs, args.pairs), indent=2))


if __name__ == "__main__":
    main()
