"""``private_key_jwt`` client authentication (RFC 7523 §2.2, §3; OIDC Core §9) with the
profile's tightening (SECURITY.md "Token endpoint"): exact audience, unexpired, single-use
``jti``, no ``none``, no HMAC keyed with the public key, no key named by the assertion
itself (``jku`` / ``jwk`` / ``x5u`` / ``x5c``), ``iss`` = ``sub`` = client_id."""

from __future__ import annotations

import json

import pytest

from tests.helpers import RegisteredTestClient, verify_jwt

from ._authz import (
    ISSUER,
    TOKEN_ENDPOINT,
    assert_no_store,
    assertion_claims,
    client_assertion_request,
    hmac_assertion,
    new_ec_key,
    public_jwks,
    register_client,
    sign_assertion,
    unsigned_assertion,
)


@pytest.fixture
def client_key():
    return new_ec_key("rp-key-1")


@pytest.fixture
def jwt_client(services, client_key) -> RegisteredTestClient:
    return register_client(
        services,
        "https://jwt.example.test/cb",
        name="JWT Portal",
        grant_types=["authorization_code", "client_credentials"],
        token_endpoint_auth_method="private_key_jwt",
        jwks=public_jwks(client_key),
    )


def _claims(clock, client, **overrides):
    return assertion_claims(client.client_id, clock.timestamp(), **overrides)


def _assert_invalid_client(resp):
    # RFC 6749 §5.2 invalid_client (400, or 401 with a challenge); RFC 7523 §3.2.
    assert resp.status_code in (400, 401), resp.status_code
    body = resp.get_json()
    assert body["error"] == "invalid_client"
    assert "access_token" not in body
    assert_no_store(resp)


def test_valid_assertion_authenticates(http, jwt_client, client_key, clock):
    assertion = sign_assertion(client_key, _claims(clock, jwt_client))
    resp = client_assertion_request(http, jwt_client.client_id, assertion)
    # RFC 7523 §2.2 / OIDC Core §9 private_key_jwt.
    assert resp.status_code == 200, resp.get_json()
    assert_no_store(resp)
    _, at = verify_jwt(http, resp.get_json()["access_token"])
    assert at["client_id"] == jwt_client.client_id and at["sub"] == jwt_client.client_id


def test_issuer_as_audience_is_accepted(http, jwt_client, client_key, clock):
    assertion = sign_assertion(client_key, _claims(clock, jwt_client, aud=ISSUER))
    # RFC 7523 §3 item 3: the authorization server's issuer identifies it as audience.
    assert client_assertion_request(http, jwt_client.client_id, assertion).status_code == 200


def test_assertion_without_client_id_parameter_authenticates(http, jwt_client, client_key, clock):
    assertion = sign_assertion(client_key, _claims(clock, jwt_client))
    resp = http.post("/token", data={
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    })
    # RFC 7521 §4.2: client_id is optional; sub identifies the client.
    assert resp.status_code == 200


@pytest.mark.parametrize("aud", [
    "https://attacker.example/token",
    TOKEN_ENDPOINT + "/",
    ISSUER + "/",
    TOKEN_ENDPOINT.upper(),
    ISSUER + "/authorize",
    ["https://attacker.example/token"],
], ids=["other server", "trailing slash", "issuer slash", "case", "other endpoint", "list"])
def test_wrong_audience_is_invalid_client(http, jwt_client, client_key, clock, aud):
    assertion = sign_assertion(client_key, _claims(clock, jwt_client, aud=aud))
    # RFC 7523 §3 item 3: aud must identify this server, compared exactly.
    _assert_invalid_client(client_assertion_request(http, jwt_client.client_id, assertion))


def test_missing_audience_is_invalid_client(http, jwt_client, client_key, clock):
    claims = _claims(clock, jwt_client)
    del claims["aud"]
    # RFC 7523 §3 item 3: aud is required.
    _assert_invalid_client(client_assertion_request(http, jwt_client.client_id, sign_assertion(client_key, claims)))


def test_expired_assertion_is_invalid_client(http, jwt_client, client_key, clock):
    now = clock.timestamp()
    assertion = sign_assertion(client_key, _claims(clock, jwt_client, iat=now - 600, exp=now - 300))
    # RFC 7523 §3 item 4: an expired JWT is rejected.
    _assert_invalid_client(client_assertion_request(http, jwt_client.client_id, assertion))


def test_assertion_expires_on_the_server_clock(http, jwt_client, client_key, clock):
    assertion = sign_assertion(client_key, _claims(clock, jwt_client))  # exp = now + 60
    clock.advance(300)
    # RFC 7523 §3 item 4: expiry is judged against the server's (injected) time.
    _assert_invalid_client(client_assertion_request(http, jwt_client.client_id, assertion))


