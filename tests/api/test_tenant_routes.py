"""The tenant API under /v1: results, comparisons, registry, notices and keys, on both backends."""

from __future__ import annotations

import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from mlflow import MlflowClient
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from api.app import build_state, create_app
from api.settings import ProviderAuthSettings
from models.cache.keys import comparison_key, run_detail_key, run_tag
from models.cache.settings import CacheSettings
from models.db.engine import transaction
from models.db.tables import AuditLogEntry, EvaluationMetric, EvaluationRun
from pipelines.access.service import issue_api_key
from pipelines.evaluation import service as evaluation
from pipelines.notices.service import NoticeDraft, create_notice
from tests.api.conftest import REDIS_URL, SeededTemplates, Tenant, World
from tests.api.test_route_coverage import covers
from tests.conftest import copy_sqlite

PROBLEM_JSON = "application/problem+json"
KEY_FIELDS = {
    "id",
    "name",
    "prefix",
    "scopes",
    "created_at",
    "last_used_at",
    "expires_at",
    "revoked_at",
}


@pytest.fixture(scope="session")
def registry_template(
    tmp_path_factory: pytest.TempPathFactory, seeded_templates: SeededTemplates
) -> Path:
    """An MLflow registry with four model versions, built once (MLflow's schema setup is slow)."""
    path = tmp_path_factory.mktemp("registry") / "mlflow.db"
    copy_sqlite(seeded_templates.mlflow(), path)
    uri = f"sqlite:///{path}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    versions = {"intent-classifier": ("intent_classifier", "classification", 3)}
    versions["summarizer"] = ("summarizer", "text_generation", 1)
    for name, (agent_type, task, count) in versions.items():
        client.create_registered_model(name)
        for _ in range(count):
            client.create_model_version(
                name,
                source=(path.parent / name).as_uri(),
                tags={"agent_type": agent_type, "task": task},
            )
    client.set_registered_model_alias("intent-classifier", "champion", "2")
    return path


