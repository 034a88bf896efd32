"""Helpers shared by the browser tests: the requests a browser made, and waiting for
pages of the IdP or the relying party."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import BrowserContext, Page, Request

from .conftest import PageLog
from .relying_party import Login, RelyingParty


class Traffic:
    """Every request the browser makes, to see which pages a flow went through."""

    def __init__(self, context: BrowserContext) -> None:
        self.requests: list[Request] = []
        context.on("request", lambda request: self.requests.append(request))

    def urls(self, prefix: str) -> list[str]:
        return [r.url for r in self.requests if r.url.startswith(prefix)]

    def paths(self, base: str) -> list[str]:
        return [urlsplit(url).path for url in self.urls(base + "/")]

    def authorization_request(self, issuer: str) -> dict[str, list[str]]:
        [first, *_] = self.urls(issuer + "/authorize?")
        return parse_qs(urlsplit(first).query)

    def clear(self) -> None:
        self.requests.clear()


def on_path(base: str, path: str) -> Callable[[str], bool]:
    return lambda url: url.startswith(base + "/") and urlsplit(url).path == path


def arrive(page: Page, base: str, path: str, log: PageLog) -> None:
    """Wait for one of the IdP's pages to be loaded, and record its CSP violations."""
    page.wait_for_url(on_path(base, path))
    page.wait_for_load_state("load")
    log.collect_csp(page)


def land_on_rp(page: Page, rp: RelyingParty, log: PageLog) -> Login:
    page.wait_for_url(on_path(rp.base_url, "/callback"))
    page.wait_for_selector("#rp")
    log.collect_csp(page)
    return rp.next_login()  # raises when pyoidc refused the response or the ID token
