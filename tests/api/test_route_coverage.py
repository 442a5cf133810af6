"""Every route of the app has an authentication test, tenant routes a cross-tenant test, and
mutations an audit assertion.

How a test declares what it covers: decorate it with `covers`, naming routes as
`"<METHOD> <path template as in the OpenAPI document>"`:

    from tests.api.test_route_coverage import covers

    @covers("GET /v1/evaluations/{run_id}", auth=True, cross_tenant=True)
    def test_other_tenants_run_is_not_found(self, world: World) -> None: ...

    @covers("POST /provider/v1/tenants", audit=True)
    def test_create_tenant_is_audited(self, world: World) -> None: ...

- `auth=True`: the test shows the route refuses missing or wrong credentials (401/403).
- `cross_tenant=True` (routes under `/v1`): the test shows one tenant cannot read or change
  another tenant's objects through the route (typically a 404).
- `audit=True` (POST, PUT, PATCH, DELETE): the test asserts the audit row the mutation writes.

One decorator may name several routes (e.g. a test parametrized over every route), and a test
may carry several decorators. A claim is checked, not believed: a test on `world` fails unless
it requested every route it claims (`claims_are_exercised` in conftest.py). The auth tests and
the cross-tenant test iterate the app's route table itself, so a new route is covered by them
(or fails them) without anyone adding a decorator. Claims are read from every
`tests/api/test_*.py` module, so they count whichever files pytest selected. Health probes
are exempt (`EXEMPT`); a mutation that writes no audit row must be listed in `AUDIT_EXEMPT`
with the reason.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi.routing import APIRoute, iter_route_contexts

import tests.api
from api.app import create_app

Test = TypeVar("Test", bound=Callable[..., Any])

EXEMPT = {
    "GET /healthz": "liveness probe: public by design, reads nothing",
    "GET /readyz": "readiness probe: public by design (still address rate-limited)",
    "GET /metrics": "Prometheus scrape: public by design (still address rate-limited)",
    "GET /.well-known/acme-challenge/{token}": (
        "ACME HTTP-01: the CA fetches it unauthenticated by design (RFC 8555 §8.3); "
        "address rate-limited, answers only stored tokens (tests/api/test_domain_routes.py)"
    ),
    "GET /dashboards/sign-in": "the sign-in form: public by design, reads nothing",
}
AUDIT_EXEMPT: dict[str, str] = {
    "POST /v1/agents/{agent_type}/predict": (
        "a prediction changes no object; each one is recorded as a traffic-log row and a usage "
        "event instead (tests/api/test_agent_routes.py asserts both)"
    ),
}
PAGES_PREFIX = "/dashboards"
"""Browser pages: left out of the API document on purpose, still held to every check here."""
MUTATIONS = {"POST", "PUT", "PATCH", "DELETE"}
ATTRIBUTE = "__route_coverage__"


@dataclass(frozen=True)
class Claim:
    """What one test claims to cover for one route."""

    route: str
    auth: bool
    cross_tenant: bool
    audit: bool
    test: str


def covers(
    *routes: str, auth: bool = False, cross_tenant: bool = False, audit: bool = False
) -> Callable[[Test], Test]:
    """Declare that the decorated test covers `routes` in the given ways."""
    if not routes:
        raise ValueError("name at least one route, e.g. 'GET /v1/evaluations'")

    def declare(test: Test) -> Test:
        claims = [*getattr(test, ATTRIBUTE, ())]
        for route in routes:
            claims.append(Claim(route, auth, cross_tenant, audit, test.__qualname__))
        setattr(test, ATTRIBUTE, claims)
        return test

    return declare


@functools.cache
def _routes() -> frozenset[str]:
    return frozenset(_enumerate_routes())


def app_routes() -> set[str]:
    """`METHOD /path` of every API route of the app, however its routers are included."""
    return set(_routes())


def _enumerate_routes() -> set[str]:
    # FastAPI keeps included routers nested in `app.routes`; this walks them with prefixes.
    found = set()
    for context in iter_route_contexts(create_app().routes):
        if isinstance(context.original_route, APIRoute) and context.path:
            for method in context.methods or ():
                if method != "HEAD":
                    found.add(f"{method} {context.path}")
    return found


def _test_functions(module: Any) -> Iterator[Any]:
    for _, member in inspect.getmembers(module):
        if inspect.isfunction(member):
            yield member
        elif inspect.isclass(member) and member.__module__ == module.__name__:
            for _, method in inspect.getmembers(member, inspect.isfunction):
                yield method


def collected_claims() -> list[Claim]:
    """The claims of every test in tests/api, selected by pytest or not."""
    claims = []
    for info in pkgutil.iter_modules(tests.api.__path__):
        if not info.name.startswith("test_"):
            continue
        module = importlib.import_module(f"tests.api.{info.name}")
        for function in _test_functions(module):
            if function.__module__ == module.__name__:
                claims.extend(getattr(function, ATTRIBUTE, ()))
    return claims


def _lacking(routes: set[str], claims: list[Claim], kind: str) -> list[str]:
    covered = {claim.route for claim in claims if getattr(claim, kind)}
    return sorted(routes - covered)


class TestRouteCoverage:
    def test_routes_are_enumerated(self) -> None:
        """The enumeration sees the health, tenant and provider routes of the app."""
        routes = app_routes()
        assert set(EXEMPT) <= routes
        assert "POST /provider/v1/tenants" in routes
        assert any(route.split(" ", 1)[1].startswith("/v1/") for route in routes)

    def test_routes_match_the_openapi_document(self) -> None:
        """Every API route is documented, so it cannot hide from clients or from these checks.

        Dashboard pages are the exception (HTML for browsers), and only they.
        """
        documented = {
            f"{method.upper()} {path}"
            for path, operations in create_app().openapi()["paths"].items()
            for method in operations
        }
        pages = {route for route in app_routes() if route.split(" ", 1)[1].startswith(PAGES_PREFIX)}
        assert documented == app_routes() - pages
        assert pages, "the dashboards' pages are enumerated too"

    def test_claims_name_real_routes(self) -> None:
        """A claim naming a route the app does not have (a typo, a removed route) fails."""
        routes = app_routes()
        unknown = sorted(
            f"{claim.route} ({claim.test})"
            for claim in collected_claims()
            if claim.route not in routes
        )
        assert unknown == []

    def test_every_route_has_an_auth_test(self) -> None:
        """Every route but the health probes has a test showing it refuses bad credentials."""
        routes = app_routes() - set(EXEMPT)
        assert _lacking(routes, collected_claims(), "auth") == []

    def test_every_tenant_route_has_a_cross_tenant_test(self) -> None:
        """Every route under /v1 has a test showing one tenant cannot reach another's data."""
        routes = {route for route in app_routes() if route.split(" ", 1)[1].startswith("/v1/")}
        assert _lacking(routes, collected_claims(), "cross_tenant") == []

    def test_every_mutation_has_an_audit_assertion(self) -> None:
        """Every POST, PUT, PATCH and DELETE route has a test asserting its audit row."""
        routes = {
            route
            for route in app_routes()
            if route.split(" ", 1)[0] in MUTATIONS and route not in AUDIT_EXEMPT
        } - set(EXEMPT)
        assert _lacking(routes, collected_claims(), "audit") == []

    def test_audit_exemptions_name_real_mutations(self) -> None:
        """Each audit exemption names an existing mutation route and gives a reason."""
        routes = app_routes()
        wrong = [
            route
            for route, reason in AUDIT_EXEMPT.items()
            if route not in routes or route.split(" ", 1)[0] not in MUTATIONS or not reason
        ]
        assert wrong == []
