"""Bad input gets a clear 4xx, never a 500 (STYLE.md "Errors"; issue 17): quotes,
backslashes, non-ASCII and control characters in protocol parameters, malformed
``claims`` (wrong member types, nesting deep enough to exhaust the parser), malformed
client credentials, NUL bytes that PostgreSQL refuses, and JSON text that is no Unicode.
Where client and redirect URI are not verified the answer is an error page (RFC 6749
§4.1.2.1); once verified, an error redirect with ``iss`` and ``state`` (RFC 9207)."""

from __future__ import annotations

import base64
import json

import pytest

from tests.functional._admin_api import API, admin_headers
from tests.helpers import form_field, query_of

from ._authz import assert_error_page, assert_redirect_error, authorize_params

REGISTERED = "https://portal.example.test/callback"

# Characters outside RFC 6749's error_description set, which Authlib quoted into its
# error descriptions and then refused with a ValueError.
BAD_REDIRECT_URIS = {
    "double quote": REGISTERED + '"',
    "backslash": REGISTERED + "\\",
    "non-ASCII": "https://portal.example.test/callbäck",
    "Chinese": REGISTERED + "/回调",
    "NUL": REGISTERED + "\x00",
    "CR LF": REGISTERED + "\r\nX-Injected: 1",
    "tab": REGISTERED + "\t",
}
BAD_RESPONSE_TYPES = {"double quote": 'code"', "only a quote": '"', "backslash": "co\\de", "non-ASCII": "cöde",
                      "NUL": "code\x00", "LF": "code\n"}


def _send(http, method: str, params: dict[str, str]):
    if method == "GET":
        return http.get("/authorize", query_string=params)
    return http.post("/authorize", data=params)


# -- /authorize: redirect_uri and response_type (Authlib's ValueError) -----------------


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("uri", list(BAD_REDIRECT_URIS.values()), ids=list(BAD_REDIRECT_URIS))
def test_unregistrable_redirect_uri_is_an_error_page(http, oauth_client, method, uri):
    resp = _send(http, method, authorize_params(oauth_client, redirect_uri=uri))
    # RFC 6749 §4.1.2.1: not a registered URI → inform the user, no redirect.
    assert resp.status_code == 400
    assert_error_page(resp, "invalid_request")


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("response_type", list(BAD_RESPONSE_TYPES.values()), ids=list(BAD_RESPONSE_TYPES))
def test_bad_response_type_for_a_verified_client_is_an_error_redirect(http, oauth_client, method, response_type):
    resp = _send(http, method, authorize_params(oauth_client, response_type=response_type))
    # RFC 6749 §4.1.2.1 unsupported_response_type, sent to the verified redirect URI.
    query = assert_redirect_error(resp, oauth_client, "unsupported_response_type")
    assert response_type not in query.get("error_description", "")


@pytest.mark.parametrize("response_type", ['code"', "cöde"])
def test_bad_response_type_with_an_unverified_uri_is_an_error_page(http, oauth_client, response_type):
    for params in (authorize_params(oauth_client, response_type=response_type, redirect_uri="https://evil.example/cb"),
                   authorize_params(oauth_client, response_type=response_type, client_id="no-such-client")):
        resp = http.get("/authorize", query_string=params)
        assert resp.status_code == 400
        assert_error_page(resp)


def test_registered_non_ascii_redirect_uri_still_works(http, services):
    from ._authz import register_client

    client = register_client(services, "https://rp.example.test/回调")
    resp = http.get("/authorize", query_string=authorize_params(client))
    # Positive control: a URI registered byte for byte is verified, whatever it holds.
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/login?")
    bad = http.get("/authorize", query_string=authorize_params(client, response_type='code"'))
    # Verified, so an error redirect (the Location carries the URI percent-encoded).
    assert bad.status_code == 302 and bad.headers["Location"].startswith("https://rp.example.test/%E5%9B%9E%E8%B0%83?")
    assert query_of(bad.headers["Location"])["error"] == "unsupported_response_type"


def test_nul_in_client_id_is_an_error_page(http, oauth_client):
    resp = http.get("/authorize", query_string=authorize_params(oauth_client, client_id="a\x00b"))
    # PostgreSQL refuses NUL in text; no client can have it: invalid_client, a page.
    assert resp.status_code == 400
    assert_error_page(resp, "invalid_client")


# -- /authorize: the claims parameter (OIDC Core §5.5) ---------------------------------

BAD_CLAIMS = {
    "acr values a number (the review's case)": {"id_token": {"acr": {"values": 5}}},
    "acr values an object": {"id_token": {"acr": {"values": {"a": 1}}}},
    "acr values not strings": {"id_token": {"acr": {"values": [5]}}},
    "acr value a number": {"id_token": {"acr": {"value": 5}}},
    "essential not a boolean": {"id_token": {"acr": {"essential": "yes", "values": ["cn-l1"]}}},
    "values of another claim not an array": {"userinfo": {"name": {"values": "x"}}},
}


@pytest.mark.parametrize("claims", list(BAD_CLAIMS.values()), ids=list(BAD_CLAIMS))
def test_claims_of_the_wrong_shape_are_invalid_request(http, oauth_client, claims):
    resp = http.get("/authorize", query_string=authorize_params(oauth_client, claims=json.dumps(claims)))
    # OIDC Core §5.5.1: essential is a boolean, values an array (of strings for acr).
    assert_redirect_error(resp, oauth_client, "invalid_request")


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("claims", ["[" * 50000 + "]" * 50000, '{"a":' * 50000 + "1" + "}" * 50000],
                         ids=["arrays", "objects"])