def walk(world: World, url: str, headers: dict[str, str], limit: int) -> list[dict[str, Any]]:
    """Every item of a paged listing, following next_cursor with pages of `limit`."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(100):
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        response = world.client.get(url, headers=headers, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError(f"{url} did not end after 100 pages")


def add_runs(
    platform: sessionmaker[Session],
    tenant: Tenant,
    created: list[datetime],
    *,
    status: str = "running",
    agent_type: str | None = None,
    quality: float | None = None,
) -> list[uuid.UUID]:
    """Runs of the tenant on its golden dataset version, created at the given times."""
    ids = []
    with transaction(platform) as session:
        template = session.get(EvaluationRun, tenant.run_id)
        assert template is not None
        for when in created:
            run = EvaluationRun(
                organization_id=tenant.organization_id,
                golden_dataset_version_id=template.golden_dataset_version_id,
                task=template.task,
                agent_type=agent_type or template.agent_type,
                predictions_filename="extra.jsonl",
                subject_key=f"predictions:{uuid.uuid4().hex}",
                config=template.config,
                config_hash=template.config_hash,
                status=status,
                batch_size=template.batch_size,
                batch_count=template.batch_count,
                example_count=template.example_count,
                created_at=when,
                finished_at=when + timedelta(minutes=1) if status == "completed" else None,
            )
            session.add(run)
            session.flush()
            if quality is not None:
                session.add(
                    EvaluationMetric(
                        run_id=run.id,
                        slice="",
                        name="quality_score",
                        value=quality,
                        ci_low=quality - 0.1,
                        ci_high=quality + 0.1,
                        n=template.example_count,
                    )
                )
            ids.append(run.id)
    return ids


def perfect_run(platform: sessionmaker[Session], world: World, tenant: Tenant) -> uuid.UUID:
    """A completed run of the tenant whose predictions equal every expected text."""
    predictions = {f"e{i}": f"replaced valve {i} and tested" for i in range(12)}
    options = evaluation.ScoringOptions(n_resamples=100)
    org = tenant.organization_id
    with transaction(platform) as session:
        prepared = evaluation.prepare_evaluation(
            session,
            organization_id=org,
            actor="test",
            request=evaluation.EvaluationRequest(
                dataset=tenant.dataset,
                agent_type="summarizer",
                predictions=evaluation.PredictionsFile("perfect.jsonl", predictions, "f" * 64),
                options=options,
            ),
            storage_dir=world.state.storage.golden_dataset_dir,
            flow_run_id=None,
        )
        ordered = [predictions[i] for i in prepared.examples["id"]]
        evaluation.store_batch(
            session,
            run_id=prepared.run_id,
            batch_index=0,
            examples=prepared.examples,
            predictions=ordered,
            scores=evaluation.score_batch(
                task="text_generation",
                examples=prepared.examples,
                predictions=ordered,
                options=options,
            ),
        )
        metrics = evaluation.aggregate_run(session, organization_id=org, run_id=prepared.run_id)
        evaluation.complete_run(
            session,
            organization_id=org,
            run_id=prepared.run_id,
            actor="test",
            metrics=metrics,
            mlflow_run_id=None,
        )
    return prepared.run_id


def issue_key(
    platform: sessionmaker[Session], tenant: Tenant, scopes: list[str]
) -> tuple[uuid.UUID, dict[str, str]]:
    """A new key of the tenant with these scopes: its id and request headers."""
    with transaction(platform) as session:
        issued = issue_api_key(
            session,
            organization_id=tenant.organization_id,
            name=f"{'+'.join(scopes)} key",
            scopes=scopes,
            actor="test",
        )
    return issued.key.id, {"Authorization": f"Bearer {issued.plaintext}"}


def audit_rows(platform: sessionmaker[Session], action: str) -> list[AuditLogEntry]:
    with platform() as session:
        return list(session.scalars(select(AuditLogEntry).where(AuditLogEntry.action == action)))


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["detail"]
    return body


class TestEvaluations:
    def test_lists_runs_newest_first_and_walks_every_page_once(
        self, world: World, platform: sessionmaker[Session]
    ) -> None:
        """Runs list newest first with status, subject and dataset; paging yields each once."""
        a = world.tenant_a
        base = datetime.now(UTC) + timedelta(hours=1)
        # Two runs share a creation time, so the keyset tie-break on id is exercised.
        extra = add_runs(platform, a, [base, base, base + timedelta(seconds=1)])

        first = world.client.get("/v1/evaluations", headers=a.headers).json()
        assert first["next_cursor"] is None
        assert first["items"][0]["id"] == str(extra[2])
        assert first["items"][-1]["id"] == str(a.run_id)
        seeded = first["items"][-1]
        assert seeded["status"] == "completed"
        assert seeded["subject"] == "predictions p.jsonl"
        assert seeded["model"] is None
        assert seeded["examples"] == 12
        assert seeded["golden_dataset"]["name"] == a.dataset
        assert seeded["golden_dataset"]["version"] == 1
        assert seeded["finished_at"] is not None
        assert first["items"][0]["status"] == "running"
        assert first["items"][0]["finished_at"] is None

        walked = walk(world, "/v1/evaluations", a.headers, limit=1)
        assert [item["id"] for item in walked] == [item["id"] for item in first["items"]]
        assert len(walked) == 4
        assert str(world.tenant_b.run_id) not in {item["id"] for item in walked}

        bad = world.client.get("/v1/evaluations", headers=a.headers, params={"cursor": "nope"})
        assert "cursor" in assert_problem(bad, 422)["detail"]
        assert_problem(world.client.get("/v1/evaluations?limit=0", headers=a.headers), 422)

    def test_detail_carries_metrics_slices_and_progress(
        self, world: World, platform: sessionmaker[Session]
    ) -> None:
        """A run's detail has quality score, metrics with CIs, slices and progress, even mid-run."""
        a = world.tenant_a
        response = world.client.get(f"/v1/evaluations/{a.run_id}", headers=a.headers)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        detail = response.json()
        assert detail["id"] == str(a.run_id)
        assert detail["status"] == "completed"
        assert detail["progress"] == {"batches_done": 1, "batches_total": 1}
        quality = detail["quality_score"]
        assert quality["name"] == "quality_score"
        assert quality["ci_low"] <= quality["value"] <= quality["ci_high"]
        names = {m["name"] for m in detail["metrics"]}
        assert {"rougeL_f", "quality_score"} <= names
        assert all(m["n"] == 12 for m in detail["metrics"])
        assert [s["slice"] for s in detail["slices"]] == ["hvac", "plumbing"]
        assert all(m["n"] == 6 for s in detail["slices"] for m in s["metrics"])
        assert detail["golden_dataset"]["sha256"]
        listed = world.client.get("/v1/evaluations", headers=a.headers).json()["items"]
        summary = next(item for item in listed if item["id"] == str(a.run_id))
        assert {field: detail[field] for field in summary} == summary

        (running,) = add_runs(platform, a, [datetime.now(UTC)])
        polled = world.client.get(f"/v1/evaluations/{running}", headers=a.headers).json()
        assert polled["status"] == "running"
        assert polled["progress"] == {"batches_done": 0, "batches_total": 1}
        assert polled["metrics"] == []
        assert polled["quality_score"] is None

        missing = world.client.get(f"/v1/evaluations/{uuid.uuid4()}", headers=a.headers)
        assert_problem(missing, 404)
        assert_problem(world.client.get("/v1/evaluations/not-a-uuid", headers=a.headers), 422)

    def test_examples_are_paged_by_example_id(self, world: World) -> None:
        """Per-example predictions and scores come in example id order, each once across pages."""
        a = world.tenant_a
        url = f"/v1/evaluations/{a.run_id}/examples"
        walked = walk(world, url, a.headers, limit=5)
        ids = [item["example_id"] for item in walked]
        assert ids == sorted(f"e{i}" for i in range(12))
        wrong = next(item for item in walked if item["example_id"] == "e3")
        assert wrong["prediction"] == "checked unit"
        assert wrong["slice"] == "hvac"
        assert wrong["scores"]["exact_match"] == 0
        right = next(item for item in walked if item["example_id"] == "e4")
        assert right["scores"]["exact_match"] == 1

    @covers(
        "GET /v1/evaluations",
        "GET /v1/evaluations/{run_id}",
        "GET /v1/evaluations/{run_id}/examples",
        "GET /v1/comparisons",
        cross_tenant=True,
    )
    def test_another_tenants_runs_are_not_found(self, world: World) -> None:
        """Tenant B gets 404, never 403, for tenant A's run, its examples and comparisons of it."""
        a, b = world.tenant_a, world.tenant_b
        for url in (
            f"/v1/evaluations/{a.run_id}",
            f"/v1/evaluations/{a.run_id}/examples",
            f"/v1/comparisons?run_a={a.run_id}&run_b={b.run_id}",
            f"/v1/comparisons?run_a={b.run_id}&run_b={a.run_id}",
            f"/v1/comparisons?run_a={a.run_id}&run_b={a.run_id}",
        ):
            assert_problem(world.client.get(url, headers=b.headers), 404)
        listed = world.client.get("/v1/evaluations", headers=b.headers).json()["items"]
        assert [item["id"] for item in listed] == [str(b.run_id)]


