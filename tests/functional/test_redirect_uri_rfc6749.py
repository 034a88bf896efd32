"""Redirect URI handling at the authorization endpoint (RFC 6749 §3.1.2, §4.1.2.1;
RFC 9700 §2.1, §4.1): an unknown client or a redirect URI that is not byte for byte a
registered one gets an error page, never a redirect."""

from __future__ import annotations

import pytest

from tests.helpers import Browser, RegisteredTestClient, assert_security_headers, query_of

from ._authz import ISSUER, assert_error_page, assert_redirect_error, authorize_params, register_client

REGISTERED = "https://portal.example.test/callback"

NOT_REGISTERED = {
    "extra path": REGISTERED + "/evil",
    "extra path segment up": "https://portal.example.test/callback/../other",
    "added query": REGISTERED + "?next=https://attacker.example",
    "fragment": REGISTERED + "#x",
    "host case": "https://PORTAL.example.test/callback",
    "path case": "https://portal.example.test/Callback",
    "scheme": "http://portal.example.test/callback",
    "trailing slash": REGISTERED + "/",
    "explicit default port": "https://portal.example.test:443/callback",
    "other host": "https://attacker.example/callback",
    "subdomain": "https://evil.portal.example.test/callback",
    "userinfo": "https://portal.example.test@attacker.example/callback",
    "percent-encoded": "https://portal.example.test/%63allback",
    "empty": "",
}


def test_unknown_client_gets_error_page(http):
    params = authorize_params(RegisteredTestClient("no-such-client", None, "https://attacker.example/cb"))
    resp = http.get("/authorize", query_string=params)
    # RFC 6749 §4.1.2.1: with an invalid client_id the user agent is not redirected.
    assert_error_page(resp, "invalid_client")
    assert resp.status_code == 400
    body = resp.get_data(as_text=True)
    # No link, form or refresh that would take the user to the unverified URI.
    assert 'href="https://attacker' not in body and 'action="https://attacker' not in body
    assert "Refresh" not in resp.headers
    assert_security_headers(resp)


def test_missing_client_id_gets_error_page(http, oauth_client):
    resp = http.get("/authorize", query_string=authorize_params(oauth_client, client_id=None))
    # RFC 6749 §4.1.2.1: missing client identifier → inform the resource owner, no redirect.
    assert_error_page(resp)
    assert resp.status_code == 400


@pytest.mark.parametrize("redirect_uri", list(NOT_REGISTERED.values()), ids=list(NOT_REGISTERED))
def test_unregistered_redirect_uri_gets_error_page(http, oauth_client, redirect_uri):
    resp = http.get("/authorize", query_string=authorize_params(oauth_client, redirect_uri=redirect_uri))
    # RFC 9700 §2.1 / §4.1.3: exact string matching; RFC 6749 §4.1.2.1: no redirect to it.
    assert_error_page(resp)
    assert resp.status_code == 400
    assert_security_headers(resp)


def test_missing_redirect_uri_gets_error_page(http, oauth_client):
    resp = http.get("/authorize", query_string=authorize_params(oauth_client, redirect_uri=None))
    # RFC 9700 §2.1 (OAuth 2.1 §4.1.1): redirect_uri is required, there is no default.
    assert_error_page(resp)
    assert resp.status_code == 400


def test_unregistered_redirect_uri_never_redirects_even_with_other_errors(http, oauth_client):
    # Several faults at once: a bad response_type or a missing PKCE challenge must not
    # turn the unverified URI into a redirect target.
    for extra in ({"response_type": "token"}, {"code_challenge": None}, {"scope": "bogus"}, {"prompt": "none"}):
        params = authorize_params(oauth_client, redirect_uri="https://attacker.example/cb", **extra)
        resp = http.get("/authorize", query_string=params)
        # RFC 6749 §4.1.2.1
        assert_error_page(resp)


def test_redirect_uri_of_another_client_gets_error_page(http, oauth_client, services):
    other = register_client(services, "https://other.example.test/cb")
    params = authorize_params(oauth_client, redirect_uri=other.redirect_uri)
    resp = http.get("/authorize", query_string=params)
    # RFC 6749 §3.1.2.2: the URI is compared against this client's registrations only.
    assert_error_page(resp)


def test_post_authorization_with_unregistered_redirect_uri_gets_error_page(http, oauth_client):
    params = authorize_params(oauth_client, redirect_uri=REGISTERED + "/x")
    resp = http.post("/authorize", data=params)
    # OIDC Core §3.1.2.1 (POST allowed) + RFC 6749 §4.1.2.1
    assert_error_page(resp)


def test_registered_query_component_is_kept_and_must_match(http, services, user):
    client = register_client(services, "https://rp.example.test/cb?tenant=a")
    # RFC 6749 §3.1.2: the registered query component is part of the exact string.
    for changed in ("https://rp.example.test/cb?tenant=b", "https://rp.example.test/cb",
                    "https://rp.example.test/cb?tenant=a&x=1"):
        resp = http.get("/authorize", query_string=authorize_params(client, redirect_uri=changed))
        assert_error_page(resp)


def test_registered_query_component_is_retained_in_the_response(http, services, user):
    client = register_client(services, "https://rp.example.test/cb?tenant=a")
    browser = Browser(http)
    browser.code_flow(client, user, state="q-1")
    final = browser.history[-1].headers["Location"]
    # RFC 6749 §3.1.2: the query component of the registered URI is retained when
    # parameters are added.
    assert final.startswith("https://rp.example.test/cb?")
    query = query_of(final)
    assert query["tenant"] == "a" and query["state"] == "q-1" and query["iss"] == ISSUER and query["code"]


def test_verified_redirect_uri_receives_errors(http, oauth_client):
    # Once the client and URI are verified, errors go back to the client (RFC 6749
    # §4.1.2.1), with iss (RFC 9207 §2) and state.
    resp = http.get("/authorize", query_string=authorize_params(oauth_client, code_challenge=None))
    assert_redirect_error(resp, oauth_client, "invalid_request")
