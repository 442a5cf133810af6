"""The dashboards in a real browser: Debian's Chromium driven by Playwright.

A person signs in, picks two runs, reads the comparison, filters the example table, and opens
the run and trend pages; charts must be drawn (SVG), HTMX swaps must happen, and the console
must stay free of errors. Screenshots land in `test-results/dashboards/` for a human to look at.
"""

from __future__ import annotations

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
from playwright.sync_api import ConsoleMessage, Page, expect

from api.app import build_state, create_app
from api.settings import ApiSettings, ProviderAuthSettings
from flows.orchestrator import free_port
from models.cache.settings import CacheSettings
from models.db.engine import make_engine, make_sessionmaker, transaction
from models.settings import StorageSettings
from pipelines.provider_users.service import create_user
from tests.api.conftest import PROVIDER_KEYS, RecordingLauncher, SeededTemplates, completed_run
from tests.conftest import copy_sqlite

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-results" / "dashboards"
EMAIL, PASSWORD = "ana@provider.example", "a long enough passphrase"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, object]) -> dict[str, object]:
    """Debian's Chromium: Playwright's own browser download is not used (nor reachable)."""
    chromium = shutil.which("chromium")
    assert chromium is not None, "install Debian's chromium (`.ci/run` does)"
    return {**browser_type_launch_args, "executable_path": chromium}


@dataclass
class Served:
    url: str
    baseline: uuid.UUID
    challenger: uuid.UUID


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
            yield Served(f"http://127.0.0.1:{port}", tenant_a.run_id, challenger)
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


def test_an_analyst_compares_two_runs_and_finds_the_regressions(page: Page, served: Served) -> None:
    errors = _watch_console(page)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{served.url}/dashboards/evaluations")
    expect(page.get_by_role("heading", name="Sign in", exact=True)).to_be_visible()
    page.get_by_label("E-mail").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="Evaluations")).to_be_visible()
    _shot(page, "evaluations")

    page.locator(f'input[name="run_a"][value="{served.baseline}"]').check()
    page.locator(f'input[name="run_b"][value="{served.challenger}"]').check()
    page.get_by_role("button", name="Compare A and B").click()
    expect(page.get_by_role("heading", name="B against A")).to_be_visible()
    expect(page.locator("figure.chart svg.marks").first).to_be_visible()
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

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{served.url}/dashboards/compare?run_a={served.baseline}&run_b={served.challenger}")
    expect(page.locator("#examples tbody tr").first).to_be_visible()
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, "the page scrolls sideways on a phone; wide tables scroll in place"
    _shot(page, "compare-phone")
    assert errors == []