class TestCaching:
    def test_completed_run_detail_is_read_through_the_cache_per_tenant(
        self, world: World, platform: sessionmaker[Session]
    ) -> None:
        """A completed run's second read hits the tenant's own entry; running runs aren't cached."""
        a, b = world.tenant_a, world.tenant_b
        store = redis.Redis.from_url(REDIS_URL)
        try:
            key = f"{world.redis_prefix}cache:k:{run_detail_key(a.organization_id, a.run_id)}"
            before = world.state.metrics.cache_counters.snapshot()
            first = world.client.get(f"/v1/evaluations/{a.run_id}", headers=a.headers)
            assert store.exists(key)
            tagged = store.smembers(f"{world.redis_prefix}cache:t:{run_tag(a.run_id)}")
            assert tagged == {key.encode()}
            second = world.client.get(f"/v1/evaluations/{a.run_id}", headers=a.headers)
            after = world.state.metrics.cache_counters.snapshot()
            assert second.content == first.content == store.get(key)
            assert after["misses"] - before["misses"] == 1
            assert after["hits"] - before["hits"] == 1

            # A's entry exists, yet B neither gets it nor learns the run exists.
            assert_problem(world.client.get(f"/v1/evaluations/{a.run_id}", headers=b.headers), 404)
            own = world.client.get(f"/v1/evaluations/{b.run_id}", headers=b.headers).json()
            assert own["id"] == str(b.run_id)

            (running,) = add_runs(platform, a, [datetime.now(UTC)])
            for _ in range(2):
                polled = world.client.get(f"/v1/evaluations/{running}", headers=a.headers)
                assert polled.json()["status"] == "running"
            running_key = run_detail_key(a.organization_id, running)
            assert not store.exists(f"{world.redis_prefix}cache:k:{running_key}")
        finally:
            store.close()

    def test_reads_are_answered_from_the_database_when_redis_is_down(
        self, world: World, platform: sessionmaker[Session]
    ) -> None:
        """With the cache and rate limiter pointing at a closed port, reads still answer 200."""
        a = world.tenant_a
        better = perfect_run(platform, world, a)
        state = build_state(
            api=world.state.api,
            storage=world.state.storage,
            cache_settings=CacheSettings(redis_url="redis://127.0.0.1:1/0"),
            provider_auth=ProviderAuthSettings(provider_keys={}),
            launcher=world.launcher,
        )
        with TestClient(create_app(state), raise_server_exceptions=False) as client:
            for _ in range(2):
                detail = client.get(f"/v1/evaluations/{a.run_id}", headers=a.headers)
                assert detail.status_code == 200
                assert detail.json()["status"] == "completed"
            listed = client.get("/v1/evaluations", headers=a.headers)
            assert listed.status_code == 200
            assert {item["id"] for item in listed.json()["items"]} == {str(a.run_id), str(better)}
            compared = client.get(
                f"/v1/comparisons?run_a={a.run_id}&run_b={better}", headers=a.headers
            )
            assert compared.status_code == 200
        counters = state.metrics.cache_counters.snapshot()
        # The second detail read comes from the in-process tier; Redis answered nothing.
        assert counters["hits"] == 1
        assert counters["errors"] >= 3
        assert state.metrics.rate_limit_counters.snapshot()["errors"] >= 1


