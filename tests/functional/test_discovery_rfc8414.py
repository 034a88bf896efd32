"""Provider metadata (OIDC Discovery 1.0 §3/§4, RFC 8414 §2/§3) and the JWK set
(RFC 7517) through HTTP: exact issuer, endpoints derived from it, the strict profile
advertised and nothing it refuses, public keys only."""

from __future__ import annotations

import pytest
from joserfc.jwk import KeySet

from ._support import ISSUER

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k", "oth"}


@pytest.fixture
def metadata(http):
    resp = http.get("/.well-known/openid-configuration")
    assert resp.status_code == 200
    assert resp.mimetype == "application/json"
    return resp.get_json()


def test_issuer_is_exact(metadata):
    # OIDC Discovery §4.3: the issuer MUST be identical to the URL the document was fetched under.
    assert metadata["issuer"] == ISSUER


def test_oauth_metadata_document_matches(http, metadata):
    # RFC 8414 §3: /.well-known/oauth-authorization-server, same issuer (§3.3).
    resp = http.get("/.well-known/oauth-authorization-server")
    assert resp.status_code == 200
    assert resp.get_json()["issuer"] == ISSUER
    assert resp.get_json() == metadata


@pytest.mark.parametrize("member,path", [
    ("authorization_endpoint", "/authorize"),
    ("token_endpoint", "/token"),
    ("userinfo_endpoint", "/userinfo"),
    ("jwks_uri", "/jwks.json"),
    ("introspection_endpoint", "/introspect"),
    ("revocation_endpoint", "/revoke"),
    ("end_session_endpoint", "/logout"),
])
def test_endpoints_derive_from_issuer_and_are_served(http, metadata, member, path):
    # OIDC Discovery §3 / RFC 8414 §2: absolute URLs under the issuer.
    assert metadata[member] == ISSUER + path
    # Every advertised endpoint is actually routed (405 is fine for POST-only endpoints).
    assert http.get(path).status_code != 404


def test_profile_is_code_only(metadata):
    # RFC 9700 §2.1.2: no implicit or hybrid responses; OAuth 2.1 drops them.
    assert metadata["response_types_supported"] == ["code"]
    # RFC 9700 §2.4: no resource owner password grant; no implicit grant.
    assert set(metadata["grant_types_supported"]) <= {"authorization_code", "refresh_token", "client_credentials"}
    assert "implicit" not in metadata["grant_types_supported"]
    assert "password" not in metadata["grant_types_supported"]
    for rt in metadata["response_types_supported"]:
        assert "token" not in rt.split()
    assert "fragment" not in metadata.get("response_modes_supported", [])


def test_pkce_s256_only(metadata):
    # RFC 8414 §2 code_challenge_methods_supported; RFC 9700 §2.1.1: S256, never plain.
    assert metadata["code_challenge_methods_supported"] == ["S256"]


def test_iss_in_authorization_response_is_advertised(metadata):
    # RFC 9207 §3.
    assert metadata["authorization_response_iss_parameter_supported"] is True


def test_signing_algorithms(metadata):
    # OIDC Core §15.1 requires RS256; never "none" (OIDC Discovery §3).
    algs = metadata["id_token_signing_alg_values_supported"]
    assert "RS256" in algs and "ES256" in algs
    assert "none" not in algs
    assert "none" not in metadata["token_endpoint_auth_signing_alg_values_supported"]


def test_required_members_present(metadata):
    # OIDC Discovery §3 REQUIRED members.
    for member in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri", "response_types_supported",
                   "subject_types_supported", "id_token_signing_alg_values_supported"):
        assert member in metadata, member
    assert "pairwise" in metadata["subject_types_supported"]


def test_logout_features_advertised(metadata):
    # OIDC Back-Channel Logout 1.0 §2.1, Front-Channel Logout 1.0 §3.
    assert metadata["backchannel_logout_supported"] is True
    assert metadata["backchannel_logout_session_supported"] is True
    assert metadata["frontchannel_logout_supported"] is True


def test_jwks_has_public_keys_only(http, metadata):
    resp = http.get("/jwks.json")
    assert resp.status_code == 200
    keys = resp.get_json()["keys"]
    assert keys
    for jwk in keys:
        # RFC 7517 §4.5: kid set so verifiers can select the key; no private material.
        assert jwk.get("kid")
        assert not PRIVATE_MEMBERS & set(jwk), jwk["kid"]
        assert jwk.get("use", "sig") == "sig"
    kids = [k["kid"] for k in keys]
    assert len(kids) == len(set(kids))
    algs = {k.get("alg") for k in keys}
    assert {"ES256", "RS256"} <= algs
    # The document parses as a key set.
    KeySet.import_key_set(resp.get_json())


def test_jwks_holds_active_and_next_keys(http, services):
    published = {k["kid"] for k in http.get("/jwks.json").get_json()["keys"]}
    rows = services.keys.all()
    live = {r.kid for r in rows if r.state in ("active", "next")}
    # OIDC Core §10.1.1: the next key is published before it signs anything.
    assert live <= published
    assert len(live) == 4  # active + next, for ES256 and RS256
