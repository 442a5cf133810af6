"""Generated requests (schemathesis) against every operation, checked against the OpenAPI
document the app publishes, on SQLite with valid credentials (a tenant key; provider signing).

One test per operation, so that test workers share them out; the operations of a module share
one app and database (as they did when one test looped over them all), opened once per worker.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import SeededTemplates, World, open_world
from tests.api.test_route_coverage import PAGES_PREFIX, app_routes

EXAMPLES_PER_OPERATION = 30
"""Fewer loses findings: at 10, seven operations never showed a status (409, 422, 200) that 30
reach, so their conformance to those documented responses would go unchecked."""
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
UNAUTHENTICATED = {401, 403}


def _routes(prefix: str, *, reads: bool | None = None) -> list[str]:
    """`METHOD /path` of the documented operations under `prefix` (GETs only, or all but GETs)."""
    found = []
    for route in sorted(app_routes()):
        method, path = route.split(" ", 1)
        if not path.startswith(prefix) or path.startswith(PAGES_PREFIX):
            continue
        if reads is None or (method == "GET") == reads:
            found.append(route)
    return found


TENANT_READS = _routes("/v1/", reads=True)
TENANT_MUTATIONS = _routes("/v1/", reads=False)
PROVIDER_OPERATIONS = _routes("/provider/v1/")


@pytest.fixture(scope="module")
def shared_world(
    tmp_path_factory: pytest.TempPathFactory, seeded_templates: SeededTemplates
) -> Iterator[World]:
    """The app on a copy of the seeded SQLite world, for every operation of this module."""
    with open_world("sqlite", tmp_path_factory.mktemp("properties"), seeded_templates) as world:
        yield world


@pytest.fixture(scope="module")
def schema(shared_world: World) -> Any:
    """The OpenAPI document the app under test publishes, loaded by schemathesis."""
    return schemathesis.openapi.from_dict(shared_world.client.app.openapi())  # type: ignore[attr-defined]


def _operation(schema: Any, route: str) -> Any:
    method, path = route.split(" ", 1)
    return schema[path][method]


def _strategies(world: World, operation: Any) -> list[Any]:
    """Free generation, plus cases aimed at the tenant's real run so 200s are checked too."""
    strategies = [operation.as_strategy()]
    run_id = str(world.tenant_a.run_id)
    if "{run_id}" in operation.path:
        strategies.append(operation.as_strategy(path_parameters={"run_id": run_id}))
    if operation.path == "/v1/comparisons":
        strategies.append(operation.as_strategy(query={"run_a": run_id, "run_b": run_id}))
    return strategies


def _exercise(world: World, operation: Any, *, provider: bool = False) -> list[int]:
    """Run the generated cases of one operation; the status codes seen."""
    statuses: list[int] = []

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=st.one_of(_strategies(world, operation)))
    def check(case: Any) -> None:
        headers = {} if provider else world.tenant_a.headers
        sent = case.as_transport_kwargs(base_url="http://testserver", headers=headers)
        response = world.client.request(
            sent["method"],
            sent["url"],
            params=sent.get("params"),
            headers=sent.get("headers"),
            json=sent.get("json"),
            auth=world.provider_auth() if provider else None,
        )
        statuses.append(response.status_code)
        case.validate_response(response, checks=CHECKS)

    check()
    return statuses


class TestOperationsListed:
    def test_the_tests_below_cover_every_documented_operation(self, schema: Any) -> None:
        """The operations parametrized below are exactly the document's, by prefix and method."""

        def documented(selection: Any) -> list[str]:
            operations = [result.ok() for result in selection.get_all_operations()]
            return sorted(f"{op.method.upper()} {op.path}" for op in operations)

        assert documented(schema.include(method="GET", path_regex="^/v1/")) == TENANT_READS
        writes = schema.include(path_regex="^/v1/").exclude(method="GET")
        assert documented(writes) == TENANT_MUTATIONS
        assert documented(schema.include(path_regex="^/provider/v1/")) == PROVIDER_OPERATIONS
        assert len(TENANT_READS) >= 5
        assert len(TENANT_MUTATIONS) >= 2
        assert len(PROVIDER_OPERATIONS) >= 10


class TestTenantReads:
    @pytest.mark.parametrize("route", TENANT_READS)
    def test_every_read_conforms_to_the_schema(
        self, shared_world: World, schema: Any, route: str
    ) -> None:
        """Every GET under /v1 answers generated requests without a 5xx, with a documented
        status code, content type and body shape."""
        _exercise(shared_world, _operation(schema, route))

    @pytest.mark.parametrize("route", TENANT_MUTATIONS)
    def test_every_tenant_mutation_conforms_to_the_schema(
        self, shared_world: World, schema: Any, route: str
    ) -> None:
        """POST and DELETE under /v1 answer generated requests without a 5xx, as documented."""
        _exercise(shared_world, _operation(schema, route))


class TestProviderOperations:
    @pytest.mark.parametrize("route", PROVIDER_OPERATIONS)
    def test_every_signed_operation_conforms_to_the_schema(
        self, shared_world: World, schema: Any, route: str
    ) -> None:
        """Every /provider/v1 operation, signed, answers generated requests without a 5xx and
        with a documented status code, content type and body shape."""
        seen = set(_exercise(shared_world, _operation(schema, route), provider=True))
        # Signed requests get past authentication: no 401 or 403 on any operation, and every
        # list (a GET without path parameters) answers some of them with a success.
        assert not seen & UNAUTHENTICATED, seen
        method, path = route.split(" ", 1)
        if method == "GET" and "{" not in path:
            assert any(200 <= status < 300 for status in seen), seen

    def test_a_signed_request_with_an_invalid_body_is_a_validation_error(
        self, shared_world: World
    ) -> None:
        """Past authentication, a signed request is validated: 422, not 401."""
        response = shared_world.client.post(
            "/provider/v1/notices", json={"title": 7}, auth=shared_world.provider_auth()
        )
        assert response.status_code == 422, response.text