class TestComparisons:
    def test_compares_two_runs_and_caches_the_result(
        self, world: World, platform: sessionmaker[Session]
    ) -> None:
        """A comparison gives paired differences with CIs, is cached under both runs' tags."""
        a = world.tenant_a
        better = perfect_run(platform, world, a)
        url = f"/v1/comparisons?run_a={a.run_id}&run_b={better}"
        response = world.client.get(url, headers=a.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["run_a"]["id"], body["run_a"]["subject"]) == (
            str(a.run_id),
            "predictions p.jsonl",
        )
        assert (body["run_b"]["id"], body["run_b"]["subject"]) == (
            str(better),
            "predictions perfect.jsonl",
        )
        own_b = {m["name"]: m for m in body["run_b"]["metrics"]}
        assert own_b["quality_score"]["value"] == pytest.approx(1.0)
        assert body["n"] == 12
        quality = next(row for row in body["overall"] if row["name"] == "quality_score")
        assert quality["b"] == pytest.approx(1.0)
        assert quality["difference"] > 0
        assert quality["ci_low"] <= quality["difference"] <= quality["ci_high"]
        assert {row["slice"] for row in body["slices"]} == {"hvac", "plumbing"}
        assert isinstance(body["mcnemar"], list)

        store = redis.Redis.from_url(REDIS_URL)
        try:
            cache_key = comparison_key(a.organization_id, a.run_id, better)
            key = f"{world.redis_prefix}cache:k:{cache_key}"
            assert store.get(key) == response.content
            # Kept for a day, not the 300 s of other results: it never changes.
            assert 300 < store.ttl(key) <= world.state.cache_settings.comparison_ttl_seconds
            for run_id in (a.run_id, better):
                members = store.smembers(f"{world.redis_prefix}cache:t:{run_tag(run_id)}")
                assert key.encode() in members
        finally:
            store.close()
        hits = world.state.metrics.cache_counters.snapshot()["hits"]
        assert world.client.get(url, headers=a.headers).content == response.content
        assert world.state.metrics.cache_counters.snapshot()["hits"] == hits + 1

        (running,) = add_runs(platform, a, [datetime.now(UTC)])
        unfinished = world.client.get(
            f"/v1/comparisons?run_a={a.run_id}&run_b={running}", headers=a.headers
        )
        assert "completed" in assert_problem(unfinished, 409)["detail"]
        assert_problem(
            world.client.get(f"/v1/comparisons?run_a={a.run_id}", headers=a.headers), 422
        )


