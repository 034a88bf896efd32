"""Admin API authentication (RFC 6750 bearer tokens, RFC 9470 step-up challenge, RFC
9457 problems): an administrator's token from the real login with TOTP works; tokens
without the admin scope, without a second factor, of non-administrators, revoked or
forged do not."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from common.db import db
from common.models import AuditEvent
from tests.functional._admin_api import API, bearer, issued_token, make_admin, make_admin_client, token_via_login


@pytest.fixture
def admin_client(services):
    return make_admin_client(services)


def test_token_from_the_real_login_with_totp_reads_me(http, services, clock, admin_client):
    root = make_admin(services, clock, "root", "superadmin", "auditor")
    tokens = token_via_login(http, clock, admin_client, root)
    resp = http.get(f"{API}/me", headers=bearer(tokens["access_token"]))
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["account_id"] == root.account_id and body["roles"] == ["auditor", "superadmin"]
    assert "clients.write" in body["permissions"] and "admins.write" in body["permissions"]
    assert resp.headers["Cache-Control"] == "no-store"


def test_discovery_advertises_the_admin_scope(http):
    assert "admin" in http.get("/.well-known/openid-configuration").get_json()["scopes_supported"]


def test_missing_token_gets_a_bare_challenge(http):
    resp = http.get(f"{API}/me")
    assert resp.status_code == 401
    # RFC 6750 §3.1: no error code when the request had no authentication.
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="yiwang-admin"'
    assert resp.mimetype == "application/problem+json" and resp.get_json()["status"] == 401


@pytest.mark.parametrize("header", ["Bearer not-a-jwt", "Bearer a.b.c", "Basic dXNlcjpwYXNz"])
def test_invalid_tokens(http, header):
    resp = http.get(f"{API}/me", headers={"Authorization": header})
    assert resp.status_code == 401
    if header.startswith("Bearer"):
        assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]
        assert resp.get_json()["code"] == "invalid_token"


def test_revoked_token_is_refused(http, services, clock, admin_client):
    root = make_admin(services, clock, "root", "superadmin")
    token = issued_token(services, clock, admin_client.client_id, root.account_id)
    assert http.get(f"{API}/me", headers=bearer(token)).status_code == 200
    services.tokens.revoke_access_token(services.tokens.validate_access_token(token))
    resp = http.get(f"{API}/me", headers=bearer(token))
    assert resp.status_code == 401 and 'error="invalid_token"' in resp.headers["WWW-Authenticate"]


def test_expired_token_is_refused(http, services, clock, admin_client):
    root = make_admin(services, clock, "root", "superadmin")
    token = issued_token(services, clock, admin_client.client_id, root.account_id)
    clock.advance(services.p.settings.access_token_ttl + 1)
    assert http.get(f"{API}/me", headers=bearer(token)).status_code == 401


def test_token_without_admin_scope_is_insufficient_scope(http, services, clock, oauth_client):
    root = make_admin(services, clock, "root", "superadmin")
    token = issued_token(services, clock, oauth_client.client_id, root.account_id, scope="openid profile")
    resp = http.get(f"{API}/me", headers=bearer(token))
    assert resp.status_code == 403
    challenge = resp.headers["WWW-Authenticate"]
    assert 'error="insufficient_scope"' in challenge and 'scope="admin"' in challenge


def test_password_only_login_needs_a_second_factor(http, services, clock, admin_client):
    root = make_admin(services, clock, "root", "superadmin")
    token = issued_token(services, clock, admin_client.client_id, root.account_id, amr=("pwd",))
    resp = http.get(f"{API}/me", headers=bearer(token))
    assert resp.status_code == 401
    assert 'error="insufficient_user_authentication"' in resp.headers["WWW-Authenticate"]


def test_hardware_key_counts_as_second_factor(http, services, clock, admin_client):
    root = make_admin(services, clock, "root", "superadmin")
    token = issued_token(services, clock, admin_client.client_id, root.account_id, amr=("hwk",))
    assert http.get(f"{API}/me", headers=bearer(token)).status_code == 200


def test_client_credentials_tokens_are_not_administrators(http, services, admin_client):
    row = services.clients.get(admin_client.client_id)
    row.grant_types = ["authorization_code", "client_credentials"]
    db.session.commit()
    services.p.client_cache.invalidate()
    resp = http.post("/token", data={"grant_type": "client_credentials", "scope": "admin"}, auth=admin_client.auth)
    assert resp.status_code == 200
    # Issue 17: the admin scope is never granted to a machine token at all.
    assert "admin" not in resp.get_json().get("scope", "").split()
    api = http.get(f"{API}/me", headers=bearer(resp.get_json()["access_token"]))
    assert api.status_code == 403 and 'error="insufficient_scope"' in api.headers["WWW-Authenticate"]


def test_account_without_role_is_forbidden_and_the_attempt_audited(http, services, clock, admin_client):
    nobody = make_admin(services, clock, "nobody")
    token = issued_token(services, clock, admin_client.client_id, nobody.account_id)
    resp = http.get(f"{API}/me", headers=bearer(token))
    assert resp.status_code == 403 and resp.mimetype == "application/problem+json"
    assert resp.get_json()["code"] == "forbidden" and "WWW-Authenticate" not in resp.headers
    db.session.expire_all()
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "admin.api.access")).one()
    assert (event.actor, event.outcome) == (f"account:{nobody.account_id}", "denied")


def test_a_revoked_role_stops_working_at_once(http, services, clock, admin_client):
    from admin.actor import Actor
    from admin.service import AdminServices

    admin = make_admin(services, clock, "ops", "auditor")
    token = issued_token(services, clock, admin_client.client_id, admin.account_id)
    assert http.get(f"{API}/clients", headers=bearer(token)).status_code == 200
    AdminServices(services).admins.revoke(Actor.cli(), admin.account_id, "auditor")
    db.session.commit()
    assert http.get(f"{API}/clients", headers=bearer(token)).status_code == 403


def test_locked_account_token_is_refused(http, services, clock, admin_client):
    root = make_admin(services, clock, "root", "superadmin")
    token = issued_token(services, clock, admin_client.client_id, root.account_id)
    services.accounts.set_status(services.accounts.get(root.account_id), "locked")
    db.session.commit()
    assert http.get(f"{API}/me", headers=bearer(token)).status_code == 401


def test_api_ignores_cookies_and_needs_no_csrf_token(http, services, clock, admin_client):
    # A logged-in browser session (SSO cookie) is no credential for the API.
    root = make_admin(services, clock, "root", "superadmin")
    token_via_login(http, clock, admin_client, root)
    assert http.post(f"{API}/keys/rotate", json={}).status_code == 401
