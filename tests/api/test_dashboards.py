"""The dashboards over HTTP: sign-in, sessions, CSRF, and what each page says about seeded runs.

What a person sees in a real browser (charts drawn, HTMX swaps, no console errors) is in
`test_dashboards_browser.py`; here every page is checked on both backends.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import redis
from markupsafe import escape
from sqlalchemy import select

from api.routers import console
from api.state import ApiState
from models.cache.keys import comparison_key
from models.db.engine import make_engine, make_sessionmaker, transaction
from models.db.enums import CertificateStatus
from models.db.tables import AuditLogEntry, Certificate, DashboardSession, Domain, EvaluationRun
from models.domain_settings import DomainSettings
from pipelines.domains.service import add_domain, dns_config_from
from pipelines.evaluation.views import store_comparison, stored_comparison
from pipelines.provider_users.service import create_user
from tests.acme_servers import ChallTestSrv, challtestsrv  # noqa: F401 (fixture)
from tests.api.conftest import REDIS_URL, World, completed_run
from tests.api.test_profitability_routes import _event, _prices, _rollup
from tests.api.test_provider_routes import summarizer, summarizer_store  # noqa: F401 (fixtures)
from tests.api.test_route_coverage import PAGES_PREFIX, app_routes, covers

PASSWORD = "a long enough passphrase"
PAGES = sorted(route for route in app_routes() if route.split(" ", 1)[1].startswith(PAGES_PREFIX))
PUBLIC = {
    "GET /dashboards/sign-in",
    "POST /dashboards/sign-in",
    "POST /dashboards/tenant-sign-in",
}
"""The sign-in form and its two submissions: reachable without a session by design."""


@dataclass
class Pages:
    """The world with two provider users and a second run of tenant A to compare with."""

    world: World
    admin: str
    analyst: str
    baseline: uuid.UUID
    challenger: uuid.UUID

    def sign_in(self, email: str, password: str = PASSWORD) -> str:
        """Sign the test client in; returns the session's CSRF token."""
        response = self.world.client.post(
            "/dashboards/sign-in",
            data={"email": email, "password": password, "next": "/dashboards/evaluations"},
            follow_redirects=False,
        )
        assert response.status_code == 303, response.text
        page = self.world.client.get("/dashboards/evaluations")
        match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert match is not None
        return match.group(1)

    def audit(self, action: str) -> list[AuditLogEntry]:
        with transaction(self.owner_sessions()) as session:
            return list(
                session.scalars(select(AuditLogEntry).where(AuditLogEntry.action == action))
            )

    def owner_sessions(self):  # type: ignore[no-untyped-def]
        return make_sessionmaker(make_engine(self.world.state.storage.resolved_database_url()))


@pytest.fixture
def pages(world: World) -> Iterator[Pages]:
    engine = make_engine(world.state.storage.resolved_database_url())
    sessions = make_sessionmaker(engine)
    try:
        with transaction(sessions) as session:
            for email, role in (
                ("ada@provider.example", "admin"),
                ("ana@provider.example", "analyst"),
            ):
                create_user(
                    session,
                    email=email,
                    name=email.split("@")[0].title(),
                    role=role,
                    password=PASSWORD,
                    actor="test",
                )
        challenger = completed_run(
            sessions,
            world.state.storage.golden_dataset_dir,
            world.tenant_a.organization_id,
            world.tenant_a.dataset,
            wrong_every=2,
        )
        yield Pages(
            world, "ada@provider.example", "ana@provider.example", world.tenant_a.run_id, challenger
        )
    finally:
        engine.dispose()


def _comparisons(pages: Pages, outcome: str, labels: dict[str, str]) -> float:
    """Comparisons the app computed (`computed`) or refused (`refused`, with a reason)."""
    value = pages.world.state.metrics.registry.get_sample_value(
        f"streamflow_expensive_reads_{outcome}_total", {"kind": "comparison", **labels}
    )
    return value or 0.0


def _concrete(route: str, pages: Pages) -> tuple[str, str]:
    method, template = route.split(" ", 1)
    path = (
        template.replace("{run_id}", str(pages.baseline))
        .replace("{slug}", pages.world.tenant_a.slug)
        .replace("{key_id}", str(pages.world.tenant_a.api_key_id))
        .replace("{notice_id}", str(uuid.uuid4()))
        .replace("{domain_id}", str(uuid.uuid4()))
        .replace("{experiment_id}", str(uuid.uuid4()))
        .replace("{decision_id}", str(uuid.uuid4()))
        .replace("{report_id}", str(uuid.uuid4()))
    )
    if path.startswith("/dashboards/compare"):
        path += f"?run_a={pages.baseline}&run_b={pages.challenger}&metric=exact_match"
    return method, path


