"""The login page's ``next`` parameter (OWASP ASVS 5 §5.1.5, CWE-601; issue 17 item 4):
after login the browser goes only to one of our own pages (the home page, the account
area, the company page), never to another host and never with an injected header."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.helpers import form_field

from ._support import SSO_COOKIE, set_cookie_header

# Values a link to /login could carry. Each browser-side trick turns a "local" path into
# another origin: a tab, CR or LF is stripped by browsers ("/\t/evil" becomes "//evil"),
# a backslash is read as a slash, a percent-encoded one is decoded by some proxies.
UNSAFE = {
    "tab (the review's case)": "/\t/evil.example/",
    "percent-encoded tab": "/%09/evil.example/",
    "scheme-relative": "//evil.example/",
    "backslash": "/\\evil.example/",
    "backslash after slash": "\\/evil.example/",
    "percent-encoded backslash": "/%5Cevil.example/",
    "percent-encoded slash": "/%2F/evil.example/",
    "CR LF": "/\r\n/evil.example/",
    "LF": "/\n/evil.example/",
    "NUL": "/\x00/evil.example/",
    "leading space": " //evil.example/",
    "absolute URL": "https://evil.example/",
    "scheme only": "javascript:alert(1)",
    "dot segments": "/account/../..//evil.example/",
    "query smuggling": "/account?next=//evil.example/",
    "header injection": "/account\r\nSet-Cookie: x=1",
    "unknown local path": "/static/../../evil",
    "a POST-only endpoint": "/logout/confirm",
    "protocol endpoint": "/authorize",
}

# The paths our own pages send as ``next`` (``login_first`` in idp/views/_citizen.py).
OURS = ["/", "/account", "/account/totp", "/account/verify", "/account/phone", "/account/password",
        "/account/history", "/company"]


def _login(http, next_value: str):
    page = http.get("/login")
    html = page.get_data(as_text=True)
    return http.post("/login", data={"csrf_token": form_field(html, "csrf_token"), "next": next_value,
                                     "identifier": "alice", "password": "correct horse battery"})


@pytest.mark.parametrize("value", list(UNSAFE.values()), ids=list(UNSAFE))
def test_login_page_drops_an_unsafe_next(http, value):
    page = http.get("/login", query_string={"next": value})
    # ASVS 5 §5.1.5: the value never reaches the form the user submits.
    assert page.status_code == 200
    assert form_field(page.get_data(as_text=True), "next") == ""


@pytest.mark.parametrize("value", list(UNSAFE.values()), ids=list(UNSAFE))
def test_login_with_an_unsafe_next_goes_home(http, user, value):
    resp = _login(http, value)
    # A clean 303 (SECURITY.md: after a credential POST) to our home page, with the new
    # session: the login is complete, never half done (a 500 after the session existed).
    assert resp.status_code == 303, resp.status_code
    location = resp.headers["Location"]
    assert location == "/", location
    assert set_cookie_header(resp, SSO_COOKIE) is not None
    assert not any(c.startswith("x=") for c in resp.headers.getlist("Set-Cookie"))


def test_the_reviewed_link_is_refused_end_to_end(http, user):
    # The review: /login?next=/%09/evil.example/ gave "303 Location: //evil.example/".
    page = http.get("/login?next=/%09/evil.example/")
    html = page.get_data(as_text=True)
    resp = http.post("/login", data={"csrf_token": form_field(html, "csrf_token"),
                                     "next": form_field(html, "next"),
                                     "identifier": "alice", "password": "correct horse battery"})
    assert resp.status_code == 303
    assert urlsplit(resp.headers["Location"]).netloc == ""
    assert resp.headers["Location"] == "/"


@pytest.mark.parametrize("path", OURS)
def test_our_own_pages_are_kept_as_next(http, user, path):
    page = http.get("/login", query_string={"next": path})
    assert form_field(page.get_data(as_text=True), "next") == path
    resp = _login(http, path)
    # Positive control: the account pages still bring the citizen back after login.
    assert resp.status_code == 303
    assert resp.headers["Location"] == path


def test_account_page_round_trip(http, user):
    resp = http.get("/account/totp")
    assert resp.status_code == 303
    page = http.get(resp.headers["Location"])
    html = page.get_data(as_text=True)
    assert form_field(html, "next") == "/account/totp"
