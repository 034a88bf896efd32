"""Issue 17, High 1: no administrator takeover through the ``admin`` scope.

Reproduced by the review: a client-admin registered a public client with scopes
``openid admin``; a superadmin's live SSO session then got a code for it at once (no
consent page, the scope carries no claims), and the token — with a 30-day refresh token —
was answered by ``/admin/api/v1/me`` as superadmin. A client-admin could also PATCH the
console's own client. Each test below failed before the fix."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from common.db import db
from common.models import AuditEvent
from idp.models import Client
from tests.functional._admin_api import (
    API,
    admin_headers,
    bearer,
    issued_token,
    make_admin,
    make_admin_client,
    token_via_login,
)
from tests.helpers import Browser, RegisteredTestClient, pkce_pair, query_of


@pytest.fixture
def as_admin(services, clock):
    return admin_headers(services, clock)


@pytest.fixture
def tool(services) -> RegisteredTestClient:
    return make_admin_client(services)


def _attacker_client(services) -> RegisteredTestClient:
    """A public client holding the admin scope, as a client-admin could register one before
    the fix (written to the row directly: registration refuses it now)."""
    row, _ = services.clients.create(name="Innocent Portal", redirect_uris=["https://evil.example.test/cb"],
                                     public=True, scopes=["openid"])
    row.scopes = ["openid", "admin"]
    db.session.commit()
    services.p.client_cache.invalidate()
    return RegisteredTestClient(row.client_id, None, "https://evil.example.test/cb")


def _sso_as_superadmin(http, services, clock, oauth_client):
    """A superadmin with a live SSO session (password + TOTP at an ordinary portal)."""
    root = make_admin(services, clock, "root", "superadmin")
    token_via_login(http, clock, oauth_client, root, scope="openid")
    return root


def test_client_admin_cannot_register_a_client_with_the_admin_scope(http, as_admin):
    body = {"name": "Innocent Portal", "redirect_uris": ["https://evil.example.test/cb"], "public": True,
            "scopes": ["openid", "admin"]}
    resp = http.post(f"{API}/clients", json=body, headers=as_admin("client-admin"))
    assert resp.status_code == 403, resp.get_json()
    assert resp.get_json()["code"] == "forbidden"
    resp = http.post(f"{API}/clients", json={**body, "first_party": True}, headers=as_admin("client-admin"))
    assert resp.status_code == 403
    db.session.expire_all()
    assert db.session.scalars(select(Client).where(Client.name == "Innocent Portal")).first() is None


def test_even_a_superadmin_gives_the_admin_scope_only_to_a_first_party_client(http, as_admin):
    body = {"name": "Admin CLI", "redirect_uris": ["http://127.0.0.1:7777/cb"], "public": True,
            "scopes": ["openid", "admin"]}
    resp = http.post(f"{API}/clients", json=body, headers=as_admin("superadmin"))
    assert resp.status_code == 422 and "first-party" in resp.get_json()["detail"]
    resp = http.post(f"{API}/clients", json={**body, "first_party": True}, headers=as_admin("superadmin"))
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["client"]["first_party"] is True


def test_a_superadmin_session_gets_no_admin_token_from_a_non_first_party_client(http, services, clock, oauth_client):
    _sso_as_superadmin(http, services, clock, oauth_client)
    evil = _attacker_client(services)
    verifier, challenge = pkce_pair()
    resp = Browser(http).authorize(evil, scope="openid admin", challenge=challenge)
    assert resp.status_code == 302
    code = query_of(resp.headers["Location"])["code"]
    token = http.post("/token", data={"grant_type": "authorization_code", "code": code, "client_id": evil.client_id,
                                      "redirect_uri": evil.redirect_uri, "code_verifier": verifier}).get_json()
    assert token["scope"].split() == ["openid"]
    me = http.get(f"{API}/me", headers=bearer(token["access_token"]))
    assert me.status_code == 403 and 'error="insufficient_scope"' in me.headers["WWW-Authenticate"]


def test_admin_scope_is_approved_explicitly_in_every_authorization(http, services, clock, oauth_client, tool):
    _sso_as_superadmin(http, services, clock, oauth_client)
    browser = Browser(http)
    _, challenge = pkce_pair()
    resp = browser.authorize(tool, scope="openid admin", challenge=challenge)
    assert resp.status_code == 302 and "/consent" in resp.headers["Location"], resp.headers.get("Location")
    page = browser.follow(resp)
    assert page.status_code == 200 and 'id="consent-admin"' in page.get_data(as_text=True)
    # prompt=none can never approve it silently (OIDC Core §3.1.2.6).
    resp = browser.authorize(tool, scope="openid admin", challenge=challenge, prompt="none")
    assert query_of(resp.headers["Location"])["error"] == "consent_required"


def test_admin_tokens_come_without_refresh_tokens(http, services, clock, tool):
    root = make_admin(services, clock, "root", "superadmin")
    assert services.client(tool.client_id).check_grant_type("refresh_token")
    tokens = token_via_login(http, clock, tool, root)
    assert "admin" in tokens["scope"].split() and "refresh_token" not in tokens
    assert http.get(f"{API}/me", headers=bearer(tokens["access_token"])).status_code == 200
    # Approval is never remembered: the next authorization asks again.
    _, challenge = pkce_pair()
    resp = Browser(http).authorize(tool, scope="openid admin", challenge=challenge)
    assert resp.status_code == 302 and "/consent" in resp.headers["Location"]


def test_an_admin_scoped_request_does_not_reuse_an_old_login(http, services, clock, oauth_client, tool):
    _sso_as_superadmin(http, services, clock, oauth_client)
    clock.advance(services.p.settings.admin_max_auth_age + 1)
    _, challenge = pkce_pair()
    resp = Browser(http).authorize(tool, scope="openid admin", challenge=challenge)
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_admin_api_refuses_a_token_of_a_client_that_is_not_first_party(http, services, clock, oauth_client):
    root = make_admin(services, clock, "root", "superadmin")
    token = issued_token(services, clock, oauth_client.client_id, root.account_id)
    resp = http.get(f"{API}/me", headers=bearer(token))
    assert resp.status_code == 401 and 'error="invalid_token"' in resp.headers["WWW-Authenticate"]


def test_admin_api_wants_a_recent_login(http, services, clock, tool):
    root = make_admin(services, clock, "root", "superadmin")
    token = issued_token(services, clock, tool.client_id, root.account_id)
    clock.advance(services.p.settings.access_token_ttl - 1)
    assert http.get(f"{API}/me", headers=bearer(token)).status_code == 200
    # A token issued now from a login older than the limit (an old SSO session).
    account = services.accounts.get(root.account_id)
    client = services.client(tool.client_id)
    old, _, _ = services.tokens.issue_access_token(
        client_id=tool.client_id, sub=services.subject(account.subject_seed, client), scope="openid admin",
        account_id=root.account_id, grant_id=None,
        auth_time=clock.timestamp() - services.p.settings.admin_max_auth_age - 1, acr="cn-l0", amr=["pwd", "otp"])
    resp = http.get(f"{API}/me", headers=bearer(old))
    assert resp.status_code == 401
    challenge = resp.headers["WWW-Authenticate"]
    assert 'error="insufficient_user_authentication"' in challenge
    assert f'max_age="{services.p.settings.admin_max_auth_age}"' in challenge


def test_client_credentials_never_carry_the_admin_scope(http, services, tool):
    row = services.clients.get(tool.client_id)
    row.grant_types = ["authorization_code", "client_credentials"]
    db.session.commit()
    services.p.client_cache.invalidate()
    resp = http.post("/token", data={"grant_type": "client_credentials", "scope": "admin"}, auth=tool.auth)
    assert resp.status_code == 200 and "admin" not in resp.get_json().get("scope", "").split()


def test_the_console_client_is_changed_by_nobody(http, services, as_admin):
    http.get("/admin/login")  # registers the console client (ensure_client)
    assert services.clients.find("yiwang-console") is not None
    for roles in (("client-admin",), ("superadmin",)):
        resp = http.patch(f"{API}/clients/yiwang-console", json={"redirect_uris": ["https://evil.example.test/cb"]},
                          headers=as_admin(*roles))
        assert resp.status_code == 409 and resp.get_json()["code"] == "system_client", resp.get_json()
        for path in ("/secret", "/disable"):
            assert http.post(f"{API}/clients/yiwang-console{path}", headers=as_admin(*roles)).status_code == 409
        assert http.delete(f"{API}/clients/yiwang-console", headers=as_admin(*roles)).status_code == 409
    db.session.expire_all()
    assert services.clients.get("yiwang-console").redirect_uris == ["http://127.0.0.1:5000/admin/callback"]


def test_a_first_party_client_is_changed_by_superadmins_only(http, services, as_admin, tool):
    change = {"redirect_uris": ["https://evil.example.test/cb"]}
    resp = http.patch(f"{API}/clients/{tool.client_id}", json=change, headers=as_admin("client-admin"))
    assert resp.status_code == 403
    assert http.delete(f"{API}/clients/{tool.client_id}", headers=as_admin("client-admin")).status_code == 403
    assert http.post(f"{API}/clients/{tool.client_id}/secret", headers=as_admin("client-admin")).status_code == 403
    # Nor can a client-admin make an ordinary client first-party or give it the admin scope.
    ordinary = http.post(f"{API}/clients", json={"name": "Portal", "redirect_uris": ["https://p.example.test/cb"]},
                         headers=as_admin("client-admin")).get_json()["client"]["client_id"]
    for patch in ({"first_party": True}, {"scopes": ["openid", "admin"]}):
        assert http.patch(f"{API}/clients/{ordinary}", json=patch, headers=as_admin("client-admin")).status_code == 403
    db.session.expire_all()
    denied = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "admin.clients.update",
                                                         AuditEvent.outcome == "denied")).all()
    assert len(denied) >= 3
    ok = http.patch(f"{API}/clients/{tool.client_id}", json={"name": "Admin Tool 2"}, headers=as_admin("superadmin"))
    assert ok.status_code == 200 and ok.get_json()["client"]["name"] == "Admin Tool 2"
