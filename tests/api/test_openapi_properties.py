"""Generated requests (schemathesis) against every operation, checked against the OpenAPI
document the app publishes, on SQLite with valid credentials (a tenant key; provider signing)."""

from __future__ import annotations

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

from tests.api.conftest import World

EXAMPLES_PER_OPERATION = 30
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

pytestmark = pytest.mark.parametrize("world", ["sqlite"], indirect=True)


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


class TestTenantReads:
    def test_every_read_conforms_to_the_schema(self, world: World) -> None:
        """Every GET under /v1 answers generated requests without a 5xx, with a documented
        status code, content type and body shape."""
        schema = schemathesis.openapi.from_dict(world.client.app.openapi())  # type: ignore[attr-defined]
        reads = schema.include(method="GET", path_regex="^/v1/")
        operations = [result.ok() for result in reads.get_all_operations()]
        assert len(operations) >= 5
        for operation in operations:
            _exercise(world, operation)

    def test_every_tenant_mutation_conforms_to_the_schema(self, world: World) -> None:
        """POST and DELETE under /v1 answer generated requests without a 5xx, as documented."""
        schema = schemathesis.openapi.from_dict(world.client.app.openapi())  # type: ignore[attr-defined]
        writes = schema.include(path_regex="^/v1/").exclude(method="GET")
        operations = [result.ok() for result in writes.get_all_operations()]
        assert len(operations) >= 2
        for operation in operations:
            _exercise(world, operation)


class TestProviderOperations:
    def test_every_signed_operation_conforms_to_the_schema(self, world: World) -> None:
        """Every /provider/v1 operation, signed, answers generated requests without a 5xx and
        with a documented status code, content type and body shape."""
        schema = schemathesis.openapi.from_dict(world.client.app.openapi())  # type: ignore[attr-defined]
        provider = schema.include(path_regex="^/provider/v1/")
        operations = [result.ok() for result in provider.get_all_operations()]
        assert len(operations) >= 10
        seen: set[int] = set()
        for operation in operations:
            seen.update(_exercise(world, operation, provider=True))
        # Signed requests get past authentication: successes and validation errors, not 401s.
        assert any(200 <= status < 300 for status in seen)
        assert 422 in seen