class TestVerdict:
    def test_comparison_carries_one_verdict_on_the_declared_primary_metric(
        self, world: World, platform: sessionmaker[Session]
    ) -> None:
        """The verdict decides on the quality score by default, on `primary` when declared; its
        interval and test agree; the other rows form one Holm family; n = 12 is flagged."""
        a = world.tenant_a
        better = perfect_run(platform, world, a)
        body = world.client.get(
            f"/v1/comparisons?run_a={a.run_id}&run_b={better}", headers=a.headers
        ).json()
        verdict = body["verdict"]
        assert verdict["primary_metric"] == "quality_score"
        assert verdict["flags"] == ["small_n"]
        assert verdict["n"] == 12
        excludes_zero = not (verdict["ci_low"] <= 0 <= verdict["ci_high"])
        assert excludes_zero == (verdict["p_value"] <= verdict["alpha"])
        expected = {True: "better", False: "no_detectable_difference"}[excludes_zero]
        assert verdict["outcome"] == expected
        assert verdict["statement"].startswith(
            "challenger better" if excludes_zero else "no detectable difference at this n"
        )
        rows = body["overall"] + body["slices"]
        assert [row["name"] for row in rows if row["primary"]] == ["quality_score"]
        assert verdict["secondary"]["size"] == sum(row["p_value"] is not None for row in rows) - 1
        assert all(row["flags"] == ["small_n"] for row in body["slices"])
        effect = verdict["effect"]
        assert effect["wins"] + effect["ties"] + effect["losses"] == 12

        declared = world.client.get(
            f"/v1/comparisons?run_a={a.run_id}&run_b={better}&primary=exact_match",
            headers=a.headers,
        ).json()["verdict"]
        assert declared["primary_metric"] == "exact_match"
        assert declared["effect"]["cohen_h"] is not None
        unknown = world.client.get(
            f"/v1/comparisons?run_a={a.run_id}&run_b={better}&primary=nonsense", headers=a.headers
        )
        assert "nonsense" in assert_problem(unknown, 422)["detail"]
        hostile = world.client.get(
            f"/v1/comparisons?run_a={a.run_id}&run_b={better}&primary=a;drop", headers=a.headers
        )
        assert_problem(hostile, 422)

    @covers("GET /v1/evaluation-plans", cross_tenant=True)
    def test_plans_from_a_given_sd_or_from_two_runs(
        self, world: World, platform: sessionmaker[Session]
    ) -> None:
        """n for a target effect and the MDE at n; the SD given or from the tenant's own runs
        (another tenant's run is a 404); contradictory or missing inputs are 422."""
        a, b = world.tenant_a, world.tenant_b
        given = world.client.get(
            "/v1/evaluation-plans",
            params={"paired_sd": 0.2, "effect": 0.02, "n": 400},
            headers=a.headers,
        )
        assert given.status_code == 200, given.text
        plan = given.json()
        # (1.95996 + 0.84162)^2 * (0.2 / 0.02)^2 = 784.9 -> 785
        assert plan["n_required"] == 785
        assert plan["minimum_detectable_effect"] == pytest.approx(2.80158 * 0.2 / 20, rel=1e-4)
        assert plan["source"] == "given"

        better = perfect_run(platform, world, a)
        estimated = world.client.get(
            "/v1/evaluation-plans",
            params={"run_a": str(a.run_id), "run_b": str(better), "effect": 0.05},
            headers=a.headers,
        )
        assert estimated.status_code == 200, estimated.text
        assert estimated.json()["paired_sd"] > 0
        assert "quality_score" in estimated.json()["source"]
        assert_problem(
            world.client.get(
                "/v1/evaluation-plans",
                params={"run_a": str(a.run_id), "run_b": str(better), "effect": 0.05},
                headers=b.headers,
            ),
            404,
        )
        for params in (
            {"effect": 0.02},
            {"paired_sd": 0.2},
            {"paired_sd": 0.2, "run_a": str(a.run_id), "run_b": str(better), "n": 10},
            {"paired_sd": -1, "n": 10},
            {"paired_sd": 0.2, "effect": 0},
        ):
            assert_problem(
                world.client.get("/v1/evaluation-plans", params=params, headers=a.headers), 422
            )


