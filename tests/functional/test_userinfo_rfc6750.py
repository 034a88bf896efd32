"""The userinfo endpoint (OIDC Core §5.3) as an RFC 6750 protected resource: how the
bearer token may be sent, the error challenges, and which claims each scope releases."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import event

from common.db import db
from tests.helpers import Browser, decode_unverified

from ._support import bearer


@pytest.fixture
def tokens(http, oauth_client, user):
    return Browser(http).tokens(oauth_client, user, scope="openid profile")


def _challenge(resp) -> str:
    assert resp.status_code in (400, 401, 403), resp.status_code
    return resp.headers["WWW-Authenticate"]


def test_get_with_authorization_header(http, tokens):
    # OIDC Core §5.3.1 GET; RFC 6750 §2.1 Authorization request header field.
    resp = http.get("/userinfo", headers=bearer(tokens["access_token"]))
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    # OIDC Core §5.3.2: sub always, and the same sub as in the ID token.
    assert resp.get_json()["sub"] == decode_unverified(tokens["id_token"])["sub"]


def test_post_with_authorization_header(http, tokens):
    # OIDC Core §5.3.1: POST is supported too.
    resp = http.post("/userinfo", headers=bearer(tokens["access_token"]))
    assert resp.status_code == 200
    assert resp.get_json()["sub"] == decode_unverified(tokens["id_token"])["sub"]


def test_post_with_form_body(http, tokens):
    # RFC 6750 §2.2 form-encoded body parameter.
    resp = http.post("/userinfo", data={"access_token": tokens["access_token"]})
    assert resp.status_code == 200
    assert resp.get_json()["sub"] == decode_unverified(tokens["id_token"])["sub"]


def test_two_methods_at_once_are_refused(http, tokens):
    # RFC 6750 §2: a client MUST NOT use more than one method per request → §3.1 invalid_request.
    resp = http.post("/userinfo", headers=bearer(tokens["access_token"]),
                     data={"access_token": tokens["access_token"]})
    assert resp.status_code == 400
    assert 'error="invalid_request"' in _challenge(resp)


def test_token_in_query_string_is_refused(http, tokens):
    # RFC 6750 §2.3 / RFC 9700 §4.3.2: URI query tokens leak into logs and Referer; refused.
    resp = http.get("/userinfo", query_string={"access_token": tokens["access_token"]})
    assert resp.status_code == 400
    assert 'error="invalid_request"' in _challenge(resp)
    assert "sub" not in (resp.get_json() or {})


def test_no_token_gets_a_bare_challenge(http):
    # RFC 6750 §3.1: a request without authentication information gets no error code.
    resp = http.get("/userinfo")
    assert resp.status_code == 401
    challenge = _challenge(resp)
    assert challenge == 'Bearer realm="yiwang"'
    assert resp.get_json() == {} and resp.headers["Cache-Control"] == "no-store"


def test_error_body_and_challenge_say_the_same(http):
    # RFC 6750 §3: the challenge's error and error_description are the body's (RFC 6749 §5.2).
    resp = http.get("/userinfo", headers=bearer("garbage"))
    body = resp.get_json()
    description = body["error_description"]
    assert body["error"] == "invalid_token" and description
    assert _challenge(resp) == f'Bearer realm="yiwang", error="invalid_token", error_description="{description}"'
    assert resp.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."])
def test_malformed_token_is_invalid_token(http, token):
    # RFC 6750 §3.1 invalid_token → 401.
    resp = http.get("/userinfo", headers=bearer(token))
    assert resp.status_code == 401
    assert 'error="invalid_token"' in _challenge(resp)


def test_tampered_signature_is_invalid_token(http, tokens):
    head, payload, sig = tokens["access_token"].split(".")
    bad_sig = sig[:-4] + ("AAAA" if not sig.endswith("AAAA") else "BBBB")
    resp = http.get("/userinfo", headers=bearer(f"{head}.{payload}.{bad_sig}"))
    assert resp.status_code == 401
    assert 'error="invalid_token"' in _challenge(resp)


def test_id_token_is_not_an_access_token(http, tokens):
    # RFC 9068 §4: the typ header at+jwt distinguishes access tokens; an ID token is refused.
    resp = http.get("/userinfo", headers=bearer(tokens["id_token"]))
    assert resp.status_code == 401
    assert 'error="invalid_token"' in _challenge(resp)


def test_expired_token_is_invalid_token(http, tokens, clock):
    assert http.get("/userinfo", headers=bearer(tokens["access_token"])).status_code == 200
    clock.advance(301)  # access_token_ttl is 300 s
    resp = http.get("/userinfo", headers=bearer(tokens["access_token"]))
    # RFC 6750 §3.1 invalid_token: expired.
    assert resp.status_code == 401
    assert 'error="invalid_token"' in _challenge(resp)


def test_revoked_token_is_invalid_token(http, tokens, oauth_client):
    assert http.post("/revoke", data={"token": tokens["access_token"]}, auth=oauth_client.auth).status_code == 200
    resp = http.get("/userinfo", headers=bearer(tokens["access_token"]))
    # RFC 6750 §3.1 invalid_token: revoked (RFC 7009 §2.1).
    assert resp.status_code == 401
    assert 'error="invalid_token"' in _challenge(resp)


def test_client_credentials_token_has_insufficient_scope(http, oauth_client):
    token = http.post("/token", data={"grant_type": "client_credentials", "scope": "profile"},
                      auth=oauth_client.auth).get_json()["access_token"]
    resp = http.get("/userinfo", headers=bearer(token))
    # RFC 6750 §3.1 insufficient_scope → 403: no user and no openid scope behind the token.
    assert resp.status_code == 403
    assert 'error="insufficient_scope"' in _challenge(resp)
    # RFC 6750 §3: the scope the resource needs.
    assert _challenge(resp).endswith(', scope="openid"')


def test_profile_scope_releases_profile_claims_only(http, tokens):
    body = http.get("/userinfo", headers=bearer(tokens["access_token"])).get_json()
    # OIDC Core §5.4 profile scope.
    assert body["name"] == "张三"
    assert body["preferred_username"] == "alice"
    assert "phone_number" not in body


def test_phone_scope_releases_phone_number(http, oauth_client, user):
    tokens = Browser(http).tokens(oauth_client, user, scope="openid phone")
    body = http.get("/userinfo", headers=bearer(tokens["access_token"])).get_json()
    # OIDC Core §5.4 phone scope; §5.1 phone_number in E.164.
    assert body["phone_number"] == "+8613800138000"
    assert body["phone_number_verified"] is False
    assert "name" not in body and "preferred_username" not in body


def test_openid_scope_alone_releases_only_sub(http, oauth_client, user):
    tokens = Browser(http).tokens(oauth_client, user, scope="openid")
    body = http.get("/userinfo", headers=bearer(tokens["access_token"])).get_json()
    assert set(body) == {"sub"}


def test_claims_parameter_userinfo_member(http, oauth_client, user):
    # OIDC Core §5.5 claims.userinfo. Policy (DESIGN.md §5): a claim is released only
    # within the scopes the user consented to; the request names it, consent covers it.
    claims = json.dumps({"userinfo": {"phone_number": {"essential": True}, "name": None, "birthdate": None}})
    tokens = Browser(http).tokens(oauth_client, user, scope="openid phone", claims=claims)
    body = http.get("/userinfo", headers=bearer(tokens["access_token"])).get_json()
    assert body["phone_number"] == "+8613800138000"
    # name was requested but the profile scope was not granted; birthdate is unknown.
    assert "name" not in body and "birthdate" not in body
    # The access token carries the names it may release (issue 5), never values.
    names = decode_unverified(tokens["access_token"]).get("clm")
    assert names is not None and "phone_number" in names and "name" not in names
    assert "+8613800138000" not in tokens["access_token"]


def test_locked_account_token_is_refused(http, tokens, services):
    services.accounts.set_status(services.accounts.get_by_username("alice"), "locked")
    db.session.commit()
    resp = http.get("/userinfo", headers=bearer(tokens["access_token"]))
    assert resp.status_code == 401
    assert 'error="invalid_token"' in _challenge(resp)


def test_userinfo_reads_the_database_at_most_once(app, services, http, tokens):
    # DESIGN.md §7 hot-path budget. Issue 12: keys, clients and the account's claim
    # sources come from per-process caches whose versions arrive with the revocation
    # check, so a warm request reads nothing; a commit that changes the account makes the
    # next request read it again, in one SELECT.
    http.get("/userinfo", headers=bearer(tokens["access_token"]))  # caches warm
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    def userinfo():
        statements.clear()
        event.listen(db.engine, "before_cursor_execute", record)
        try:
            return http.get("/userinfo", headers=bearer(tokens["access_token"]))
        finally:
            event.remove(db.engine, "before_cursor_execute", record)

    resp = userinfo()
    assert resp.status_code == 200 and resp.get_json()["name"] == "张三"
    assert [s for s in statements if s.lstrip().upper().startswith("SELECT")] == [], statements

    account = services.accounts.get_by_username("alice")
    account.name_enc = services.p.cipher.encrypt("李四", "idp_accounts.name")
    db.session.commit()
    resp = userinfo()
    assert resp.status_code == 200 and resp.get_json()["name"] == "李四"
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(reads) == 1 and "idp_accounts" in reads[0] and "realname_identities" in reads[0], statements

