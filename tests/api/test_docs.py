"""The API documentation pages work offline: every asset they load is served by the app itself."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import build_state, create_app
from models.cache.settings import CacheSettings
from models.settings import StorageSettings

ASSET_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
}
# What identifies each library's file, so a stub or an error page would not pass.
ASSET_MARKERS = {
    "swagger-ui-bundle.js": b"SwaggerUIBundle",
    "swagger-ui.css": b".swagger-ui",
    "redoc.standalone.js": b"Redoc",
    "favicon.png": b"\x89PNG",
}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The app on an empty embedded database, without Redis: the docs need neither."""
    home = tmp_path_factory.mktemp("home")
    state = build_state(
        storage=StorageSettings(home=home, database_url=None),
        cache_settings=CacheSettings(redis_url=None),
    )
    with TestClient(create_app(state)) as client:
        yield client


URL = re.compile(r"(?:src|href|spec-url)=\"([^\"]+)\"|url: '([^']+)'")


def referenced_urls(html: str) -> list[str]:
    """Every URL a docs page makes the browser load: src/href attributes, the spec URL."""
    return [attribute or script for attribute, script in URL.findall(html)]


@pytest.mark.parametrize(
    ("page", "assets"),
    [
        ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"}),
        ("/redoc", {"redoc.standalone.js", "favicon.png"}),
    ],
)
def test_page_loads_only_assets_the_app_serves(
    client: TestClient, page: str, assets: set[str]
) -> None:
    """The page names no other host; each asset it loads is served here with its media type."""
    response = client.get(page)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "://" not in response.text
    urls = referenced_urls(response.text)
    assert "/openapi.json" in urls
    loaded = [url for url in urls if url != "/openapi.json"]
    assert {Path(url).name for url in loaded} == assets
    for url in loaded:
        assert url.startswith("/docs/assets/")
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert asset.headers["content-type"].startswith(ASSET_TYPES[Path(url).suffix]), url
        assert ASSET_MARKERS[Path(url).name] in asset.content[:200_000], url


def test_the_spec_the_pages_load_is_served_and_leaves_them_out(client: TestClient) -> None:
    """/openapi.json answers, and documents the API, not the documentation pages."""
    document = client.get("/openapi.json").json()

    assert document["info"]["title"] == "StreamFlow API"
    assert "/healthz" in document["paths"]
    assert not {"/docs", "/redoc"} & set(document["paths"])
    assert not any(path.startswith("/docs/") for path in document["paths"])


def test_an_unknown_asset_is_not_found(client: TestClient) -> None:
    """Only the shipped files are served: other names and paths out of the folder are 404."""
    assert client.get("/docs/assets/swagger-ui-standalone-preset.js").status_code == 404
    assert client.get("/docs/assets/../../app.py").status_code == 404


def test_behind_a_path_prefix_the_urls_carry_it(client: TestClient) -> None:
    """Served under a proxy's path prefix (root_path), the pages load their files through it."""
    prefixed = TestClient(client.app, root_path="/streamflow")

    urls = referenced_urls(prefixed.get("/docs").text)

    assert urls
    assert all(url.startswith("/streamflow/") for url in urls), urls