def test_claims_nested_50000_deep_is_invalid_request(http, oauth_client, method, claims):
    resp = _send(http, method, authorize_params(oauth_client, claims=claims))
    # The parser's RecursionError is a malformed parameter, not a server error.
    assert_redirect_error(resp, oauth_client, "invalid_request")


def test_well_formed_acr_request_still_works(http, oauth_client, user):
    from tests.helpers import Browser

    claims = json.dumps({"id_token": {"acr": {"essential": True, "values": ["cn-l0"]}}})
    query, _ = Browser(http).code_flow(oauth_client, user, claims=claims)
    # Positive control.
    assert query.get("code")


# -- /login -------------------------------------------------------------------------------


def test_nul_in_login_identifier_is_a_failed_login(http, user):
    page = http.get("/login")
    resp = http.post("/login", data={"csrf_token": form_field(page.get_data(as_text=True), "csrf_token"),
                                     "identifier": "ali\x00ce", "password": user.password})
    # The same answer as any wrong credentials (ASVS 5 §6.3), not a database error.
    assert resp.status_code == 401
    assert 'name="password"' in resp.get_data(as_text=True)


# -- /token, /introspect, /revoke: client authentication ---------------------------------


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


BAD_AUTHORIZATION = {
    "non-ASCII credentials": "Basic äö",
    "not base64": "Basic ***",
    "only whitespace after the scheme": "Basic \t",
    "another scheme with nothing after it": "Bearer \t",
    "NUL in the client id": "Basic " + _b64("a\x00b:secret"),
    "not UTF-8": "Basic " + base64.b64encode(b"\xc7\x28:\xff").decode(),
    "no colon": "Basic " + _b64("just-a-client-id"),
}


@pytest.mark.parametrize("endpoint", ["/token", "/introspect", "/revoke"])
@pytest.mark.parametrize("header", list(BAD_AUTHORIZATION.values()), ids=list(BAD_AUTHORIZATION))
def test_malformed_basic_credentials_are_invalid_client(http, oauth_client, endpoint, header):
    data = {"grant_type": "client_credentials"} if endpoint == "/token" else {"token": "x"}
    resp = http.post(endpoint, data=data, headers={"Authorization": header})
    # RFC 6749 §5.2: invalid_client, 401 with a challenge when the header was used.
    assert resp.status_code == 401, (resp.status_code, resp.get_data(as_text=True)[:200])
    assert resp.get_json()["error"] == "invalid_client"
    assert resp.headers.get("WWW-Authenticate", "").startswith("Basic")
    assert resp.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("endpoint", ["/token", "/introspect", "/revoke"])
def test_nul_in_form_client_id_is_invalid_client(http, endpoint):
    data = {"grant_type": "client_credentials", "client_id": "a\x00b", "client_secret": "s"} if endpoint == "/token" \
        else {"token": "x", "client_id": "a\x00b", "client_secret": "s"}
    resp = http.post(endpoint, data=data)
    assert resp.status_code in (400, 401)
    assert resp.get_json()["error"] == "invalid_client"


def test_good_basic_credentials_still_work(http, oauth_client):
    resp = http.post("/token", data={"grant_type": "client_credentials"}, auth=oauth_client.auth)
    # Positive control.
    assert resp.status_code == 200


# -- /logout --------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_nul_in_logout_client_id_is_an_error_page(http, method):
    params = {"client_id": "a\x00b", "post_logout_redirect_uri": "https://portal.example.test/logged-out"}
    resp = http.get("/logout", query_string=params) if method == "GET" else http.post("/logout", data=params)
    # RP-Initiated Logout §3: the URI is not registered for a (non-existent) client.
    assert resp.status_code == 400
    assert "Location" not in resp.headers
    assert "invalid_post_logout_redirect_uri" in resp.get_data(as_text=True)


# -- admin API: JSON that is no Unicode text ---------------------------------------------


@pytest.fixture
def as_admin(http, services, clock):
    return admin_headers(services, clock)


@pytest.mark.parametrize("raw", [
    b'{"name": "\\ud800", "redirect_uris": ["https://x.example.test/cb"]}',
    b'{"name": "ok", "redirect_uris": ["https://x.example.test/\\udfff"]}',
    # The same lone surrogate as raw (CESU-style) bytes, which json decodes with surrogatepass.
    b'{"name": "\xed\xa0\x80", "redirect_uris": ["https://x.example.test/cb"]}',
])
def test_admin_api_lone_surrogate_is_a_problem(http, as_admin, raw):
    resp = http.post(f"{API}/clients", data=raw,
                     headers={**as_admin("client-admin"), "Content-Type": "application/json"})
    # RFC 8259 §8.2 / RFC 9457: a 4xx problem naming the body, not a server error.
    assert resp.status_code == 422, (resp.status_code, resp.get_data(as_text=True)[:200])
    assert resp.mimetype == "application/problem+json"
    assert resp.get_json()["errors"][0]["field"] == "body"


@pytest.mark.parametrize("limit", ["²", "٣", "1_0", "+5"])
def test_admin_api_integer_parameter_in_other_digits_is_a_problem(http, as_admin, limit):
    # "²".isdigit() is true but int("²") fails: the parameter's digits are ASCII only.
    resp = http.get(f"{API}/clients", query_string={"limit": limit}, headers=as_admin("client-admin"))
    assert resp.status_code == 422, (resp.status_code, resp.get_data(as_text=True)[:200])
    assert resp.mimetype == "application/problem+json"
    assert resp.get_json()["errors"] == [{"field": "limit", "detail": "must be integer"}]
