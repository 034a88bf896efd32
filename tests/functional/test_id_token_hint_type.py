"""``id_token_hint`` must be an ID token we issued (OIDC Core §3.1.2.1, RP-Initiated Logout
§2; issue 17): our access tokens (RFC 9068, ``typ: at+jwt``), back-channel logout tokens
(``typ: logout+jwt``) and audit checkpoints are signed with the same keys and name the
client in ``aud``, but they are not hints. At /authorize such a hint is an invalid
request; at /logout it earns no trust: the user is asked, nothing ends, nothing redirects."""

from __future__ import annotations

import pytest

from common.audit import CHECKPOINT_TYP
from tests.helpers import Browser, decode_unverified, verify_jwt

from ._authz import ISSUER, assert_redirect_error, authorize_params
from ._support import SSO_COOKIE, isolate_requests, prompt_none, set_cookie_header

PLR = "https://portal.example.test/logged-out"


@pytest.fixture(autouse=True)
def _request_contexts(app):
    isolate_requests(app)


@pytest.fixture
def signed_in(http, oauth_client, user):
    """Tokens from a completed code flow; the test client holds the SSO cookie."""
    return Browser(http).tokens(oauth_client, user)


def _logout_token(services, oauth_client, tokens) -> str:
    # What the RP's back-channel endpoint receives (Back-Channel Logout §2.4): same sub,
    # sid and aud as the ID token, signed with our key.
    id_claims = decode_unverified(tokens["id_token"])
    return str(services.logout.logout_token(oauth_client.client_id, id_claims["sub"], id_claims["sid"]))


def _checkpoint(services, oauth_client, tokens) -> str:
    id_claims = decode_unverified(tokens["id_token"])
    return str(services.tokens.sign_jwt({"typ": CHECKPOINT_TYP}, {
        "iss": ISSUER, "aud": oauth_client.client_id, "sub": id_claims["sub"], "sid": id_claims["sid"],
        "iat": id_claims["iat"], "exp": id_claims["exp"], "auth_time": id_claims["auth_time"]}))


def _hints(http, services, oauth_client, tokens) -> dict[str, str]:
    hints = {
        "access token": tokens["access_token"],
        "logout token": _logout_token(services, oauth_client, tokens),
        "audit checkpoint": _checkpoint(services, oauth_client, tokens),
    }
    # They are genuine tokens of ours: the signature and issuer verify.
    for token in hints.values():
        header, claims = verify_jwt(http, token)
        assert claims["iss"] == ISSUER and header["typ"] != "JWT"
    return hints


KINDS = ["access token", "logout token", "audit checkpoint"]


@pytest.mark.parametrize("kind", KINDS)
def test_authorize_refuses_a_token_that_is_not_an_id_token(http, services, oauth_client, signed_in, kind):
    hint = _hints(http, services, oauth_client, signed_in)[kind]
    params = authorize_params(oauth_client, prompt="none", id_token_hint=hint)
    resp = http.get("/authorize", query_string=params)
    # OIDC Core §3.1.2.1: the hint must be an ID token the OP issued → invalid_request.
    assert_redirect_error(resp, oauth_client, "invalid_request")


def test_authorize_accepts_the_id_token(http, oauth_client, signed_in):
    # Positive control: the real ID token of the session's user is a good hint.
    query = prompt_none(http, oauth_client, id_token_hint=signed_in["id_token"])
    assert query.get("code") and "error" not in query


@pytest.mark.parametrize("kind", KINDS)
def test_logout_asks_when_the_hint_is_not_an_id_token(http, services, oauth_client, signed_in, kind):
    hint = _hints(http, services, oauth_client, signed_in)[kind]
    resp = http.get("/logout", query_string={"id_token_hint": hint, "post_logout_redirect_uri": PLR,
                                             "state": "s"})
    # RP-Initiated Logout §2: without a valid ID token as hint the OP asks the user; no
    # redirect, no logout yet.
    assert resp.status_code == 200
    assert "Location" not in resp.headers
    assert 'name="logout_request"' in resp.get_data(as_text=True)
    assert set_cookie_header(resp, SSO_COOKIE) is None
    assert "code" in prompt_none(http, oauth_client)


def test_logout_with_the_id_token_ends_the_session_at_once(http, oauth_client, signed_in):
    # Positive control: the ID token is trusted (redirect to the registered URI).
    resp = http.get("/logout", query_string={"id_token_hint": signed_in["id_token"],
                                             "post_logout_redirect_uri": PLR, "state": "s"})
    assert resp.status_code == 303 and resp.headers["Location"] == PLR + "?state=s"

