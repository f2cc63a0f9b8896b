"""The Swagger UI page, opened in a real headless Chromium against the real server.

Debian's Chromium (``testbed/browser/install.sh``) is driven by Playwright's Python package; no
browser is ever downloaded. Every request the page makes is routed through the test: those to
the server (127.0.0.1) go on, any other host is recorded and blocked, since the page must work
offline from the assets installed with the package. A screenshot of the page is left in
``tests/artifacts/swagger-ui.png``, also when a test fails.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import BrowserContext, Page, Route, expect, sync_playwright

from testbed.stack import Stack
from tests.conftest import ARTIFACTS
from tests.integration.api_server import Server, running

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = ARTIFACTS / "swagger-ui.png"
#: what the page must list: (method, path) of every operation of the API
OPERATIONS = {
    ("GET", "/api/v1/hello"),
    ("POST", "/api/v1/create"),
    ("GET", "/api/v1/list"),
    ("GET", "/api/v1/get_backup"),
    ("DELETE", "/api/v1/delete"),
    ("POST", "/api/v1/restore"),
    ("GET", "/api/v1/get_restore"),
    ("GET", "/api/v1/check"),
    ("GET", "/api/v1/verify"),
}
#: Swagger UI's own way of saying it could not show the document
RENDER_ERRORS = ".swagger-ui .version-pragma, .swagger-ui .errors-wrapper"


@dataclass
class Browser:
    context: BrowserContext
    local: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)

    def route(self, route: Route) -> None:
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme in ("http", "https", "ws", "wss") and parts.hostname != "127.0.0.1":
            self.external.append(url)
            route.abort("blockedbyclient")
            return
        self.local.append(url)
        route.continue_()


@pytest.fixture(scope="module")
def server(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running(stack.config_path, tmp_path_factory.mktemp("swagger")) as started:
        yield started


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    assert os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is missing: run testbed/browser/install.sh"
    profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh --user-data-dir
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        watched = Browser(context)
        context.route("**/*", watched.route)
        try:
            yield watched
        finally:
            context.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    opened = browser.context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield opened
    finally:
        opened.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
    assert not browser.external, f"requests to other hosts than 127.0.0.1: {browser.external}"


def _open_docs(page: Page, server: Server) -> None:
    page.goto(f"{server.url}/docs/index.html")
    page.wait_for_selector(f".swagger-ui .opblock, {RENDER_ERRORS}", state="attached")
    page.wait_for_load_state("networkidle")
    problems = page.locator(RENDER_ERRORS)
    assert problems.count() == 0, f"Swagger UI did not render the API: {problems.inner_text()!r}"


def _screenshot(page: Page) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOT, full_page=True)


def test_swagger_ui_lists_every_endpoint_from_bundled_assets(
    server: Server, browser: Browser, page: Page
) -> None:
    try:
        _open_docs(page, server)
        page.wait_for_function(
            f"document.querySelectorAll('.swagger-ui .opblock').length >= {len(OPERATIONS)}"
        )
        listed = page.eval_on_selector_all(
            ".swagger-ui .opblock",
            """blocks => blocks.map(b => [
                b.querySelector('.opblock-summary-method').textContent.trim(),
                b.querySelector('.opblock-summary-path').getAttribute('data-path'),
            ])""",
        )
        assert {tuple(entry) for entry in listed} == OPERATIONS
        assert len(listed) == len(OPERATIONS), listed
        expect(page.locator(".swagger-ui .info .title")).to_contain_text(
            "milvus-backup-operator REST API"
        )
    finally:
        _screenshot(page)
    served = {urlsplit(url).path for url in browser.local}
    assert {"/api/v1/docs/swagger-ui-bundle.js", "/api/v1/openapi.json"} <= served, served


def test_try_it_out_calls_the_server_from_the_page(server: Server, page: Page) -> None:
    _open_docs(page, server)
    hello = page.locator(".swagger-ui .opblock").filter(
        has=page.locator(".opblock-summary-path[data-path='/api/v1/hello']")
    )
    hello.locator(".opblock-summary").click()
    hello.get_by_role("button", name="Try it out").click()
    hello.get_by_role("button", name="Execute").click()
    result = hello.locator(".live-responses-table .response").first
    expect(result.locator(".response-col_status")).to_contain_text("200")
    expect(result).to_contain_text("Hello, This is backup service")
