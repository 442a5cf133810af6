"""The dashboards in a real browser: Debian's Chromium driven by Playwright.

A person signs in, picks two runs, reads the comparison, filters the example table, and opens
the run and trend pages; charts must be drawn (SVG), HTMX swaps must happen, a part the server
cannot answer yet shows its error with "Try again", and the console must stay free of errors.
An admin creates a tenant, issues it a key and publishes a notice; the tenant signs in with
that key and adds, reads and removes a domain. Screenshots land in `test-results/dashboards/`
for a human to look at.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import ConsoleMessage, Page, expect, sync_playwright

from api.app import build_state, create_app
from api.settings import ApiSettings, ProviderAuthSettings
from api.state import ApiState
from flows.orchestrator import free_port
from models.cache.settings import CacheSettings
from models.db.engine import make_engine, make_sessionmaker, transaction
from models.settings import StorageSettings
from pipelines.provider_users.service import create_user
from tests.api.conftest import PROVIDER_KEYS, RecordingLauncher, SeededTemplates, completed_run
from tests.api.test_dashboards import seed_experiments
from tests.conftest import copy_sqlite

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-results" / "dashboards"
EMAIL, PASSWORD = "ana@provider.example", "a long enough passphrase"
ADMIN = "ada@provider.example"


@pytest.fixture
def page() -> Iterator[Page]:
    """A page of Debian's Chromium (Playwright's own browser download is neither used nor
    reachable). Playwright starts and stops within the test: its event loop must not outlive it,
    or later tests of the same process could not run their own."""
    chromium = shutil.which("chromium")
    assert chromium is not None, "install Debian's chromium (`.ci/run` does)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium)
        try:
            yield browser.new_page()
        finally:
            browser.close()


@dataclass
class Served:
    url: str
    baseline: uuid.UUID
    challenger: uuid.UUID
    state: ApiState
    tenant_a: uuid.UUID
    """Tenant A's organisation id."""


