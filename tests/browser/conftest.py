"""Browser fixtures: Debian's chromium driven by Playwright (never a downloaded browser),
one browser per session, a fresh context per test that records console messages and CSP
violations, and pyoidc relying parties on loopback ports. A missing chromium fails."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Playwright, sync_playwright

from .relying_party import RelyingParty, make_relying_party

CHROMIUM = os.environ.get("YIWANG_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Bounded waits for every browser action (milliseconds).
TIMEOUT_MS = 15_000

# Records CSP violations in the page itself, before any of the page's scripts run.
_CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push({directive: e.violatedDirective, blocked: e.blockedURI, source: e.sourceFile});
  console.error("CSP violation: " + e.violatedDirective + " " + e.blockedURI);
});
"""


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = shutil.which(CHROMIUM) or (CHROMIUM if os.access(CHROMIUM, os.X_OK) else None)
    if path is None:
        # Fail, never skip: the browser tests are part of the suite (scripts/bootstrap --dev).
        pytest.fail(f"Debian's chromium is required for the browser tests ({CHROMIUM}); run scripts/bootstrap --dev")
    return path


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def chromium(playwright_driver: Playwright, chromium_path: str) -> Iterator[Browser]:
    browser = playwright_driver.chromium.launch(
        executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS, timeout=TIMEOUT_MS * 2
    )
    yield browser
    browser.close()


@dataclass
class PageLog:
    """Console errors, page errors and CSP violations seen during a test."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    csp_violations: list[Any] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))

    def _console(self, msg: ConsoleMessage) -> None:
        if msg.type != "error":
            return
        where = msg.location.get("url", "")
        # Chromium asks every origin for /favicon.ico on its own; neither the IdP nor the
        # test RP serves one, and that 404 says nothing about the page.
        if urlsplit(where).path == "/favicon.ico" and msg.text.startswith("Failed to load resource"):
            return
        self.console_errors.append(f"{msg.text} ({where})")

    def collect_csp(self, page: Page) -> None:
        """Read the violations recorded by the in-page listener of the current document."""
        self.csp_violations.extend(page.evaluate("window.__cspViolations || []"))

    def assert_clean(self) -> None:
        assert self.console_errors == [], self.console_errors
        assert self.page_errors == [], self.page_errors
        assert self.csp_violations == [], self.csp_violations


@pytest.fixture
def page_log() -> PageLog:
    return PageLog()


@pytest.fixture
def new_context(chromium: Browser, page_log: PageLog) -> Iterator[Callable[..., BrowserContext]]:
    """Make a fresh browser context (own cookies): ``new_context(locale="zh-CN")``."""
    contexts: list[BrowserContext] = []

    def make(**kwargs: Any) -> BrowserContext:
        context = chromium.new_context(**kwargs)
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        context.add_init_script(_CSP_LISTENER)
        context.on("page", page_log.watch)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def relying_party(live_idp: Any) -> Iterator[Callable[..., RelyingParty]]:
    """Register and serve pyoidc relying parties: ``relying_party("Portal A")``, or with
    other scopes: ``relying_party("Portal B", scopes=("openid", "legal_person"))``."""
    started: list[RelyingParty] = []

    def make(name: str, **kwargs: Any) -> RelyingParty:
        rp = make_relying_party(live_idp, name, **kwargs)
        started.append(rp)
        return rp

    yield make
    for rp in started:
        rp.stop()
