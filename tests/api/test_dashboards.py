"""The dashboards over HTTP: sign-in, sessions, CSRF, and what each page says about seeded runs.

What a person sees in a real browser (charts drawn, HTMX swaps, no console errors) is in
`test_dashboards_browser.py`; here every page is checked on both backends.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from models.db.engine import make_engine, make_sessionmaker, transaction
from models.db.tables import AuditLogEntry, DashboardSession
from pipelines.provider_users.service import create_user
from tests.api.conftest import World, completed_run
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


def _concrete(route: str, pages: Pages) -> tuple[str, str]:
    method, template = route.split(" ", 1)
    path = (
        template.replace("{run_id}", str(pages.baseline))
        .replace("{slug}", pages.world.tenant_a.slug)
        .replace("{key_id}", str(pages.world.tenant_a.api_key_id))
        .replace("{notice_id}", str(uuid.uuid4()))
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
        missing = pages.world.client.get(f"/dashboards/evaluations/{uuid.uuid4()}")
        assert missing.status_code == 404

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

    @covers("GET /dashboards/trends", auth=True)
    def test_trends_draw_the_quality_score_of_each_completed_run(self, pages: Pages) -> None:
        """One chart per agent type with each run's value and interval in its spec."""
        pages.sign_in(pages.analyst)
        page = pages.world.client.get("/dashboards/trends?organization=tenant-a")
        assert page.status_code == 200
        assert '<h2 id="agent-1">summarizer</h2>' in page.text
        assert page.text.count('class="chart-spec"') == 1
        assert str(pages.challenger) in page.text


ADMIN_CHANGES = [
    route
    for route in PAGES
    if route.startswith("POST ") and route not in PUBLIC and route != "POST /dashboards/sign-out"
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
        """The run is created, handed to the launcher after the response, and its page polls."""
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