@pytest.fixture
def served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seeded_templates: SeededTemplates
) -> Iterator[Served]:
    """The app under uvicorn on a loopback port, on a copy of the seeded SQLite world."""
    copy_sqlite(seeded_templates.mlflow(), tmp_path / "mlflow.db")
    monkeypatch.setenv("STREAMFLOW_MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    template = seeded_templates.get("sqlite")
    home = tmp_path / "home"
    shutil.copytree(template.home, home)
    tenant_a = template.tenants[0]
    with template.database.copy(tmp_path) as url:
        sessions = make_sessionmaker(make_engine(url))
        with transaction(sessions) as session:
            create_user(
                session, email=EMAIL, name="Ana", role="analyst", password=PASSWORD, actor="test"
            )
            create_user(
                session, email=ADMIN, name="Ada", role="admin", password=PASSWORD, actor="test"
            )
        storage = StorageSettings(home=home, database_url=url)
        challenger = completed_run(
            sessions,
            storage.golden_dataset_dir,
            tenant_a.organization_id,
            tenant_a.dataset,
            wrong_every=2,
        )
        state = build_state(
            api=ApiSettings(),
            storage=storage,
            cache_settings=CacheSettings(redis_url=None),
            provider_auth=ProviderAuthSettings(provider_keys=PROVIDER_KEYS),
            launcher=RecordingLauncher(),
        )
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(create_app(state), host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started
        try:
            yield Served(
                f"http://127.0.0.1:{port}",
                tenant_a.run_id,
                challenger,
                state,
                tenant_a.organization_id,
            )
        finally:
            server.should_exit = True
            thread.join(timeout=10)


def _watch_console(page: Page) -> list[str]:
    errors: list[str] = []

    def note(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", note)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def _shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _sign_in(page: Page, email: str) -> None:
    expect(page.get_by_role("heading", name="Sign in", exact=True)).to_be_visible()
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()


def test_an_analyst_compares_two_runs_and_finds_the_regressions(page: Page, served: Served) -> None:
    errors = _watch_console(page)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{served.url}/dashboards/evaluations")
    _sign_in(page, EMAIL)
    expect(page.get_by_role("heading", name="Evaluations")).to_be_visible()
    _shot(page, "evaluations")

    page.locator(f'input[name="run_a"][value="{served.baseline}"]').check()
    page.locator(f'input[name="run_b"][value="{served.challenger}"]').check()
    # Every computation slot is taken: the differences answer 503, shown in place with a
    # button that asks again (HTMX alone would leave "Computing…" and say nothing).
    slots = served.state.expensive_reads.slots
    slots.running = slots.limit
    try:
        page.get_by_role("button", name="Compare A and B").click()
        expect(page.get_by_role("heading", name="B against A")).to_be_visible()
        busy = page.locator("#differences .error-fragment")
        expect(busy).to_contain_text("Busy:")
        expect(busy).to_contain_text("retry after 5 s")
        _shot(page, "compare-busy")
    finally:
        slots.running = 0
    busy.get_by_role("button", name="Try again").click()
    expect(page.locator("figure.chart svg.marks").first).to_be_visible()
    expect(page.locator("#differences .error-fragment")).to_have_count(0)
    # The browser reports the 503 itself; nothing else went wrong.
    assert all("status of 503" in error for error in errors), errors
    errors.clear()
    rows = page.locator("#examples tbody tr th code")
    expect(rows).to_have_text(["e10", "e2", "e4", "e8"])
    expect(page.locator("#examples del").first).to_be_visible()
    _shot(page, "compare-regressed")

    page.get_by_label("improved").check()
    expect(rows).to_have_text(["e3", "e9"])
    _shot(page, "compare-improved")

    page.get_by_role("link", name=re.compile("predictions")).first.click()
    expect(page.locator("dd.headline")).to_contain_text(re.compile(r"0\.\d{4} \[0\.\d{4}, "))
    expect(page.locator("figure.chart svg.marks")).to_be_visible()
    _shot(page, "run")

    page.get_by_role("link", name="Over time").click()
    page.get_by_label("Organisation").select_option("tenant-a")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("figure.chart svg.marks")).to_be_visible()
    _shot(page, "trends")

    seeded = seed_experiments(served.state, served.tenant_a)
    page.get_by_role("link", name="Experiments").click()
    page.get_by_role("link", name=str(seeded.experiment)[:8]).click()
    expect(page.locator("#live-n")).to_have_text("40")
    expect(page.locator("figure.chart svg.marks")).to_be_visible()
    _shot(page, "experiment")
    page.get_by_role("link", name="Drift", exact=True).click()
    page.get_by_role("link", name=str(seeded.report)[:8]).click()
    frame = page.frame_locator("iframe.evidently")
    expect(frame.locator("body")).to_have_text("drift")
    # Its inline script ran (Evidently's reports are inline scripts), in the sandbox only.
    [report] = [f for f in page.frames if f.url.endswith(f"{seeded.report}/html")]
    assert report.title() == "evidently"
    _shot(page, "drift-report")

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{served.url}/dashboards/compare?run_a={served.baseline}&run_b={served.challenger}")
    expect(page.locator("#examples tbody tr").first).to_be_visible()
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, "the page scrolls sideways on a phone; wide tables scroll in place"
    _shot(page, "compare-phone")
    assert errors == []


def test_an_admin_sets_up_a_tenant_that_manages_its_domains(page: Page, served: Served) -> None:
    errors = _watch_console(page)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{served.url}/dashboards/tenants")
    _sign_in(page, ADMIN)
    slug = f"acme-{uuid.uuid4().hex[:6]}"
    page.get_by_label("Slug").fill(slug)
    page.get_by_label("Name").fill("Acme Ltd")
    page.get_by_role("button", name="Create tenant").click()
    expect(page.get_by_role("heading", name="Acme Ltd")).to_be_visible()
    page.get_by_label("What it is for").fill("browser test")
    page.get_by_role("button", name="Issue key").click()
    key = page.locator(".issued code.secret")
    expect(key).to_be_visible()
    plaintext = key.inner_text()
    expect(page.get_by_role("row", name=re.compile("browser test"))).to_be_visible()
    _shot(page, "console-tenant")

    page.get_by_role("link", name="Notices").click()
    page.get_by_label("Title").fill("Maintenance tonight")
    page.get_by_label("Text").fill("The API pauses for ten minutes at 23:00 UTC.")
    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_role("row", name=re.compile("Maintenance tonight"))).to_be_visible()
    _shot(page, "console-notices")

    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("API key").fill(plaintext)
    page.get_by_role("button", name="Sign in with the key").click()
    page.get_by_role("link", name="Domains").click()
    expect(page.get_by_role("heading", name="Your domains")).to_be_visible()
    hostname = f"shop{uuid.uuid4().hex[:6]}.example.com"
    page.get_by_label("Hostname").fill(hostname)
    page.get_by_role("button", name="Add domain").click()
    expect(page.get_by_role("heading", name=hostname)).to_be_visible()
    expect(page.locator("code.secret").first).to_have_text(f"_streamflow-verification.{hostname}")
    expect(page.locator("code.secret").nth(1)).not_to_be_empty()
    _shot(page, "tenant-domain")
    page.get_by_role("button", name=f"Remove {hostname}").click()
    expect(page.get_by_role("heading", name="Your domains")).to_be_visible()
    expect(page.get_by_text(hostname)).to_have_count(0)
    assert errors == []


def test_the_event_loop_is_free_after_the_browser_test() -> None:
    """Other tests of this process run their own event loop with `asyncio.run`."""
    assert asyncio.run(asyncio.sleep(0, result="free")) == "free"