def test_missing_exp_is_invalid_client(http, jwt_client, client_key, clock):
    claims = _claims(clock, jwt_client)
    del claims["exp"]
    # RFC 7523 §3 item 4: exp is required.
    _assert_invalid_client(client_assertion_request(http, jwt_client.client_id, sign_assertion(client_key, claims)))


def test_not_yet_valid_assertion_is_invalid_client(http, jwt_client, client_key, clock):
    now = clock.timestamp()
    assertion = sign_assertion(client_key, _claims(clock, jwt_client, nbf=now + 3600, exp=now + 3700))
    # RFC 7523 §3 item 5: not before.
    _assert_invalid_client(client_assertion_request(http, jwt_client.client_id, assertion))


# -- lifetime cap (issue 17; RFC 7523 §3 item 4 lets the server limit the window) -----


@pytest.mark.parametrize("lifetime", [86400 * 365, 86400, "cap+1"])
def test_assertion_valid_too_long_is_invalid_client(http, services, jwt_client, client_key, clock, lifetime):
    now = clock.timestamp()
    cap = services.p.settings.client_assertion_max_lifetime
    assertion = sign_assertion(client_key, _claims(clock, jwt_client, exp=now + (cap + 1 if lifetime == "cap+1"
                                                                                 else lifetime)))
    # Policy: an assertion may live at most client_assertion_max_lifetime (one hour by
    # default). A long-lived one is a bearer credential that can be stolen and used later
    # (only its jti stops a second use).
    _assert_invalid_client(client_assertion_request(http, jwt_client.client_id, assertion))


def test_assertion_valid_for_the_cap_authenticates(http, services, jwt_client, client_key, clock):
    now = clock.timestamp()
    cap = services.p.settings.client_assertion_max_lifetime
    assertion = sign_assertion(client_key, _claims(clock, jwt_client, exp=now + cap))
    # Positive control: exactly the cap is accepted.
    assert client_assertion_request(http, jwt_client.client_id, assertion).status_code == 200


def test_client_clock_slightly_ahead_authenticates(http, jwt_client, client_key, clock):
    now = clock.timestamp()
    # A client clock 20 s ahead (within the 30 s leeway) signing a 300 s assertion.
    assertion = sign_assertion(client_key, _claims(clock, jwt_client, iat=now + 20, exp=now + 320))
    assert client_assertion_request(http, jwt_client.client_id, assertion).status_code == 200


def test_long_lived_assertion_issued_long_ago_is_invalid_client(http, jwt_client, client_key, clock):
    now = clock.timestamp()
    # Signed a year ago to be valid for a year: near its end it is within the cap of exp,
    # but its lifetime (exp - iat) still exceeds the cap.
    assertion = sign_assertion(client_key, _claims(clock, jwt_client, iat=now - 86400 * 365, exp=now + 200))
    _assert_invalid_client(client_assertion_request(http, jwt_client.client_id, assertion))


def test_assertion_issued_in_the_future_is_invalid_client(http, jwt_client, client_key, clock):
    now = clock.timestamp()
    assertion = sign_assertion(client_key, _claims(clock, jwt_client, iat=now + 120, exp=now + 200))
    # RFC 7519 §4.1.6: iat beyond the clock-skew leeway is not a real issue time.
    _assert_invalid_client(client_assertion_request(http, jwt_client.client_id, assertion))


def test_assertion_without_iat_within_the_cap_authenticates(http, jwt_client, client_key, clock):
    claims = _claims(clock, jwt_client, iat=None)
    assert "iat" not in claims
    # OIDC Core §9: iat is optional for private_key_jwt; the exp cap bounds the window.
    assert client_assertion_request(http, jwt_client.client_id, sign_assertion(client_key, claims)).status_code == 200


def test_missing_jti_is_invalid_client(http, jwt_client, client_key, clock):
    claims = _claims(clock, jwt_client)
    del claims["jti"]
    # OIDC Core §9: jti is required (so that replay can be detected, RFC 7523 §3 item 7).
    _assert_invalid_client(client_assertion_request(http, jwt_client.client_id, sign_assertion(client_key, claims)))


def test_replayed_jti_is_invalid_client(http, jwt_client, client_key, clock):
    assertion = sign_assertion(client_key, _claims(clock, jwt_client))
    assert client_assertion_request(http, jwt_client.client_id, assertion).status_code == 200
    # RFC 7523 §3 item 7: the server may (here: does) refuse a jti seen before.
    _assert_invalid_client(client_assertion_request(http, jwt_client.client_id, assertion))
    # The same jti in a freshly signed assertion is still a replay.
    same_jti = json.loads(json.dumps(_claims(clock, jwt_client, jti="fixed-jti-1")))
    assert client_assertion_request(http, jwt_client.client_id, sign_assertion(client_key, same_jti)).status_code == 200
    again = _claims(clock, jwt_client, jti="fixed-jti-1", iat=clock.timestamp() + 1)
    _assert_invalid_client(client_assertion_request(http, jwt_client.client_id, sign_assertion(client_key, again)))