class TestRegistryAndQuality:
    def test_model_versions_and_quality_scores_are_paged(
        self, world: World, platform: sessionmaker[Session], registry_template: Path
    ) -> None:
        """Model versions and the tenant's quality score series list, filter and page completely."""
        a, b = world.tenant_a, world.tenant_b
        registry_file = make_url(world.state.registry.resolved_tracking_uri()).database
        assert registry_file is not None
        shutil.copy(registry_template, registry_file)

        versions = walk(world, "/v1/model-versions", a.headers, limit=2)
        assert [(v["name"], v["version"]) for v in versions] == [
            ("intent-classifier", "3"),
            ("intent-classifier", "2"),
            ("intent-classifier", "1"),
            ("summarizer", "1"),
        ]
        assert versions[1]["aliases"] == ["champion"]
        assert versions[1]["agent_type"] == "intent_classifier"
        assert versions[1]["task"] == "classification"
        summarizers = world.client.get(
            "/v1/model-versions", headers=a.headers, params={"agent_type": "summarizer"}
        ).json()
        assert [(v["name"], v["task"]) for v in summarizers["items"]] == [
            ("summarizer", "text_generation")
        ]

        later = datetime.now(UTC) + timedelta(hours=1)
        times = [later + timedelta(minutes=i) for i in range(3)]
        series = add_runs(platform, a, times, status="completed", quality=0.7)
        other = add_runs(
            platform,
            a,
            [later - timedelta(minutes=1)],
            status="completed",
            agent_type="tagger",
            quality=0.2,
        )
        points = walk(world, "/v1/quality-scores", a.headers, limit=2)
        assert [p["run_id"] for p in points] == [str(a.run_id), *map(str, other), *map(str, series)]
        assert points[-1]["value"] == pytest.approx(0.7)
        assert points[-1]["ci_low"] == pytest.approx(0.6)
        assert points[0]["subject"] == "predictions p.jsonl"
        assert points[0]["model"] is None
        assert points[0]["ci_low"] <= points[0]["value"] <= points[0]["ci_high"]
        finished = [p["finished_at"] for p in points]
        assert finished == sorted(finished)
        taggers = world.client.get(
            "/v1/quality-scores", headers=a.headers, params={"agent_type": "tagger"}
        ).json()["items"]
        assert [p["run_id"] for p in taggers] == [str(other[0])]
        theirs = world.client.get("/v1/quality-scores", headers=b.headers).json()["items"]
        assert [p["run_id"] for p in theirs] == [str(b.run_id)]


class TestNotices:
    @covers("GET /v1/notices", cross_tenant=True)
    @covers("POST /v1/notices/{notice_id}/acknowledgement", cross_tenant=True, audit=True)
    def test_lists_and_acknowledges_notices_addressed_to_the_tenant(
        self, world: World, platform: sessionmaker[Session]
    ) -> None:
        """A tenant lists and acknowledges (once, audited) only active notices addressed to it."""
        a, b = world.tenant_a, world.tenant_b
        now = datetime.now(UTC)
        with transaction(platform) as session:

            def notice(title: str, audience: list[str] | None, **when: datetime) -> str:
                draft = NoticeDraft(title=title, body=f"{title} body", audience=audience, **when)
                created = create_notice(session, draft=draft, actor="provider:test", now=now)
                return str(created.id)

            everyone = notice("maintenance", None, starts_at=now - timedelta(minutes=3))
            only_a = notice("your quota", ["tenant-a"], starts_at=now - timedelta(minutes=2))
            notice("upcoming", None, starts_at=now + timedelta(days=1))
            notice("over", None, starts_at=now - timedelta(days=2), ends_at=now - timedelta(days=1))

        listed = walk(world, "/v1/notices", a.headers, limit=1)
        assert [n["id"] for n in listed] == [only_a, everyone]
        assert listed[0]["title"] == "your quota"
        assert listed[0]["severity"] == "info"
        assert listed[0]["acknowledged_at"] is None

        url = f"/v1/notices/{only_a}/acknowledgement"
        first = world.client.post(url, headers=a.headers)
        assert first.status_code == 200, first.text
        assert first.json()["notice_id"] == only_a
        again = world.client.post(url, headers=a.headers)
        assert again.json() == first.json()
        shown = world.client.get("/v1/notices", headers=a.headers).json()["items"]
        assert shown[0]["acknowledged_at"] == first.json()["acknowledged_at"]
        (row,) = audit_rows(platform, "system_notice.acknowledged")
        assert row.target_id == only_a
        assert row.organization_id == a.organization_id
        assert row.actor == f"api_key:{a.api_key_id}"
        assert row.request_id == first.headers["x-request-id"]

        theirs = world.client.get("/v1/notices", headers=b.headers).json()["items"]
        assert [n["id"] for n in theirs] == [everyone]
        assert theirs[0]["acknowledged_at"] is None
        assert_problem(world.client.post(url, headers=b.headers), 404)
        assert_problem(
            world.client.post(f"/v1/notices/{uuid.uuid4()}/acknowledgement", headers=a.headers),
            404,
        )


