"""prefect-dask: a flow's tasks run on the workers of a real Dask cluster."""

from __future__ import annotations

from distributed import LocalCluster, get_worker
from prefect import flow, task
from prefect_dask import DaskTaskRunner
from rouge_score import rouge_scorer

PAIRS = [
    ("the capacitor was replaced", "capacitor replaced on the condenser"),
    ("flame sensor cleaned", "cleaned the oxidized flame sensor"),
    ("drain line cleared", "the clogged condensate line was cleared"),
    ("no further work needed", "job complete"),
]


@task
def rouge_l(reference: str, prediction: str) -> tuple[float, str]:
    """ROUGE-L F1 of one pair, and the Dask worker that computed it."""
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    return scorer.score(reference, prediction)["rougeL"].fmeasure, get_worker().address


@flow
def score_pairs(pairs: list[tuple[str, str]]) -> list[tuple[float, str]]:
    """Every pair scored by its own task."""
    futures = [rouge_l.submit(reference, prediction) for reference, prediction in pairs]
    return [future.result() for future in futures]


def test_tasks_run_on_the_cluster_workers_with_in_process_scores() -> None:
    """On a 2-worker LocalCluster the scores equal the in-process ones, computed by its workers."""
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    expected = [scorer.score(ref, pred)["rougeL"].fmeasure for ref, pred in PAIRS]

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        runner = DaskTaskRunner(address=cluster.scheduler_address)
        results = score_pairs.with_options(task_runner=runner)(PAIRS)
        workers = set(cluster.scheduler_info["workers"])

    assert [score for score, _ in results] == expected
    assert {worker for _, worker in results} <= workers
    assert len(workers) == 2
