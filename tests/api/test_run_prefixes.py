"""The tenant API takes the short run ids the CLI prints, scoped to the caller's tenant."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import World


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    return body


class TestRunIdPrefixes:
    def test_a_unique_prefix_reads_the_same_run_as_the_full_id(self, world: World) -> None:
        """GET /v1/evaluations/{8-char prefix} answers the full id's document."""
        a = world.tenant_a
        full = world.client.get(f"/v1/evaluations/{a.run_id}", headers=a.headers)
        short = world.client.get(f"/v1/evaluations/{str(a.run_id)[:8]}", headers=a.headers)
        assert full.status_code == 200
        assert short.status_code == 200
        assert short.json() == full.json()
        examples = world.client.get(
            f"/v1/evaluations/{str(a.run_id)[:8]}/examples", headers=a.headers
        )
        assert examples.status_code == 200
        assert examples.json()["items"]

    def test_prefixes_compare(self, world: World) -> None:
        """Comparisons take prefixes too: two names of one run are refused as the same run."""
        a = world.tenant_a
        prefix = str(a.run_id)[:8]
        compared = world.client.get(
            f"/v1/comparisons?run_a={prefix}&run_b={a.run_id}", headers=a.headers
        )
        body = _problem(compared, 422)
        assert body["errors"][0]["field"] == "run_b"
        assert body["errors"][0]["pointer"] == "#/run_b"
        assert f"same run as run_a ({a.run_id})" in body["detail"]

    def test_another_tenants_prefix_is_not_found(self, world: World) -> None:
        """Tenant B asking for tenant A's run by prefix gets 404, naming no CLI command."""
        a, b = world.tenant_a, world.tenant_b
        body = _problem(
            world.client.get(f"/v1/evaluations/{str(a.run_id)[:8]}", headers=b.headers), 404
        )
        assert "streamflow" not in body["detail"]
        assert body["errors"][0]["pointer"] == "#/run_id"

    def test_too_short_or_not_hex_is_invalid(self, world: World) -> None:
        """Fewer than 4 characters, or characters no id has, are refused with 422."""
        a = world.tenant_a
        _problem(world.client.get("/v1/evaluations/abc", headers=a.headers), 422)
        _problem(world.client.get("/v1/evaluations/zzzzzzzz", headers=a.headers), 422)

    def test_the_provider_polls_by_prefix_within_the_named_tenant(self, world: World) -> None:
        """The provider's status route takes a prefix; under another tenant's slug it is 404."""
        from tests.api.test_provider_routes import P, signed

        a, b = world.tenant_a, world.tenant_b
        prefix = str(a.run_id)[:8]
        found = signed(world, "GET", f"{P}/evaluations/{prefix}", params={"organization": a.slug})
        assert found.status_code == 200, found.text
        assert found.json()["run_id"] == str(a.run_id)
        other = signed(world, "GET", f"{P}/evaluations/{prefix}", params={"organization": b.slug})
        _problem(other, 404)