class TestApiKeysAndAuth:
    @covers("GET /v1/api-keys", cross_tenant=True)
    @covers("DELETE /v1/api-keys/{key_id}", cross_tenant=True, audit=True)
    def test_lists_and_revokes_own_keys(
        self, world: World, platform: sessionmaker[Session]
    ) -> None:
        """Own keys list without secrets; revoking is audited, idempotent and immediate."""
        a, b = world.tenant_a, world.tenant_b
        spare_id, spare = issue_key(platform, a, ["results:read"])
        assert world.client.get("/v1/evaluations", headers=spare).status_code == 200

        response = world.client.get("/v1/api-keys", headers=a.headers)
        listed = walk(world, "/v1/api-keys", a.headers, limit=1)
        assert [k["id"] for k in listed] == [str(a.api_key_id), str(spare_id)]
        assert all(set(k) == KEY_FIELDS for k in listed)
        assert a.api_key not in response.text
        assert a.api_key.split("_", 2)[2] not in response.text
        assert listed[1]["scopes"] == ["results:read"]
        assert listed[1]["revoked_at"] is None
        assert a.api_key.startswith(f"sf_{listed[0]['prefix']}_")

        revoked = world.client.delete(f"/v1/api-keys/{spare_id}", headers=a.headers)
        assert revoked.status_code == 200, revoked.text
        assert revoked.json()["revoked_at"] is not None
        again = world.client.delete(f"/v1/api-keys/{spare_id}", headers=a.headers)
        assert again.json()["revoked_at"] == revoked.json()["revoked_at"]
        (row,) = audit_rows(platform, "api_key.revoked")
        assert row.target_id == str(spare_id)
        assert row.actor == f"api_key:{a.api_key_id}"
        assert row.organization_id == a.organization_id
        rejected = world.client.get("/v1/evaluations", headers=spare)
        assert "revoked" in assert_problem(rejected, 401)["detail"]
        assert rejected.headers["www-authenticate"] == "Bearer"

        assert_problem(world.client.delete(f"/v1/api-keys/{a.api_key_id}", headers=b.headers), 404)
        assert world.client.get("/v1/evaluations", headers=a.headers).status_code == 200
        theirs = world.client.get("/v1/api-keys", headers=b.headers).json()["items"]
        assert [k["id"] for k in theirs] == [str(b.api_key_id)]

    def test_rejects_missing_and_unknown_keys_and_missing_scopes(
        self, world: World, platform: sessionmaker[Session]
    ) -> None:
        """No or bad credentials get 401 with WWW-Authenticate; a key without the scope gets 403."""
        a = world.tenant_a
        for headers in (
            {},
            {"Authorization": "Bearer garbage"},
            {"Authorization": "Bearer sf_000000000000_unknownsecret"},
            {"Authorization": f"Basic {a.api_key}"},
            {"Authorization": f"Bearer {a.api_key[:-2]}xx"},
        ):
            response = world.client.get("/v1/evaluations", headers=headers)
            assert_problem(response, 401)
            assert response.headers["www-authenticate"] == "Bearer"

        _, reader = issue_key(platform, a, ["results:read"])
        _, notifier = issue_key(platform, a, ["notices:write"])
        for method, url, headers in (
            ("post", f"/v1/notices/{uuid.uuid4()}/acknowledgement", reader),
            ("get", "/v1/api-keys", reader),
            ("delete", f"/v1/api-keys/{a.api_key_id}", reader),
            ("get", "/v1/evaluations", notifier),
            ("get", f"/v1/evaluations/{a.run_id}", notifier),
        ):
            response = world.client.request(method, url, headers=headers)
            assert "scope" in assert_problem(response, 403)["detail"]
        assert world.client.get("/v1/evaluations", headers=a.headers).status_code == 200
