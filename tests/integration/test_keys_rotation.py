"""Signing keys on real PostgreSQL (idp/keys.py; OIDC Core §10.1.1 rotation, RFC 7517):
next → active → retired with overlap, JWKS publication, encryption at rest."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import text

from common.db import db
from tests.helpers import Browser, verify_jwt


def _states(services, alg):
    return {r.kid: r.state for r in services.keys.all() if r.alg == alg}


def _jwks_kids(http, services):
    # The JWKS is cached per process (KeyCache.TTL, monotonic time); the CLI invalidates
    # it after a rotation, and so do these tests after moving the clock.
    services.p.key_cache.invalidate()
    return {k["kid"] for k in http.get("/jwks.json").get_json()["keys"]}


def _bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_ensure_creates_active_and_next_per_algorithm(services):
    # The app fixture already ran ensure_keys: one active and one next per algorithm.
    for alg in ("ES256", "RS256"):
        assert sorted(_states(services, alg).values()) == ["active", "next"]
    # Idempotent.
    assert services.keys.ensure_keys() is False
    assert len(services.keys.all()) == 4


def test_rotate_promotes_the_published_next_key(http, services, clock):
    before = {alg: _states(services, alg) for alg in ("ES256", "RS256")}
    published_before = _jwks_kids(http, services)
    next_kids = {alg: next(k for k, s in st.items() if s == "next") for alg, st in before.items()}
    # OIDC Core §10.1.1: the key that will sign was in the JWKS before it signs.
    assert set(next_kids.values()) <= published_before

    promoted = services.keys.rotate()
    db.session.commit()
    assert {r.kid for r in promoted} == set(next_kids.values())
    for alg in ("ES256", "RS256"):
        states = _states(services, alg)
        old_active = next(k for k, s in before[alg].items() if s == "active")
        assert states[next_kids[alg]] == "active"
        assert states[old_active] == "retired"
        assert sorted(states.values()) == ["active", "next", "retired"]
    # New tokens are signed with the promoted key.
    assert {a.kid for a in services.keys.active().values()} == set(next_kids.values())


def test_single_algorithm_rotation(services):
    es_before = _states(services, "ES256")
    services.keys.rotate("ES256")
    db.session.commit()
    assert _states(services, "ES256") != es_before
    assert sorted(_states(services, "RS256").values()) == ["active", "next"]


def test_retired_key_stays_published_until_unpublish_after(http, services, clock):
    old = {a.kid for a in services.keys.active().values()}
    services.keys.rotate()
    db.session.commit()
    retired = [r for r in services.keys.all() if r.kid in old]
    assert all(r.state == "retired" and r.unpublish_after is not None for r in retired)
    # The overlap covers the longest token lifetime (plus cache delay).
    assert all(r.unpublish_after - clock.now() >= timedelta(seconds=300) for r in retired)
    assert old <= _jwks_kids(http, services)

    latest = max(r.unpublish_after for r in retired)
    clock.advance((latest - clock.now()).total_seconds() - 1)
    assert old <= _jwks_kids(http, services)
    clock.advance(2)
    published = _jwks_kids(http, services)
    assert not old & published
    # The live keys are still there.
    assert {r.kid for r in services.keys.all() if r.state in ("active", "next")} <= published


def test_tokens_signed_before_rotation_still_verify(http, services, oauth_client, user):
    tokens = Browser(http).tokens(oauth_client, user)
    header, _ = verify_jwt(http, tokens["id_token"])
    services.keys.rotate()
    db.session.commit()
    services.p.key_cache.invalidate()
    # The retired key is in the JWKS: the RP can still verify the ID token …
    assert verify_jwt(http, tokens["id_token"])[0]["kid"] == header["kid"]
    # … and the access token is still accepted by userinfo and introspection.
    assert http.get("/userinfo", headers=_bearer(tokens["access_token"])).status_code == 200
    body = http.post("/introspect", data={"token": tokens["access_token"]}, auth=oauth_client.auth).get_json()
    assert body["active"] is True
    # New tokens carry the new kid.
    fresh = Browser(http).tokens(oauth_client, None)
    assert verify_jwt(http, fresh["id_token"])[0]["kid"] != header["kid"]


def test_private_keys_are_encrypted_at_rest(services):
    rows = db.session.execute(text("SELECT kid, private_jwk_enc, public_jwk FROM idp_signing_keys")).all()
    assert len(rows) == 4
    for kid, private_enc, public_jwk in rows:
        # Stored as a FieldCipher ciphertext, never as a JWK.
        assert private_enc.startswith("v1.")
        # A JWK's JSON needs quotes and braces, which base64url ciphertext never has (a bare
        # "kty" can occur in random base64 text: that check was flaky).
        assert not set('"{}:') & set(private_enc)
        public = public_jwk if isinstance(public_jwk, dict) else json.loads(public_jwk)
        assert public["kid"] == kid
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(public)
        # And it decrypts, under its column context only, to the private key.
        plain = json.loads(services.p.cipher.decrypt(private_enc, "idp_signing_keys.private_jwk"))
        assert plain["kid"] == kid and "d" in plain


def test_rotate_if_due(services, clock):
    assert services.keys.rotate_if_due(90) == []
    clock.advance(timedelta(days=91).total_seconds())
    promoted = services.keys.rotate_if_due(90)
    assert {r.alg for r in promoted} == {"ES256", "RS256"}