def test_alg_none_is_invalid_client(http, jwt_client, clock):
    # RFC 7523 §3 item 9 (signed JWT) / RFC 8725 §3.1: "none" is never accepted.
    _assert_invalid_client(client_assertion_request(http, jwt_client.client_id,
                                                    unsigned_assertion(_claims(clock, jwt_client))))


def test_hmac_keyed_with_the_public_key_is_invalid_client(http, jwt_client, client_key, clock):
    claims = _claims(clock, jwt_client)
    public_pem = client_key.as_pem(private=False)
    public_json = json.dumps(public_jwks(client_key)["keys"][0]).encode()
    # RFC 8725 §3.1 / §2.1: algorithm confusion — an HS256 MAC keyed with the public key.
    for secret in (public_pem, public_json, b"x" * 32):
        _assert_invalid_client(client_assertion_request(http, jwt_client.client_id,
                                                        hmac_assertion(secret, claims, client_key.kid)))


def test_jwk_header_with_own_key_is_invalid_client(http, jwt_client, clock):
    attacker = new_ec_key("rp-key-1")
    assertion = sign_assertion(attacker, _claims(clock, jwt_client), jwk=attacker.as_dict(private=False))
    # RFC 8725 §3.10 / SECURITY.md: the assertion cannot bring its own key.
    _assert_invalid_client(client_assertion_request(http, jwt_client.client_id, assertion))


def test_jku_header_is_invalid_client(http, jwt_client, client_key, clock):
    # Even when signed with the registered key: a jku header is refused outright.
    for header in ({"jku": "https://attacker.example/jwks.json"}, {"x5u": "https://attacker.example/c.pem"}):
        assertion = sign_assertion(client_key, _claims(clock, jwt_client), **header)
        # RFC 8725 §3.10: no key URLs from the token itself (SSRF, key substitution).
        _assert_invalid_client(client_assertion_request(http, jwt_client.client_id, assertion))


def test_signature_by_an_unregistered_key_is_invalid_client(http, jwt_client, clock):
    attacker = new_ec_key("rp-key-1")
    # RFC 7523 §3 item 9: verified with the client's registered keys only.
    _assert_invalid_client(client_assertion_request(http, jwt_client.client_id,
                                                    sign_assertion(attacker, _claims(clock, jwt_client))))


def test_iss_different_from_sub_is_invalid_client(http, jwt_client, client_key, clock):
    assertion = sign_assertion(client_key, _claims(clock, jwt_client, iss="someone-else"))
    # RFC 7523 §3 items 1-2 / OIDC Core §9: iss and sub are both the client_id.
    _assert_invalid_client(client_assertion_request(http, jwt_client.client_id, assertion))


def test_unknown_sub_is_invalid_client(http, jwt_client, client_key, clock):
    claims = assertion_claims("no-such-client", clock.timestamp())
    # RFC 7523 §3 item 2
    _assert_invalid_client(client_assertion_request(http, "no-such-client", sign_assertion(client_key, claims)))


def test_assertion_for_a_secret_client_is_invalid_client(http, oauth_client, clock):
    key = new_ec_key()
    claims = assertion_claims(oauth_client.client_id, clock.timestamp())
    # OIDC Registration §2: a client uses only its registered method.
    _assert_invalid_client(client_assertion_request(http, oauth_client.client_id, sign_assertion(key, claims)))


def test_jwt_client_cannot_fall_back_to_a_secret_or_none(http, jwt_client):
    # OIDC Registration §2 token_endpoint_auth_method: no other method for this client.
    resp = http.post("/token", data={"grant_type": "client_credentials"}, auth=(jwt_client.client_id, "guess"))
    _assert_invalid_client(resp)
    assert resp.status_code == 401 and "WWW-Authenticate" in resp.headers
    _assert_invalid_client(http.post("/token", data={"grant_type": "client_credentials",
                                                     "client_id": jwt_client.client_id}))


def test_wrong_assertion_type_is_refused(http, jwt_client, client_key, clock):
    assertion = sign_assertion(client_key, _claims(clock, jwt_client))
    resp = http.post("/token", data={"grant_type": "client_credentials", "client_id": jwt_client.client_id,
                                     "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
                                     "client_assertion": assertion})
    # RFC 7523 §2.2: only the jwt-bearer assertion type.
    _assert_invalid_client(resp)


def test_discovery_lists_asymmetric_assertion_algorithms_only(http):
    meta = http.get("/.well-known/openid-configuration").get_json()
    # OIDC Discovery §3 token_endpoint_auth_signing_alg_values_supported: no none, no HS*.
    algs = meta["token_endpoint_auth_signing_alg_values_supported"]
    assert "none" not in algs and not any(a.startswith("HS") for a in algs)
    assert "private_key_jwt" in meta["token_endpoint_auth_methods_supported"]