class TestSignIn:
    @covers(*[r for r in PAGES if r not in PUBLIC], auth=True)
    def test_every_page_sends_a_stranger_to_sign_in(self, pages: Pages) -> None:
        """Without a session (or with a made-up one) every page redirects to the sign-in form,
        keeping where it was."""
        for cookie in (None, "made-up-session"):
            pages.world.client.cookies.clear()
            if cookie is not None:
                pages.world.client.cookies.set("streamflow_session", cookie)
            for route in (r for r in PAGES if r not in PUBLIC):
                method, path = _concrete(route, pages)
                response = pages.world.client.request(method, path, follow_redirects=False)
                assert response.status_code == 303, route
                location = response.headers["location"]
                assert location.startswith("/dashboards/sign-in?next=/dashboards"), route

    def test_htmx_requests_without_a_session_get_401_and_where_to_go(self, pages: Pages) -> None:
        """A fragment cannot be replaced by a sign-in page: HTMX is told to navigate instead."""
        _method, path = _concrete("GET /dashboards/compare/examples", pages)
        response = pages.world.client.get(path, headers={"HX-Request": "true"})
        assert response.status_code == 401
        assert response.headers["HX-Redirect"].startswith("/dashboards/sign-in?next=")

    @covers("POST /dashboards/sign-in", auth=True, audit=True)
    def test_sign_in_opens_a_session_and_is_audited(self, pages: Pages) -> None:
        """Right credentials: an HttpOnly SameSite cookie, a stored hash of it, an audit row."""
        wrong = pages.world.client.post(
            "/dashboards/sign-in", data={"email": pages.admin, "password": "not the password"}
        )
        assert wrong.status_code == 401
        assert "the e-mail address or the password is wrong" in wrong.text
        response = pages.world.client.post(
            "/dashboards/sign-in",
            data={"email": pages.admin, "password": PASSWORD, "next": "https://evil.example/x"},
            follow_redirects=False,
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/dashboards/evaluations"
        cookie = response.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=lax" in cookie
        token = pages.world.client.cookies["streamflow_session"]
        with transaction(pages.owner_sessions()) as session:
            stored = session.scalars(select(DashboardSession.token_hash)).all()
        assert token not in stored
        assert len(stored) == 1
        assert len(pages.audit("provider_user.signed_in")) == 1

    @covers("POST /dashboards/tenant-sign-in", auth=True, audit=True)
    @covers("GET /dashboards/tenant", auth=True)
    def test_a_tenant_signs_in_with_its_key_and_sees_no_provider_page(self, pages: Pages) -> None:
        """A tenant session is audited for the tenant, sees its own runs only, and is refused
        the provider's pages; a provider user is refused the tenant's."""
        refused = pages.world.client.post("/dashboards/tenant-sign-in", data={"api_key": "sf_x_y"})
        assert refused.status_code == 401
        response = pages.world.client.post(
            "/dashboards/tenant-sign-in",
            data={"api_key": pages.world.tenant_a.api_key},
            follow_redirects=False,
        )
        assert response.status_code == 303
        [row] = pages.audit("dashboard_session.opened")
        assert row.organization_id == pages.world.tenant_a.organization_id
        assert response.headers["location"] == "/dashboards/tenant"
        own = pages.world.client.get("/dashboards/tenant").text
        assert str(pages.world.tenant_a.run_id)[:8] in own
        assert str(pages.world.tenant_b.run_id)[:8] not in own
        page = pages.world.client.get(f"/dashboards/evaluations/{pages.world.tenant_b.run_id}")
        assert page.status_code == 403
        assert "for provider users" in page.text
        pages.world.client.cookies.clear()
        pages.sign_in(pages.analyst)
        assert pages.world.client.get("/dashboards/tenant").status_code == 403

    @covers("POST /dashboards/sign-out", auth=True, audit=True)
    def test_sign_out_needs_the_csrf_token_and_ends_the_session(self, pages: Pages) -> None:
        """A cross-site form without the token is refused; with it the session is gone."""
        csrf = pages.sign_in(pages.analyst)
        forged = pages.world.client.post("/dashboards/sign-out", follow_redirects=False)
        assert forged.status_code == 403
        response = pages.world.client.post(
            "/dashboards/sign-out", data={"csrf_token": csrf}, follow_redirects=False
        )
        assert response.status_code == 303
        assert len(pages.audit("dashboard_session.closed")) == 1
        after = pages.world.client.get("/dashboards/evaluations", follow_redirects=False)
        assert after.status_code == 303


class TestPages:
    @covers("GET /dashboards", "GET /dashboards/evaluations", auth=True)
    def test_the_evaluations_list_shows_every_organisations_runs(self, pages: Pages) -> None:
        """Analysts see each tenant's runs, can filter by organisation, and page with HTMX."""
        pages.sign_in(pages.analyst)
        home = pages.world.client.get("/dashboards", follow_redirects=False)
        assert home.headers["location"] == "/dashboards/evaluations"
        listed = pages.world.client.get("/dashboards/evaluations").text
        for run_id in (pages.baseline, pages.challenger, pages.world.tenant_b.run_id):
            assert f"/dashboards/evaluations/{run_id}" in listed
        only_b = pages.world.client.get("/dashboards/evaluations?organization=tenant-b").text
        assert str(pages.world.tenant_b.run_id) in only_b
        assert str(pages.baseline) not in only_b

    @covers("GET /dashboards/evaluations/{run_id}", auth=True)
    def test_a_run_page_shows_each_metric_with_its_interval(self, pages: Pages) -> None:
        """The quality score and every overall metric read as the API serves them."""
        pages.sign_in(pages.analyst)
        detail = pages.world.client.get(
            f"/v1/evaluations/{pages.baseline}", headers=pages.world.tenant_a.headers
        ).json()
        page = pages.world.client.get(f"/dashboards/evaluations/{pages.baseline}")
        assert page.status_code == 200
        assert page.headers["content-security-policy"].startswith("default-src 'self'")
        quality = detail["quality_score"]
        assert f"{quality['value']:.4f}" in page.text
        assert f"[{quality['ci_low']:.4f}, {quality['ci_high']:.4f}]" in page.text
        for metric in detail["metrics"]:
            assert f'<th scope="row">{metric["name"]}</th>' in page.text
        exact = next(m for m in detail["metrics"] if m["name"] == "exact_match")
        assert exact["method"] == "wilson"
        assert '<td class="method">wilson</td>' in page.text
        # Both slices have 6 examples, under the minimum n of 30: flagged as the API flags them.
        hvac = next(s for s in detail["slices"] if s["slice"] == "hvac")
        assert all("small_n" in m["flags"] for m in hvac["metrics"])
        slices = page.text.split('id="slices"', 1)[1]
        assert '<span class="flag">small_n</span>' in slices
        missing = pages.world.client.get(f"/dashboards/evaluations/{uuid.uuid4()}")
        assert missing.status_code == 404

    def test_a_run_page_links_its_prefect_flow_run(self, pages: Pages) -> None:
        """The flow run that carried a run out is in its detail and linked to the Prefect UI."""
        flow_run = str(uuid.uuid4())
        with transaction(pages.owner_sessions()) as session:
            session.get_one(EvaluationRun, pages.challenger).flow_run_id = flow_run
        pages.sign_in(pages.analyst)
        detail = pages.world.client.get(
            f"/v1/evaluations/{pages.challenger}", headers=pages.world.tenant_a.headers
        ).json()
        assert detail["flow_run_id"] == flow_run
        page = pages.world.client.get(f"/dashboards/evaluations/{pages.challenger}")
        ui = pages.world.state.api.prefect_ui_url
        assert f'href="{ui}/runs/flow-run/{flow_run}">Prefect flow run</a>' in page.text

    @covers(
        "GET /dashboards/compare",
        "GET /dashboards/compare/differences",
        "GET /dashboards/compare/examples",
        auth=True,
    )
    def test_compare_shows_differences_and_the_regressed_examples(self, pages: Pages) -> None:
        """The paired differences match the API's comparison; the example filter finds the
        examples B got wrong that A got right, with the expected text beside them."""
        pages.sign_in(pages.analyst)
        api = pages.world.client.get(
            f"/v1/comparisons?run_a={pages.baseline}&run_b={pages.challenger}",
            headers=pages.world.tenant_a.headers,
        ).json()
        page = pages.world.client.get(
            f"/dashboards/compare?run_a={pages.baseline}&run_b={pages.challenger}"
        )
        assert page.status_code == 200
        assert "/dashboards/compare/differences?" in page.text
        differences = pages.world.client.get(
            f"/dashboards/compare/differences?run_a={pages.baseline}&run_b={pages.challenger}",
            headers={"HX-Request": "true"},
        )
        quality = next(d for d in api["overall"] if d["name"] == "quality_score")
        assert f"{quality['difference']:.4f}" in differences.text
        assert f"{quality['ci_low']:.4f}, {quality['ci_high']:.4f}" in differences.text
        # The verdict the CLI and the API give, first; rows marked by the decision rule.
        verdict = api["verdict"]
        assert verdict["primary_metric"] == "quality_score"
        assert differences.text.index(str(escape(verdict["statement"]))) < differences.text.index(
            'id="overall"'
        )
        assert f"Holm across {verdict['secondary']['size']} tests" in differences.text
        effect = verdict["effect"]
        assert f"{effect['wins']} / {effect['ties']} / {effect['losses']}" in differences.text
        assert '<th scope="row">quality_score (primary)</th>' in differences.text
        if not quality["significant"]:
            assert "no detectable difference</td>" in differences.text
        # A is wrong on every 3rd example, B on every 2nd: of e0..e11 B newly fails e2, e4, e8,
        # e10 and newly succeeds on e3, e9.
        fragment = pages.world.client.get(
            "/dashboards/compare/examples",
            params={
                "run_a": str(pages.baseline),
                "run_b": str(pages.challenger),
                "metric": "exact_match",
                "show": "regressed",
                "task": "text_generation",
            },
            headers={"HX-Request": "true"},
        ).text
        assert re.findall(r"<code>(e\d+)</code>", fragment) == ["e10", "e2", "e4", "e8"]
        assert "replaced valve 4 and tested" in fragment
        assert "<del>" in fragment
        improved = pages.world.client.get(
            "/dashboards/compare/examples",
            params={
                "run_a": str(pages.baseline),
                "run_b": str(pages.challenger),
                "metric": "exact_match",
                "show": "improved",
            },
        ).text
        assert re.findall(r"<code>(e\d+)</code>", improved) == ["e3", "e9"]
        other_tenant = pages.world.client.get(
            f"/dashboards/compare?run_a={pages.baseline}&run_b={pages.world.tenant_b.run_id}"
        )
        assert other_tenant.status_code == 422
        assert "same organisation" in other_tenant.text

    @covers("GET /dashboards/compare/differences", auth=True)
    def test_the_differences_share_the_cap_and_the_long_lived_cache_of_comparisons(
        self, pages: Pages
    ) -> None:
        """With every computation slot taken, differences not computed yet are a 503 page with
        `Retry-After`; once computed they are cached for the comparisons' lifetime, and the
        tenant's API answers from that computation."""
        pages.sign_in(pages.analyst)
        client, state = pages.world.client, pages.world.state
        url = f"/dashboards/compare/differences?run_a={pages.baseline}&run_b={pages.challenger}"
        slots = state.expensive_reads.slots
        with ExitStack() as taken:
            for _ in range(slots.limit):
                taken.enter_context(slots.take("comparison"))
            busy = client.get(url, headers={"HX-Request": "true"})
            page = client.get(url)
        assert busy.status_code == 503, busy.text
        assert busy.headers["retry-after"] == "5"
        # An HTMX request gets a fragment to show in place, with a button that asks again.
        assert "<strong>Busy:</strong>" in busy.text
        assert "data-error-fragment" in busy.text
        assert '<button type="button" class="retry">Try again</button>' in busy.text
        assert "<html" not in busy.text
        assert page.status_code == 503
        assert "Busy: try again shortly" in page.text
        shown = client.get(url, headers={"HX-Request": "true"})
        assert shown.status_code == 200, shown.text
        api = client.get(
            f"/v1/comparisons?run_a={pages.baseline}&run_b={pages.challenger}",
            headers=pages.world.tenant_a.headers,
        )
        assert api.status_code == 200, api.text
        assert _comparisons(pages, "computed", {}) == 1
        assert _comparisons(pages, "refused", {"reason": "busy"}) == 2
        key = comparison_key(pages.world.tenant_a.organization_id, pages.baseline, pages.challenger)
        store = redis.Redis.from_url(REDIS_URL)
        try:
            ttl = store.ttl(f"{pages.world.redis_prefix}cache:k:{key}")
        finally:
            store.close()
        assert state.cache_settings.cache_ttl_seconds < ttl
        assert ttl <= state.cache_settings.comparison_ttl_seconds

    def test_a_stored_comparison_answers_without_computing(self, pages: Pages) -> None:
        """A comparison the evaluation flow stored is read, not computed: with every slot
        taken the differences still show, and the API serves the very same document."""
        with transaction(pages.owner_sessions()) as session:
            assert store_comparison(
                session,
                organization_id=pages.world.tenant_a.organization_id,
                run_a=pages.baseline,
                run_b=pages.challenger,
                actor="test",
            )
            document = stored_comparison(
                session,
                organization_id=pages.world.tenant_a.organization_id,
                run_a=pages.baseline,
                run_b=pages.challenger,
            )
        pages.sign_in(pages.analyst)
        client, state = pages.world.client, pages.world.state
        slots = state.expensive_reads.slots
        with ExitStack() as taken:
            for _ in range(slots.limit):
                taken.enter_context(slots.take("comparison"))
            shown = client.get(
                f"/dashboards/compare/differences?run_a={pages.baseline}&run_b={pages.challenger}",
                headers={"HX-Request": "true"},
            )
            api = client.get(
                f"/v1/comparisons?run_a={pages.baseline}&run_b={pages.challenger}",
                headers=pages.world.tenant_a.headers,
            )
        assert shown.status_code == 200, shown.text
        assert 'id="verdict"' in shown.text
        assert api.status_code == 200, api.text
        assert api.json() == document
        assert _comparisons(pages, "computed", {}) == 0
        assert len(pages.audit("evaluation_comparison.stored")) == 1

    @covers("GET /dashboards/trends", auth=True)
    def test_trends_draw_the_quality_score_of_each_completed_run(self, pages: Pages) -> None:
        """One chart per agent type with each run's value and interval in its spec."""
        pages.sign_in(pages.analyst)
        page = pages.world.client.get("/dashboards/trends?organization=tenant-a")
        assert page.status_code == 200
        assert '<h2 id="agent-1">summarizer</h2>' in page.text
        assert page.text.count('class="chart-spec"') == 1
        assert str(pages.challenger) in page.text


TENANT_CHANGES = [route for route in PAGES if route.startswith("POST /dashboards/tenant/")]
"""A signed-in tenant's own changes (its domains); provider users are refused them."""
ADMIN_CHANGES = [
    route
    for route in PAGES
    if route.startswith("POST ")
    and route not in PUBLIC
    and route != "POST /dashboards/sign-out"
    and route not in TENANT_CHANGES
]


class TestConsole:
    @covers(*ADMIN_CHANGES, auth=True)
    def test_analysts_read_and_forged_forms_are_refused(self, pages: Pages) -> None:
        """Every change needs an admin and this session's CSRF token; nothing is written."""
        csrf = pages.sign_in(pages.analyst)
        for route in ADMIN_CHANGES:
            _, path = _concrete(route, pages)
            read_only = pages.world.client.post(path, data={"csrf_token": csrf})
            assert read_only.status_code == 403, route
            assert "read-only" in read_only.text, route
        pages.world.client.cookies.clear()
        pages.sign_in(pages.admin)
        for route in ADMIN_CHANGES:
            _, path = _concrete(route, pages)
            forged = pages.world.client.post(path, data={"csrf_token": "not-this-session"})
            assert forged.status_code == 403, route
            assert "stale or was not sent by this site" in forged.text, route
        assert [
            row.actor
            for row in pages.audit("organization.created")
            if row.actor.startswith("provider_user:")
        ] == []

    @covers(
        "GET /dashboards/tenants",
        "GET /dashboards/tenants/{slug}",
        auth=True,
    )
    @covers(
        "POST /dashboards/tenants",
        "POST /dashboards/tenants/{slug}/api-keys",
        "POST /dashboards/tenants/{slug}/api-keys/{key_id}/revoke",
        "POST /dashboards/tenants/{slug}/suspend",
        "POST /dashboards/tenants/{slug}/reactivate",
        audit=True,
    )
    def test_an_admin_creates_a_tenant_issues_revokes_and_suspends(self, pages: Pages) -> None:
        """The console's changes take effect on the tenant API and are audited by user."""
        csrf = pages.sign_in(pages.admin)
        client = pages.world.client
        created = client.post(
            "/dashboards/tenants",
            data={"csrf_token": csrf, "slug": "tenant-c", "name": "Tenant C"},
            follow_redirects=False,
        )
        assert created.headers["location"] == "/dashboards/tenants/tenant-c"
        assert "tenant-c" in client.get("/dashboards/tenants").text
        issued = client.post(
            "/dashboards/tenants/tenant-c/api-keys",
            data={"csrf_token": csrf, "name": "reporting", "scopes": ["results:read"]},
        )
        match = re.search(r'<code class="secret">(sf_[^<]+)</code>', issued.text)
        assert match is not None
        key = match.group(1)
        bearer = {"Authorization": f"Bearer {key}"}
        assert client.get("/v1/evaluations", headers=bearer).status_code == 200
        assert key not in client.get("/dashboards/tenants/tenant-c").text
        client.post(
            "/dashboards/tenants/tenant-c/suspend",
            data={"csrf_token": csrf},
            follow_redirects=False,
        )
        assert client.get("/v1/evaluations", headers=bearer).status_code == 401
        client.post(
            "/dashboards/tenants/tenant-c/reactivate",
            data={"csrf_token": csrf},
            follow_redirects=False,
        )
        assert client.get("/v1/evaluations", headers=bearer).status_code == 200
        key_id = re.search(
            r"/api-keys/([0-9a-f-]{36})/revoke", client.get("/dashboards/tenants/tenant-c").text
        )
        assert key_id is not None
        client.post(
            f"/dashboards/tenants/tenant-c/api-keys/{key_id.group(1)}/revoke",
            data={"csrf_token": csrf},
            follow_redirects=False,
        )
        assert client.get("/v1/evaluations", headers=bearer).status_code == 401
        actions = [
            "organization.created",
            "api_key.issued",
            "organization.suspended",
            "api_key.revoked",
        ]
        for action in actions:
            rows = pages.audit(action)
            assert any(row.actor.startswith("provider_user:") for row in rows), action
        assert len(pages.audit("organization.reactivated")) == 1

    @covers("GET /dashboards/notices", auth=True)
    @covers("POST /dashboards/notices", "POST /dashboards/notices/{notice_id}/retire", audit=True)
    def test_an_admin_publishes_and_retires_a_notice(self, pages: Pages) -> None:
        """A notice published in the console reaches the listed tenant only, until retired."""
        csrf = pages.sign_in(pages.admin)
        client = pages.world.client
        client.post(
            "/dashboards/notices",
            data={
                "csrf_token": csrf,
                "title": "Maintenance",
                "body": "Saturday 02:00 UTC",
                "severity": "warning",
                "audience": "tenant-a",
            },
            follow_redirects=False,
        )
        seen_a = client.get("/v1/notices", headers=pages.world.tenant_a.headers).json()["items"]
        seen_b = client.get("/v1/notices", headers=pages.world.tenant_b.headers).json()["items"]
        assert [n["title"] for n in seen_a] == ["Maintenance"]
        assert seen_b == []
        page = client.get("/dashboards/notices").text
        notice_id = re.search(r"/dashboards/notices/([0-9a-f-]{36})/retire", page)
        assert notice_id is not None
        client.post(
            f"/dashboards/notices/{notice_id.group(1)}/retire",
            data={"csrf_token": csrf},
            follow_redirects=False,
        )
        assert client.get("/v1/notices", headers=pages.world.tenant_a.headers).json()["items"] == []
        assert len(pages.audit("system_notice.created")) == 1
        assert len(pages.audit("system_notice.retired")) == 1

    @covers(
        "GET /dashboards/evaluations/new",
        "GET /dashboards/evaluations/{run_id}/progress",
        auth=True,
    )
    @covers("POST /dashboards/evaluations", audit=True)
    def test_an_admin_starts_an_evaluation_and_watches_it(
        self,
        pages: Pages,
        summarizer: str,  # noqa: F811 (the fixture imported above)
    ) -> None:
        """The run is created, handed to the launcher after the response (once: an identical
        start joins the pending run), and its page polls."""
        csrf = pages.sign_in(pages.admin)
        client = pages.world.client
        assert "Start an evaluation" in client.get("/dashboards/evaluations/new").text
        unknown = client.post(
            "/dashboards/evaluations",
            data={
                "csrf_token": csrf,
                "organization": "tenant-a",
                "model": "nope@1",
                "dataset": "x",
            },
        )
        assert unknown.status_code == 404
        started = client.post(
            "/dashboards/evaluations",
            data={
                "csrf_token": csrf,
                "organization": "tenant-a",
                "model": summarizer,
                "dataset": pages.world.tenant_a.dataset,
            },
            follow_redirects=False,
        )
        assert started.status_code == 303
        run_id = started.headers["location"].rsplit("/", 1)[1]
        again = client.post(  # the same start while the run waits for its flow: joins it
            "/dashboards/evaluations",
            data={
                "csrf_token": csrf,
                "organization": "tenant-a",
                "model": summarizer,
                "dataset": pages.world.tenant_a.dataset,
            },
            follow_redirects=False,
        )
        assert again.headers["location"] == started.headers["location"]
        [launched] = pages.world.launcher.launched
        assert launched["run_id"] == run_id
        page = client.get(f"/dashboards/evaluations/{run_id}").text
        assert f'hx-get="/dashboards/evaluations/{run_id}/progress"' in page
        progress = client.get(f"/dashboards/evaluations/{run_id}/progress")
        assert "0 of 1 batches stored" in progress.text
        assert 'hx-trigger="every 2s"' in progress.text
        [row] = [
            row
            for row in pages.audit("evaluation_run.created")
            if row.actor.startswith("provider_user:")
        ]
        assert row.target_id == run_id


# --- domains and certificates ----------------------------------------------------------------

EXPIRES = datetime(2031, 5, 17, 9, 30, tzinfo=UTC)


@dataclass
class DomainPages:
    """`Pages` with a domain of each tenant: A's verified with a certificate, B's pending."""

    pages: Pages
    a_domain: uuid.UUID
    a_hostname: str
    b_domain: uuid.UUID
    b_hostname: str

    @property
    def client(self):  # type: ignore[no-untyped-def]
        return self.pages.world.client

    def sign_in_tenant_a(self) -> str:
        """Sign the client in as tenant A (with its API key); returns the CSRF token."""
        self.client.cookies.clear()
        response = self.client.post(
            "/dashboards/tenant-sign-in",
            data={"api_key": self.pages.world.tenant_a.api_key},
            follow_redirects=False,
        )
        assert response.status_code == 303, response.text
        page = self.client.get("/dashboards/tenant/domains")
        match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert match is not None
        return match.group(1)

    def domain(self, domain_id: uuid.UUID) -> Domain | None:
        with transaction(self.pages.owner_sessions()) as session:
            found = session.get(Domain, domain_id)
            if found is not None:
                session.expunge(found)
            return found


@pytest.fixture
def domain_pages(pages: Pages, challtestsrv: ChallTestSrv) -> DomainPages:  # noqa: F811
    """DNS checks go to pebble-challtestsrv on loopback; the domains are seeded as the platform."""
    world = pages.world
    settings = DomainSettings(
        home=world.state.storage.home,
        dns_resolvers=[challtestsrv.resolver],
        dns_timeout_seconds=2,
        platform_domains=["streamflow.dev"],
    )
    world.state.domains = settings
    a_hostname = f"a{uuid.uuid4().hex[:8]}.example.com"
    b_hostname = f"b{uuid.uuid4().hex[:8]}.example.com"
    now = datetime.now(UTC)
    with transaction(pages.owner_sessions()) as session:
        ids = []
        for tenant, hostname in ((world.tenant_a, a_hostname), (world.tenant_b, b_hostname)):
            detail = add_domain(
                session,
                organization_id=tenant.organization_id,
                hostname=hostname,
                actor="test",
                now=now,
                config=dns_config_from(settings),
            )
            ids.append(detail.id)
        a = session.get(Domain, ids[0])
        assert a is not None
        a.status = "verified"
        a.verified_at = now
        session.add(
            Certificate(
                organization_id=world.tenant_a.organization_id,
                domain_id=a.id,
                hostnames=[a_hostname],
                status=CertificateStatus.VALID,
                not_before=now,
                not_after=EXPIRES,
                renew_at=EXPIRES - timedelta(days=30),
                key_encrypted="sealed",
                failures=1,
                last_error="urn:ietf:params:acme:error:rateLimited: too many orders",
            )
        )
    return DomainPages(pages, ids[0], a_hostname, ids[1], b_hostname)


class TestDomains:
    @covers(
        "GET /dashboards/tenant/domains", "GET /dashboards/tenant/domains/{domain_id}", auth=True
    )
    @covers(*TENANT_CHANGES, auth=True, audit=True)
    def test_a_tenant_adds_checks_and_removes_its_own_domains_only(
        self,
        domain_pages: DomainPages,
        challtestsrv: ChallTestSrv,  # noqa: F811
    ) -> None:
        """A tenant lists its domains with their certificates, sees the TXT record of a new one,
        checks it against DNS and removes it, each audited; another tenant's domain is a 404
        for every page and form; forged forms and provider users are refused."""
        dp = domain_pages
        csrf = dp.sign_in_tenant_a()
        listed = dp.client.get("/dashboards/tenant/domains").text
        assert dp.a_hostname in listed
        assert dp.b_hostname not in listed
        assert "2031-05-17 09:30 UTC" in listed
        assert 'status-valid">valid' in listed

        other = f"/dashboards/tenant/domains/{dp.b_domain}"
        assert dp.client.get(other).status_code == 404
        for action in ("verify", "remove"):
            refused = dp.client.post(f"{other}/{action}", data={"csrf_token": csrf})
            assert refused.status_code == 404, action
        assert dp.domain(dp.b_domain) is not None

        for route in TENANT_CHANGES:
            path = route.split(" ", 1)[1].replace("{domain_id}", str(dp.a_domain))
            forged = dp.client.post(path, data={"csrf_token": "x", "hostname": "f.example.com"})
            assert forged.status_code == 403, route
            assert "stale or was not sent by this site" in forged.text, route

        hostname = f"n{uuid.uuid4().hex[:8]}.example.com"
        added = dp.client.post(
            "/dashboards/tenant/domains",
            data={"csrf_token": csrf, "hostname": hostname.upper()},
            follow_redirects=False,
        )
        assert added.status_code == 303, added.text
        new_id = uuid.UUID(added.headers["location"].rsplit("/", 1)[1])
        claim = dp.domain(new_id)
        assert claim is not None
        page = dp.client.get(f"/dashboards/tenant/domains/{new_id}").text
        record = f"_streamflow-verification.{hostname}"
        assert record in page
        assert claim.verification_token in page
        hostile = dp.client.post(
            "/dashboards/tenant/domains", data={"csrf_token": csrf, "hostname": "10.0.0.1"}
        )
        assert hostile.status_code == 422

        missing = dp.client.post(
            f"/dashboards/tenant/domains/{new_id}/verify", data={"csrf_token": csrf}
        )
        assert "missing" in missing.text
        assert 'status-pending">pending' in missing.text
        challtestsrv.set_txt(record, claim.verification_token)
        try:
            verified = dp.client.post(
                f"/dashboards/tenant/domains/{new_id}/verify", data={"csrf_token": csrf}
            )
        finally:
            challtestsrv.clear_txt(record)
        assert 'status-verified">verified' in verified.text

        removed = dp.client.post(
            f"/dashboards/tenant/domains/{new_id}/remove",
            data={"csrf_token": csrf},
            follow_redirects=False,
        )
        assert removed.headers["location"] == "/dashboards/tenant/domains"
        assert dp.domain(new_id) is None
        actor = f"tenant_session:{dp.pages.world.tenant_a.organization_id}"
        for action in ("domain.added", "domain.checked", "domain.verified", "domain.removed"):
            rows = [row for row in dp.pages.audit(action) if row.target_id == str(new_id)]
            assert rows, action
            assert {row.actor for row in rows} == {actor}, action

        dp.client.cookies.clear()
        admin_csrf = dp.pages.sign_in(dp.pages.admin)
        for route in TENANT_CHANGES:
            path = route.split(" ", 1)[1].replace("{domain_id}", str(dp.a_domain))
            response = dp.client.post(path, data={"csrf_token": admin_csrf})
            assert response.status_code == 403, route
            assert "for tenants" in response.text, route
        assert dp.domain(dp.a_domain) is not None

    @covers("GET /dashboards/domains", auth=True)
    def test_the_provider_pages_through_every_tenants_domains(
        self, domain_pages: DomainPages, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Analysts see each tenant's domains with certificate status, expiry and the last
        failure, a page at a time; a tenant is refused the provider's view."""
        dp = domain_pages
        dp.pages.sign_in(dp.pages.analyst)
        page = dp.client.get("/dashboards/domains").text
        for hostname, slug in ((dp.a_hostname, "tenant-a"), (dp.b_hostname, "tenant-b")):
            assert hostname in page
            assert f'href="/dashboards/tenants/{slug}"' in page
        assert "2031-05-17 09:30 UTC" in page
        assert "rateLimited: too many orders" in page
        assert '<a href="/dashboards/domains" aria-current="page">Domains</a>' in page

        monkeypatch.setattr(console, "PAGE_SIZE", 1)
        first = dp.client.get("/dashboards/domains").text
        cursor = re.search(r'href="/dashboards/domains\?cursor=([^"]+)"', first)
        assert cursor is not None
        second = dp.client.get(f"/dashboards/domains?cursor={cursor.group(1)}").text
        assert (dp.a_hostname in first) != (dp.a_hostname in second)
        assert (dp.b_hostname in first) != (dp.b_hostname in second)

        dp.sign_in_tenant_a()
        assert dp.client.get("/dashboards/domains").status_code == 403


class TestProfitabilityPages:
    @covers("GET /dashboards/profitability", "GET /dashboards/profitability/{slug}", auth=True)
    def test_tenants_ranked_by_margin_and_a_tenants_months(self, pages: Pages) -> None:
        """The ranking and a tenant's trend show the rollup's exact figures, rounded to cents."""
        world = pages.world
        _prices(world)
        events = [_event("tenant-a", n) for n in range(10)] + [
            _event("tenant-b", n) for n in range(3)
        ]
        posted = world.client.post(
            "/provider/v1/usage-events", json={"events": events}, auth=world.provider_auth()
        )
        assert posted.status_code in (200, 201), posted.text
        _rollup(world)
        api = world.client.get(
            "/provider/v1/profitability/ranking?month=2026-03-01", auth=world.provider_auth()
        ).json()["items"]
        pages.sign_in(pages.analyst)
        page = world.client.get("/dashboards/profitability?month=2026-03")
        assert page.status_code == 200
        rows = re.findall(r'<a href="/dashboards/profitability/([a-z-]+)">', page.text)
        assert rows == [item["tenant"] for item in api] == ["tenant-a", "tenant-b"]
        a = api[0]
        revenue = f"{Decimal(a['revenue_micros']) / Decimal(1_000_000):,.2f} {a['currency']}"
        assert revenue in page.text
        assert "undefined (no revenue)" in page.text  # tenant B: margin % of zero revenue
        trend = world.client.get("/dashboards/profitability/tenant-a")
        assert trend.status_code == 200
        assert "tier gold" in trend.text
        assert world.client.get("/dashboards/profitability/nobody").status_code == 404
        assert world.client.get("/dashboards/profitability?month=March").status_code == 422


# --- experiments, decisions, drift reports ---------------------------------------------------

LOOK = datetime(2026, 11, 30, 12, tzinfo=UTC)
DRIFT_HTML = (
    "<html><head><script>document.title = 'evidently'</script></head><body>drift</body></html>"
)


@dataclass(frozen=True)
class ExperimentWorld:
    experiment: uuid.UUID
    other: uuid.UUID
    decisions: list[uuid.UUID]
    """Oldest look first."""
    report: uuid.UUID


def _look(n: int, half_width: float, outcome: str) -> dict[str, object]:
    """A look's evidence as `compare_experiment` stores it (challenger − champion)."""
    quality = {
        "n": n,
        "estimate": 0.05,
        "ci_low": 0.05 - half_width,
        "ci_high": 0.05 + half_width,
        "p_value": 0.2 if outcome == "wait" else 0.001,
        "e_value": 1.5,
        "decision": "continue",
        "method": "mixture-sequential-two-sample",
    }
    errors = {**quality, "estimate": -0.01, "ci_low": -0.05, "ci_high": 0.03, "p_value": 0.9}
    return {
        "gate": {
            "outcome": outcome,
            "reason": "Keep collecting." if outcome == "wait" else "Better on quality.",
            "checks": [
                {"name": "srm", "passed": True, "reason": "no sample ratio mismatch"},
                {"name": "min_n", "passed": n >= 30, "reason": f"n {n} of 30"},
            ],
        },
        "metrics": [
            {
                "metric": "quality",
                "source": "live",
                **{
                    k: quality[k]
                    for k in ("estimate", "ci_low", "ci_high", "p_value", "n", "method")
                },
            },
            {
                "metric": "error_rate",
                "source": "live",
                **{
                    k: errors[k]
                    for k in ("estimate", "ci_low", "ci_high", "p_value", "n", "method")
                },
            },
        ],
        "live": {
            "kind": "ab",
            "n_champion": n // 2,
            "n_challenger": n - n // 2,
            "unpaired": 0,
            "with_reference": n,
            "agreement_rate": None,
            "output_rouge_l": None,
            "error_rate_champion": 0.02,
            "error_rate_challenger": 0.01,
            "sequential": {"quality": quality, "error_rate": errors},
            "tests": {},
            "srm": {"chi2": 0.25, "p_value": 0.62, "mismatch": False},
            "duration_seconds": 3600.0,
        },
        "golden": None,
        "seeds": {"bootstrap": 7},
    }


def seed_experiments(state: ApiState, organization_id: uuid.UUID) -> ExperimentWorld:
    """An A/B experiment (running, 3 served requests, 3 looks) and a draft one; a drift report."""
    from models.db.repositories.promotion import PromotionRepository
    from models.db.tables import Experiment, PromotionDecision, TrafficLogEntry
    from pipelines.promotion.drift import summarize_drift
    from pipelines.promotion.service import store_drift_report

    engine = make_engine(state.storage.resolved_database_url())
    try:
        with transaction(make_sessionmaker(engine)) as session:
            common = {
                "agent_type": "summarizer",
                "champion_version": "summ@1",
                "challenger_version": "summ@2",
                "salt": "s",
                "mde": 0.05,
                "planned_sample_size": 1234,
                "plan": {"alpha": 0.05},
                "created_by": "test",
            }
            running = Experiment(
                kind="ab", status="running", created_at=LOOK, started_at=LOOK, **common
            )
            draft = Experiment(
                kind="shadow", status="draft", created_at=LOOK - timedelta(days=1), **common
            )
            session.add_all([running, draft])
            session.flush()
            for i in range(3):
                for role in ("served", "shadow") if i == 0 else ("served",):
                    session.add(
                        TrafficLogEntry(
                            request_id=f"req-{i}",
                            organization_id=organization_id,
                            agent_type="summarizer",
                            experiment_id=running.id,
                            variant="champion",
                            role=role,
                            model_version="summ@1",
                            input_hash="0" * 64,
                            input_text="x",
                            created_at=LOOK,
                        )
                    )
            repository = PromotionRepository(session)
            decisions = []
            for i, (n, width) in enumerate(((10, 0.4), (20, 0.2), (40, 0.04))):
                evidence = _look(n, width, "wait" if i < 2 else "promote")
                decisions.append(
                    repository.add_decision(
                        PromotionDecision(
                            agent_type="summarizer",
                            experiment_id=running.id,
                            outcome=evidence["gate"]["outcome"],  # type: ignore[index]
                            reason=evidence["gate"]["reason"],  # type: ignore[index]
                            model_name="summ",
                            champion_version="summ@1",
                            challenger_version="summ@2",
                            dataset_digest="sha256:abc123",
                            window_start=LOOK,
                            window_end=LOOK + timedelta(hours=i + 1),
                            n=n,
                            gate_config={"alpha": 0.05, "primary_metric": "quality"},
                            evidence=evidence,
                            actor="flow:compare",
                            created_at=LOOK + timedelta(hours=i + 1),
                        )
                    ).id
                )
            metrics = [
                {
                    "config": {
                        "type": "x:ValueDrift",
                        "column": "length",
                        "method": "K-S p_value",
                    },
                    "value": 0.001,
                }
            ]
            report = store_drift_report(
                session,
                agent_type="summarizer",
                summary=summarize_drift(metrics, threshold=0.5),
                window=(LOOK - timedelta(days=1), LOOK),
                n_current=10,
                n_reference=20,
                dataset_version_id=None,
                dataset_digest=None,
                html=DRIFT_HTML,
                home=state.storage.home,
                actor="test",
                now=LOOK,
            )
            return ExperimentWorld(running.id, draft.id, decisions, report.id)
    finally:
        engine.dispose()


class TestExperimentPages:
    @covers(
        "GET /dashboards/experiments",
        "GET /dashboards/experiments/{experiment_id}",
        "GET /dashboards/decisions/{decision_id}",
        "GET /dashboards/decisions/{decision_id}/evidence.json",
        auth=True,
    )
    def test_experiments_and_decisions_read_as_the_api_serves_them(self, pages: Pages) -> None:
        """The list (filters, planned vs observed n), the experiment page (latest look, the
        interval chart over the looks, gate, decisions) and a decision's evidence all carry the
        provider API's numbers."""
        seeded = seed_experiments(pages.world.state, pages.world.tenant_a.organization_id)
        client, auth = pages.world.client, pages.world.provider_auth()
        api = client.get(f"/provider/v1/experiments/{seeded.experiment}", auth=auth).json()
        pages.sign_in(pages.analyst)
        listed = client.get("/dashboards/experiments").text
        assert f"/dashboards/experiments/{seeded.experiment}" in listed
        assert f"/dashboards/experiments/{seeded.other}" in listed
        row = listed.split(f"/dashboards/experiments/{seeded.experiment}", 1)[1].split("</tr>")[0]
        assert f'<td class="num">{api["planned_sample_size"]}</td>' in row
        assert '<td class="num">3</td>' in row  # served requests; the shadow row is not one
        drafts = client.get("/dashboards/experiments?status=draft").text
        assert str(seeded.other) in drafts
        assert str(seeded.experiment) not in drafts
        assert client.get("/dashboards/experiments?status=nonsense").status_code == 422

        page = client.get(f"/dashboards/experiments/{seeded.experiment}")
        assert page.status_code == 200
        text = page.text
        latest = client.get(
            f"/provider/v1/promotion/decisions/{seeded.decisions[-1]}", auth=auth
        ).json()
        assert f'<dd id="live-n">{latest["n"]}</dd>' in text
        quality = next(m for m in latest["evidence"]["metrics"] if m["metric"] == "quality")
        assert f"[{quality['ci_low']:.4f}, {quality['ci_high']:.4f}]" in text
        assert "no mismatch" in text  # SRM of the A/B split
        for decision in seeded.decisions:
            assert f"/dashboards/decisions/{decision}" in text
        spec = re.search(r'<script type="application/json" class="chart-spec">(.*?)</script>', text)
        assert spec is not None
        chart = json.loads(spec.group(1))
        assert [row["n"] for row in chart["data"]["values"]] == [10, 20, 40]
        assert chart["layer"][-1]["data"]["values"] == [{"zero": 0}]
        assert "Pause" not in text  # an analyst reads only

        decision = client.get(f"/dashboards/decisions/{seeded.decisions[-1]}")
        assert decision.status_code == 200
        assert "sha256:abc123" in decision.text
        assert "bootstrap 7" in decision.text
        assert "mixture-sequential-two-sample" in decision.text
        assert f"/dashboards/decisions/{seeded.decisions[-1]}/evidence.json" in decision.text
        raw = client.get(f"/dashboards/decisions/{seeded.decisions[-1]}/evidence.json")
        assert raw.json() == latest
        assert client.get(f"/dashboards/decisions/{uuid.uuid4()}").status_code == 404

    @covers("POST /dashboards/experiments/{experiment_id}/pause", auth=True, audit=True)
    @covers("POST /dashboards/experiments/{experiment_id}/stop", auth=True, audit=True)
    def test_admins_pause_and_stop_with_the_token_and_analysts_cannot(self, pages: Pages) -> None:
        """Pause and stop go through the experiments service (audited); an analyst is refused,
        and so is a form without the CSRF token."""
        seeded = seed_experiments(pages.world.state, pages.world.tenant_a.organization_id)
        client = pages.world.client
        base = f"/dashboards/experiments/{seeded.experiment}"
        csrf = pages.sign_in(pages.analyst)
        assert client.post(f"{base}/pause", data={"csrf_token": csrf}).status_code == 403
        client.cookies.clear()
        csrf = pages.sign_in(pages.admin)
        assert "Pause" in client.get(base).text
        assert client.post(f"{base}/pause", follow_redirects=False).status_code == 403
        paused = client.post(f"{base}/pause", data={"csrf_token": csrf}, follow_redirects=False)
        assert paused.status_code == 303
        assert 'id="experiment-status">paused<' in client.get(base).text
        stopped = client.post(f"{base}/stop", data={"csrf_token": csrf}, follow_redirects=False)
        assert stopped.status_code == 303
        assert [row.target_id for row in pages.audit("experiment.paused")] == [
            str(seeded.experiment)
        ]
        [row] = pages.audit("experiment.stopped")
        assert row.actor.startswith("provider_user:")
        again = client.post(f"{base}/pause", data={"csrf_token": csrf})
        assert again.status_code == 409

    @covers(
        "GET /dashboards/drift",
        "GET /dashboards/drift/{report_id}",
        "GET /dashboards/drift/{report_id}/html",
        auth=True,
    )
    def test_drift_reports_list_and_their_html_in_a_sandbox(self, pages: Pages) -> None:
        """The list as the API's; the report page frames its HTML in a sandboxed iframe, and the
        HTML route alone relaxes the policy, inside a CSP sandbox."""
        seeded = seed_experiments(pages.world.state, pages.world.tenant_a.organization_id)
        client = pages.world.client
        pages.sign_in(pages.analyst)
        listed = client.get("/dashboards/drift?agent_type=summarizer").text
        assert f"/dashboards/drift/{seeded.report}" in listed
        assert "<td>length</td>" in listed  # the drifted column
        assert '<span class="worse-text">drifted</span>' in listed
        assert str(seeded.report) not in client.get("/dashboards/drift?agent_type=other").text
        page = client.get(f"/dashboards/drift/{seeded.report}")
        assert page.status_code == 200
        assert f'src="/dashboards/drift/{seeded.report}/html" sandbox="allow-scripts"' in page.text
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        html = client.get(f"/dashboards/drift/{seeded.report}/html")
        assert html.status_code == 200
        assert html.text == DRIFT_HTML
        policy = html.headers["content-security-policy"]
        assert policy.startswith("sandbox allow-scripts;")
        assert "allow-same-origin" not in policy
        assert "default-src 'none'" in policy
        download = client.get(f"/dashboards/drift/{seeded.report}/html?download=true")
        assert download.headers["content-disposition"].startswith("attachment")
