"""Liveness, readiness and Prometheus metrics, through the app on both backends."""

from __future__ import annotations

from models.db.engine import make_engine, make_sessionmaker
from tests.api.conftest import World
from tests.api.test_provider_routes import P, app_like, closed_port, signed


class TestLiveness:
    def test_healthz_answers_without_credentials(self, world: World) -> None:
        """/healthz says the process is up, with no credentials and no database work."""
        response = world.client.get("/healthz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        assert response.headers["x-request-id"]


class TestReadiness:
    def test_ready_when_database_and_redis_answer(self, world: World) -> None:
        """/readyz is 200 when the database answers SELECT 1 and Redis answers PING."""
        response = world.client.get("/readyz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}

    def test_not_ready_when_redis_is_down(self, world: World) -> None:
        """/readyz is a 503 problem naming Redis when Redis does not answer; /healthz stays 200."""
        with app_like(world, redis_url=f"redis://127.0.0.1:{closed_port()}/0") as (client, _):
            response = client.get("/readyz")
            assert response.status_code == 503
            assert response.headers["content-type"] == "application/problem+json"
            problem = response.json()
            assert problem["type"] == "/problems/not-ready"
            assert problem["status"] == 503
            assert "redis" in problem["detail"]
            assert "database" not in problem["detail"]
            assert response.headers["retry-after"]
            assert client.get("/healthz").status_code == 200

    def test_not_ready_when_database_is_down(self, world: World) -> None:
        """/readyz is a 503 problem naming the database when it cannot be reached."""
        unreachable = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/none")
        try:
            with app_like(world, sessions=make_sessionmaker(unreachable)) as (client, _):
                response = client.get("/readyz")
            assert response.status_code == 503
            assert response.json()["detail"] == "not ready: database did not answer"
        finally:
            unreachable.dispose()

    def test_readiness_counts_against_the_address_limit(self, world: World) -> None:
        """/readyz needs no credentials but is refused past the per-address limit."""
        api = world.state.api.model_copy(update={"rate_limit_per_address_per_minute": 1})
        with app_like(world, api=api) as (client, _):
            assert client.get("/readyz").status_code == 200
            refused = client.get("/readyz")
            assert refused.status_code == 429
            assert refused.json()["type"] == "/problems/rate-limited"
            assert int(refused.headers["retry-after"]) >= 1
            assert client.get("/healthz").status_code == 200


class TestMetrics:
    def test_metrics_expose_requests_cache_limits_and_runs(self, world: World) -> None:
        """/metrics has latency histograms, status codes, cache lookups, rate-limit rejections
        and evaluation runs by status (two seeded runs are completed)."""
        world.client.get("/healthz")
        world.client.get(f"{P}/tenants")
        for _ in range(2):
            detail = f"/v1/evaluations/{world.tenant_a.run_id}"
            assert world.client.get(detail, headers=world.tenant_a.headers).status_code == 200
        signed(world, "GET", f"{P}/tenants")
        response = world.client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        text = response.text
        assert "# TYPE streamflow_http_request_duration_seconds histogram" in text
        assert 'streamflow_http_request_duration_seconds_bucket{le="0.005",method="GET"' in text
        assert 'status="401"' in text
        assert 'status="200"' in text
        assert 'streamflow_http_responses_total{method="GET",route="/healthz",status="200"}' in text
        assert 'streamflow_cache_lookups_total{outcome="hit"}' in text
        assert 'streamflow_cache_lookups_total{outcome="miss"}' in text
        assert "# TYPE streamflow_rate_limited_total counter" in text
        assert 'streamflow_evaluation_runs{status="completed"} 2.0' in text
        assert 'streamflow_evaluation_runs{status="failed"} 0.0' in text

    def test_route_labels_carry_the_router_prefix(self, world: World) -> None:
        """Series are labelled with the full route template, so /v1 and /provider/v1 routes of
        the same relative path stay apart."""
        world.client.get(f"/v1/evaluations/{world.tenant_a.run_id}", headers=world.tenant_a.headers)
        signed(world, "GET", f"{P}/evaluations/{world.tenant_a.run_id}?organization=tenant-a")
        text = world.client.get("/metrics").text
        assert 'route="/v1/evaluations/{run_id}"' in text
        assert 'route="/provider/v1/evaluations/{run_id}"' in text

    def test_rate_limit_rejections_are_counted(self, world: World) -> None:
        """A refused request shows up in streamflow_rate_limited_total by limit kind."""
        api = world.state.api.model_copy(update={"rate_limit_per_minute": 1})
        with app_like(world, api=api) as (client, _):
            assert signed(world, "GET", f"{P}/tenants", client=client).status_code == 200
            assert signed(world, "GET", f"{P}/tenants", client=client).status_code == 429
            text = client.get("/metrics").text
        assert 'streamflow_rate_limited_total{kind="key"} 1.0' in text

    def test_metrics_without_database_keep_the_process_series(self, world: World) -> None:
        """Without the database /metrics still serves the process's series, minus run counts."""
        unreachable = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/none")
        try:
            with app_like(world, sessions=make_sessionmaker(unreachable)) as (client, _):
                response = client.get("/metrics")
            assert response.status_code == 200
            assert "streamflow_http_request_duration_seconds" in response.text
            assert "streamflow_evaluation_runs" not in response.text
        finally:
            unreachable.dispose()
