"""The API documentation page renders in a real browser from assets the application serves."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest

from liutong.bootstrap import bootstrap
from liutong.config import Settings
from liutong.migrate import upgrade
from liutong.web.app import create_app
from tests.browser import browser_page, live_server, require_chromium, screenshot

pytestmark = pytest.mark.browser


def test_the_api_docs_render_in_chromium_without_any_outside_request(tmp_path):
    require_chromium()
    runtime = bootstrap(Settings(database_url=f"sqlite:///{tmp_path / 'docs.db'}", data_dir=tmp_path))
    upgrade(runtime.engine)
    requested: list[str] = []
    try:
        with live_server(create_app(runtime)) as base, browser_page() as page:
            page.on("request", lambda req: requested.append(req.url))
            page.goto(f"{base}/docs")
            page.wait_for_selector(".swagger-ui .info .title", timeout=15000)
            assert "六通 Liutong API" in page.inner_text(".swagger-ui .info .title")
            page.get_by_text("/v1/members/lookup", exact=True).first.wait_for(timeout=15000)
            shot = screenshot(page, "api-docs")
            assert shot.stat().st_size > 10_000
    finally:
        runtime.dispose()
    hosts = {urlparse(u).hostname for u in requested if u.startswith("http")}
    assert hosts == {"127.0.0.1"}, hosts
