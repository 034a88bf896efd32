"""PKCE (RFC 7636) as this profile requires it (RFC 9700 §2.1.1): S256 only, a
challenge from every client, the verifier checked at the token endpoint."""

from __future__ import annotations

import base64
import hashlib

import pytest

from tests.helpers import pkce_pair

from ._authz import (
    assert_no_store,
    assert_redirect_error,
    authorize_params,
    front_channel_code,
    login,
    redeem,
    token,
)

# -- authorization endpoint --------------------------------------------------------------

BAD_CHALLENGES = {
    "missing challenge": {"code_challenge": None},
    "plain": {"code_challenge_method": "plain"},
    "missing method": {"code_challenge_method": None},
    "lower-case method": {"code_challenge_method": "s256"},
    "unknown method": {"code_challenge_method": "S512"},
    "too short": {"code_challenge": "abc"},
    "too long": {"code_challenge": "a" * 129},
    "bad characters": {"code_challenge": "a" * 42 + "+"},
    "padding": {"code_challenge": base64.urlsafe_b64encode(hashlib.sha256(b"x").digest()).decode()},
    "empty": {"code_challenge": ""},
}


@pytest.mark.parametrize("change", list(BAD_CHALLENGES.values()), ids=list(BAD_CHALLENGES))
def test_authorization_without_a_valid_s256_challenge_is_refused(http, oauth_client, change):
    resp = http.get("/authorize", query_string=authorize_params(oauth_client, **change))
    # RFC 9700 §2.1.1 + RFC 7636 §4.4.1: invalid_request, redirected with state and iss.
    assert_redirect_error(resp, oauth_client, "invalid_request")


@pytest.mark.parametrize("change", [{"code_challenge": None}, {"code_challenge_method": "plain"}],
                         ids=["missing", "plain"])
def test_bad_challenge_refused_even_with_a_logged_in_session(http, oauth_client, user, change):
    login(http, oauth_client, user)
    resp = http.get("/authorize", query_string=authorize_params(oauth_client, **change))
    # RFC 9700 §2.1.1: no code without an S256 challenge, whatever the session state.
    assert_redirect_error(resp, oauth_client, "invalid_request")


def test_public_client_without_challenge_is_refused(http, public_client):
    resp = http.get("/authorize", query_string=authorize_params(public_client, code_challenge=None))
    # RFC 7636 §4.4.1 / RFC 9700 §2.1.1
    assert_redirect_error(resp, public_client, "invalid_request")


def test_repeated_challenge_is_refused(http, oauth_client):
    _, other = pkce_pair()
    params = list(authorize_params(oauth_client).items()) + [("code_challenge", other)]
    resp = http.get("/authorize", query_string=params)
    # RFC 6749 §3.1: request parameters must not be repeated.
    assert_redirect_error(resp, oauth_client, "invalid_request")


def test_discovery_advertises_s256_only(http):
    meta = http.get("/.well-known/openid-configuration").get_json()
    # RFC 8414 §2 code_challenge_methods_supported; RFC 9700 §2.1.1: plain not offered.
    assert meta["code_challenge_methods_supported"] == ["S256"]


def test_verifier_without_a_challenge_cannot_be_used(http, oauth_client, user):
    # RFC 9700 §2.1.1: a verifier for a code requested without a challenge must be
    # refused. Here such a code cannot exist: the request without challenge never yields
    # one, even for a logged-in, consented user.
    login(http, oauth_client, user)
    resp = http.get("/authorize", query_string=authorize_params(oauth_client, code_challenge=None,
                                                                 code_challenge_method=None))
    query = assert_redirect_error(resp, oauth_client, "invalid_request")
    assert "code" not in query


# -- token endpoint ----------------------------------------------------------------------


def test_correct_verifier_redeems(http, oauth_client, user):
    code, verifier = front_channel_code(http, oauth_client, user)
    resp = redeem(http, oauth_client, code, verifier)
    # RFC 7636 §4.6
    assert resp.status_code == 200
    assert_no_store(resp)


def test_wrong_verifier_is_invalid_grant(http, oauth_client, user):
    code, _ = front_channel_code(http, oauth_client, user)
    other_verifier, _ = pkce_pair()
    resp = redeem(http, oauth_client, code, other_verifier)
    # RFC 7636 §4.6: a failed comparison is invalid_grant.
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "invalid_grant"
    assert_no_store(resp)


def test_wrong_verifier_burns_the_code(http, oauth_client, user):
    code, verifier = front_channel_code(http, oauth_client, user)
    other_verifier, _ = pkce_pair()
    assert redeem(http, oauth_client, code, other_verifier).status_code == 400
    resp = redeem(http, oauth_client, code, verifier)
    # RFC 6749 §4.1.2: a code is single use; an attacker guessing verifiers gets one try.
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "invalid_grant"


def test_missing_verifier_is_refused(http, oauth_client, user):
    code, _ = front_channel_code(http, oauth_client, user)
    resp = token(http, oauth_client, {"grant_type": "authorization_code", "code": code,
                                      "redirect_uri": oauth_client.redirect_uri})
    # RFC 7636 §4.5 / RFC 9700 §2.1.1: the verifier is required for every client.
    assert resp.status_code == 400
    # RFC 6749 §5.2: a missing required parameter is invalid_request.
    assert resp.get_json()["error"] == "invalid_request"
    assert_no_store(resp)


def test_public_client_without_verifier_is_refused(http, public_client, user):
    code, _ = front_channel_code(http, public_client, user)
    resp = token(http, public_client, {"grant_type": "authorization_code", "code": code,
                                       "redirect_uri": public_client.redirect_uri})
    # RFC 7636 §4.5: a public client proves possession with the verifier only.
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "invalid_request"
    assert "access_token" not in resp.get_json()


def test_plain_verifier_equal_to_the_challenge_is_refused(http, oauth_client, user):
    code, verifier = front_channel_code(http, oauth_client, user)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    got = redeem(http, oauth_client, code, challenge)
    # RFC 7636 §4.6 with S256: the challenge itself is not a valid verifier (no plain).
    assert got.status_code == 400
    assert got.get_json()["error"] == "invalid_grant"
    assert_no_store(got)


@pytest.mark.parametrize("verifier", ["short", "a" * 129, "a" * 42 + "/"], ids=["short", "long", "charset"])
def test_malformed_verifier_is_refused(http, oauth_client, user, verifier):
    code, _ = front_channel_code(http, oauth_client, user)
    resp = redeem(http, oauth_client, code, verifier)
    # RFC 7636 §4.1: 43-128 unreserved characters; RFC 6749 §5.2: malformed → invalid_request.
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "invalid_request"
    assert_no_store(resp)
