"""Every tenant route refuses callers without a valid key and hides other tenants' data."""

from __future__ import annotations

import uuid

from tests.api.conftest import World
from tests.api.test_route_coverage import app_routes, covers

TENANT_ROUTES = sorted(route for route in app_routes() if route.split(" ", 1)[1].startswith("/v1/"))


def _url(path: str, world: World) -> str:
    return (
        path.replace("{run_id}", str(world.tenant_a.run_id))
        .replace("{notice_id}", str(uuid.uuid4()))
        .replace("{key_id}", str(world.tenant_a.api_key_id))
    )


class TestTenantIsolation:
    @covers(*TENANT_ROUTES, auth=True)
    def test_every_tenant_route_refuses_missing_and_wrong_keys(self, world: World) -> None:
        """Each /v1 route answers 401 problem+json without a key and with an unknown one."""
        assert TENANT_ROUTES
        for route in TENANT_ROUTES:
            method, path = route.split(" ", 1)
            url = _url(path, world)
            if path == "/v1/comparisons":
                url += f"?run_a={world.tenant_a.run_id}&run_b={world.tenant_a.run_id}"
            for headers in ({}, {"Authorization": "Bearer sf_abcdefabcdef_nope"}):
                response = world.client.request(method, url, headers=headers)
                assert response.status_code == 401, (route, response.text)
                assert response.headers["content-type"].startswith("application/problem+json")
                assert response.headers["www-authenticate"] == "Bearer"

    @covers("GET /v1/quality-scores", "GET /v1/model-versions", cross_tenant=True)
    def test_quality_scores_and_model_versions_hold_nothing_of_another_tenant(
        self, world: World
    ) -> None:
        """Quality scores list only the caller's runs; model versions are the platform's, shared."""
        a, b = world.tenant_a, world.tenant_b
        for tenant, other in ((a, b), (b, a)):
            response = world.client.get("/v1/quality-scores", headers=tenant.headers)
            assert response.status_code == 200, response.text
            run_ids = {item["run_id"] for item in response.json()["items"]}
            assert str(other.run_id) not in run_ids
        seen_by_a = world.client.get("/v1/model-versions", headers=a.headers)
        seen_by_b = world.client.get("/v1/model-versions", headers=b.headers)
        assert seen_by_a.status_code == seen_by_b.status_code == 200
        assert seen_by_a.json() == seen_by_b.json()
