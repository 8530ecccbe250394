"""Shared Playwright fixtures: one headless Debian Chromium per test module, pages in fresh contexts.

The browser tests fail (never skip) when playwright or /usr/bin/chromium is missing: install them
with `apt-get install chromium fonts-dejavu-core` and
`PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 pip install -c requirements.lock -e '.[test]'`.
A test module takes them by name: `browser, new_page = browsing.browser, browsing.new_page`
after `from tests import browser as browsing`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

try:
    from playwright.sync_api import sync_playwright
except ImportError as exc:  # reported by the `browser` fixture as a failure, not a skip
    PLAYWRIGHT_MISSING: ImportError | None = exc
else:
    PLAYWRIGHT_MISSING = None

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
WAIT_MS = 5_000  # every wait is explicit; a live update normally lands in a few milliseconds
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

NewPage = Callable[..., "Page"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the whole module (launching takes about half a second)."""
    if PLAYWRIGHT_MISSING is not None:
        pytest.fail(f"playwright is not installed ({PLAYWRIGHT_MISSING}): "
                    "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 pip install -c requirements.lock -e '.[test]'", pytrace=False)
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install --no-install-recommends chromium fonts-dejavu-core",
                    pytrace=False)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def new_page(browser: Browser) -> Iterator[NewPage]:
    """Pages in fresh contexts (no cookies shared between them or with other tests).

    `new_page()` is 960x540; `new_page(**PHONE, has_touch=True)` a phone; any other keyword
    goes to `browser.new_context`.
    """
    contexts: list[Any] = []

    def make(width: int = 960, height: int = 540, **options: Any) -> Page:
        context = browser.new_context(viewport={"width": width, "height": height}, **options)
        context.set_default_timeout(WAIT_MS)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def screenshot(page: Page, name: str, full_page: bool = False) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=full_page)
