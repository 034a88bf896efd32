"""RP-Initiated Logout (OpenID Connect RP-Initiated Logout 1.0 §2, §3) through HTTP:
verified redirects only, state echoed, the SSO session really ends, confirmation with
CSRF when the request cannot be trusted."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.helpers import Browser, assert_security_headers, query_of

from ._support import (
    SSO_COOKIE,
    csrf_of,
    isolate_requests,
    prompt_none,
    register_client,
    set_cookie_header,
    sso_cookie_value,
)

PLR = "https://portal.example.test/logged-out"


@pytest.fixture(autouse=True)
def _request_contexts(app):
    isolate_requests(app)


@pytest.fixture
def signed_in(http, oauth_client, user):
    """Tokens from a completed code flow; the test client holds the SSO cookie."""
    tokens = Browser(http).tokens(oauth_client, user)
    assert sso_cookie_value(http)
    return tokens


def _assert_cookie_cleared(resp) -> None:
    header = set_cookie_header(resp, SSO_COOKIE)
    assert header is not None, resp.headers.getlist("Set-Cookie")
    assert header.startswith(f"{SSO_COOKIE}=;") and "Expires=Thu, 01 Jan 1970" in header


def _assert_session_ended(http, client, old_cookie: str) -> None:
    # Even if the browser kept (or an attacker copied) the old cookie value, it no longer
    # names a session (SECURITY.md: "After logout the old session cookie no longer works").
    http.set_cookie(SSO_COOKIE, old_cookie)
    # OIDC Core §3.1.2.6: prompt=none without a session → login_required.
    assert prompt_none(http, client)["error"] == "login_required"


def test_valid_hint_and_registered_uri_redirects_with_state(http, oauth_client, signed_in):
    old_cookie = sso_cookie_value(http)
    resp = http.get("/logout", query_string={"id_token_hint": signed_in["id_token"],
                                             "post_logout_redirect_uri": PLR, "state": "bye-1"})
    # RP-Initiated Logout §3: redirect to the registered URI, state echoed; 303 (RFC 9110 §15.4.4).
    assert resp.status_code == 303
    location = resp.headers["Location"]
    assert location.split("?")[0] == PLR
    assert query_of(location) == {"state": "bye-1"}
    _assert_cookie_cleared(resp)
    assert sso_cookie_value(http) is None
    assert old_cookie is not None
    _assert_session_ended(http, oauth_client, old_cookie)


def test_post_form_is_accepted(http, oauth_client, signed_in):
    # RP-Initiated Logout §2: GET and POST.
    resp = http.post("/logout", data={"id_token_hint": signed_in["id_token"], "post_logout_redirect_uri": PLR,
                                      "state": "s"})
    assert resp.status_code == 303
    assert resp.headers["Location"] == PLR + "?state=s"


def test_without_redirect_uri_shows_logged_out_page(http, oauth_client, signed_in):
    old_cookie = sso_cookie_value(http)
    resp = http.get("/logout", query_string={"id_token_hint": signed_in["id_token"]})
    assert resp.status_code == 200
    assert 'id="logged-out"' in resp.get_data(as_text=True)
    assert "Location" not in resp.headers
    _assert_cookie_cleared(resp)
    assert_security_headers(resp)
    _assert_session_ended(http, oauth_client, old_cookie)


@pytest.mark.parametrize("uri", [
    "https://evil.example.test/logged-out",
    PLR + "/extra",
    PLR + "?x=1",
    "https://PORTAL.example.test/logged-out",
    "http://portal.example.test/logged-out",
])
def test_unregistered_redirect_uri_is_an_error_page(http, oauth_client, signed_in, uri):
    resp = http.get("/logout", query_string={"id_token_hint": signed_in["id_token"],
                                             "post_logout_redirect_uri": uri, "state": "s"})
    # RP-Initiated Logout §3: the URI must exactly match a registered one; otherwise no
    # redirect at all (an open redirector otherwise).
    assert resp.status_code == 400
    assert "Location" not in resp.headers
    assert "invalid_post_logout_redirect_uri" in resp.get_data(as_text=True)
    assert_security_headers(resp)
    # Nothing happened: the session still works.
    assert "code" in prompt_none(http, oauth_client)


def test_without_hint_asks_for_confirmation(http, oauth_client, signed_in):
    resp = http.get("/logout", query_string={"client_id": oauth_client.client_id, "post_logout_redirect_uri": PLR,
                                             "state": "s"})
    # RP-Initiated Logout §2: without a hint the OP asks the user; no redirect yet.
    assert resp.status_code == 200
    assert "Location" not in resp.headers
    page = resp.get_data(as_text=True)
    assert 'name="logout_request"' in page and 'name="csrf_token"' in page
    assert_security_headers(resp)
    # Nothing changes over GET: the session is intact until the user confirms.
    assert "code" in prompt_none(http, oauth_client)


def test_confirmation_requires_csrf(http, oauth_client, signed_in):
    page = http.get("/logout")
    assert page.status_code == 200
    lid = page.get_data(as_text=True).split('name="logout_request" value="')[1].split('"')[0]
    # OWASP ASVS 5 §3.5.1: a state-changing POST without the CSRF token is refused.
    resp = http.post("/logout/confirm", data={"logout_request": lid, "decision": "logout"})
    assert resp.status_code == 400
    assert "csrf" in resp.get_data(as_text=True)
    assert set_cookie_header(resp, SSO_COOKIE) is None
    resp = http.post("/logout/confirm", data={"logout_request": lid, "decision": "logout", "csrf_token": "forged"})
    assert resp.status_code == 400
    assert "code" in prompt_none(http, oauth_client)


def test_confirmed_logout_ends_session_and_does_not_redirect_unverified(http, oauth_client, signed_in):
    old_cookie = sso_cookie_value(http)
    page = http.get("/logout", query_string={"client_id": oauth_client.client_id, "post_logout_redirect_uri": PLR,
                                             "state": "s"})
    lid = page.get_data(as_text=True).split('name="logout_request" value="')[1].split('"')[0]
    resp = http.post("/logout/confirm", data={"logout_request": lid, "decision": "logout",
                                              "csrf_token": csrf_of(page)})
    # Policy (SECURITY.md "Logout"): without a valid id_token_hint the RP is not verified,
    # so no redirect, even to a registered URI.
    assert resp.status_code == 200
    assert "Location" not in resp.headers
    assert PLR not in resp.get_data(as_text=True)
    _assert_cookie_cleared(resp)
    _assert_session_ended(http, oauth_client, old_cookie)


def test_cancel_keeps_the_session(http, oauth_client, signed_in):
    page = http.get("/logout")
    lid = page.get_data(as_text=True).split('name="logout_request" value="')[1].split('"')[0]
    resp = http.post("/logout/confirm", data={"logout_request": lid, "decision": "cancel",
                                              "csrf_token": csrf_of(page)})
    assert resp.status_code == 200
    assert set_cookie_header(resp, SSO_COOKIE) is None
    assert "code" in prompt_none(http, oauth_client)


def test_expired_hint_is_still_accepted(http, oauth_client, signed_in, clock):
    clock.advance(301)  # id_token_ttl is 300 s; the session (idle 1800 s) is still alive
    resp = http.get("/logout", query_string={"id_token_hint": signed_in["id_token"],
                                             "post_logout_redirect_uri": PLR, "state": "late"})
    # RP-Initiated Logout §2: the OP SHOULD accept an expired ID token as a hint.
    assert resp.status_code == 303
    assert resp.headers["Location"] == PLR + "?state=late"
    _assert_cookie_cleared(resp)


def test_hint_of_another_client_with_mismatching_client_id(http, oauth_client, signed_in, services):
    other = register_client(services, post_logout_redirect_uris=["https://second.example.test/bye"])
    resp = http.get("/logout", query_string={"id_token_hint": signed_in["id_token"], "client_id": other.client_id,
                                             "post_logout_redirect_uri": "https://second.example.test/bye"})
    # RP-Initiated Logout §2: client_id must match the hint's aud; otherwise an error.
    assert resp.status_code == 400
    assert "Location" not in resp.headers
    assert "code" in prompt_none(http, oauth_client)


def test_registered_uri_of_another_client_is_refused(http, oauth_client, signed_in, services):
    register_client(services, post_logout_redirect_uris=["https://second.example.test/bye"])
    # The URI is registered, but for another client than the hint's audience (§3).
    resp = http.get("/logout", query_string={"id_token_hint": signed_in["id_token"],
                                             "post_logout_redirect_uri": "https://second.example.test/bye"})
    assert resp.status_code == 400
    assert "Location" not in resp.headers


def test_forged_hint_is_not_trusted(http, oauth_client, signed_in):
    head, payload, sig = signed_in["id_token"].split(".")
    forged = f"{head}.{payload}.{sig[:-4]}AAAA"
    resp = http.get("/logout", query_string={"id_token_hint": forged, "post_logout_redirect_uri": PLR})
    # §2: a hint that does not verify earns no redirect; the user is asked instead.
    assert resp.status_code in (200, 400)
    assert "Location" not in resp.headers
    assert urlsplit(PLR).netloc not in resp.headers.get("Content-Security-Policy", "")
    assert "code" in prompt_none(http, oauth_client)
