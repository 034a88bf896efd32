"""The console's login as an OIDC relying party of its own provider (issue 6 "Access"):
code flow with PKCE S256, state and nonce (OIDC Core §3.1.2.1, RFC 7636), ID token
validation (OIDC Core §3.1.3.7), an administrator role and a second factor required;
failure paths, replay, CSRF, the console session and logout."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from admin.console.login import CONSOLE_CLIENT_ID
from common.db import db
from common.models import AuditEvent
from tests.helpers import assert_security_headers

from ._console import (
    CONSOLE_COOKIE,
    ISSUER,
    LOGIN_COOKIE,
    console_login,
    csrf_of,
    idp_login,
    local,
    make_admin,
    start_login,
)


def _audit(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(db.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def test_authorization_request_is_a_real_code_flow_with_pkce_state_and_nonce(http):
    resp = start_login(http)
    params = {k: v[0] for k, v in parse_qs(urlsplit(resp.headers["Location"]).query).items()}
    assert params["client_id"] == CONSOLE_CLIENT_ID and params["response_type"] == "code"
    assert params["redirect_uri"] == ISSUER + "/admin/callback" and params["scope"] == "openid"
    assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) == 43
    assert len(params["state"]) >= 32 and len(params["nonce"]) >= 32 and params["prompt"] == "login"
    cookie = http.get_cookie(LOGIN_COOKIE)
    assert cookie is not None and cookie.http_only
    # A second start in the same browser reuses the binding (two tabs both finish).
    again = start_login(http)
    assert http.get_cookie(LOGIN_COOKIE).value == cookie.value
    assert parse_qs(urlsplit(again.headers["Location"]).query)["state"][0] != params["state"]


def test_console_client_is_registered_once_and_repaired(http, services):
    start_login(http)
    row = services.clients.get(CONSOLE_CLIENT_ID)
    assert row.redirect_uris == [ISSUER + "/admin/callback"] and row.token_endpoint_auth_method == "client_secret_basic"
    assert row.secret_hash and row.scopes == ["openid"]
    row.redirect_uris = ["https://evil.example/cb"]
    row.enabled = False
    db.session.commit()
    start_login(http)
    db.session.expire_all()
    row = services.clients.get(CONSOLE_CLIENT_ID)
    assert row.redirect_uris == [ISSUER + "/admin/callback"] and row.enabled
    assert len(_audit("admin.console_client.ensure")) == 2


def test_admin_with_totp_logs_in(http, services, clock):
    admin = make_admin(services, clock, "root", ["superadmin"])
    resp = console_login(http, admin, clock)
    assert resp.status_code == 303 and resp.headers["Location"] == "/admin/"
    cookie = http.get_cookie(CONSOLE_COOKIE)
    assert cookie is not None and cookie.http_only and cookie.same_site == "Strict"
    assert http.get_cookie(LOGIN_COOKIE) is None
    home = http.get("/admin/")
    assert home.status_code == 200
    html = home.get_data(as_text=True)
    assert "root" in html and 'id="nav-clients"' in html and 'id="nav-keys"' in html
    assert_security_headers(home)
    [event] = _audit("admin.login")
    assert event.actor == f"account:{admin.account_id}" and event.outcome == "ok"
    # The code went through the real token endpoint: its own audit/code tombstone exist.
    assert services.clients.get(CONSOLE_CLIENT_ID).enabled


def test_account_without_role_is_refused(http, services, clock):
    nobody = make_admin(services, clock, "citizen", [])
    resp = console_login(http, nobody, clock)
    assert resp.status_code == 403
    assert 'data-reason="no_role"' in resp.get_data(as_text=True)
    assert http.get_cookie(CONSOLE_COOKIE) is None
    assert http.get("/admin/").status_code == 302
    [event] = _audit("admin.login")
    assert event.outcome == "denied" and event.reason == "no_role"


def test_admin_without_second_factor_is_refused(http, services, clock):
    admin = make_admin(services, clock, "weak", ["superadmin"], totp=False)
    resp = console_login(http, admin, clock)
    assert resp.status_code == 403
    html = resp.get_data(as_text=True)
    assert 'data-reason="no_second_factor"' in html and "/account" in html
    assert http.get_cookie(CONSOLE_COOKIE) is None
    [event] = _audit("admin.login")
    assert event.reason == "no_second_factor" and event.actor == f"account:{admin.account_id}"


def test_callback_with_unknown_state_is_refused(http, services, clock):
    admin = make_admin(services, clock, "root", ["superadmin"])
    callback = idp_login(http, admin, clock, start_login(http).headers["Location"])
    forged = callback.replace("state=", "state=x")
    resp = http.get(local(forged))
    assert resp.status_code == 400 and 'data-reason="bad_state"' in resp.get_data(as_text=True)
    assert http.get_cookie(CONSOLE_COOKIE) is None


def test_callback_from_another_browser_is_refused(app, http, services, clock):
    admin = make_admin(services, clock, "root", ["superadmin"])
    callback = idp_login(http, admin, clock, start_login(http).headers["Location"])
    other = app.test_client()  # the attacker's browser, without the binding cookie
    other.get("/admin/login")
    resp = other.get(local(callback))
    assert resp.status_code == 400 and 'data-reason="bad_state"' in resp.get_data(as_text=True)


def test_replayed_callback_is_refused(http, services, clock):
    admin = make_admin(services, clock, "root", ["superadmin"])
    callback = idp_login(http, admin, clock, start_login(http).headers["Location"])
    assert http.get(local(callback)).status_code == 303
    http.delete_cookie(CONSOLE_COOKIE)
    replay = http.get(local(callback))
    assert replay.status_code == 400 and 'data-reason="bad_state"' in replay.get_data(as_text=True)


def test_error_response_from_the_idp_is_shown(http):
    location = start_login(http).headers["Location"]
    state = parse_qs(urlsplit(location).query)["state"][0]
    resp = http.get("/admin/callback", query_string={"error": "access_denied", "state": state, "iss": ISSUER})
    assert resp.status_code == 403 and 'data-reason="access_denied"' in resp.get_data(as_text=True)


def test_callback_without_iss_is_refused(http, services, clock):
    admin = make_admin(services, clock, "root", ["superadmin"])
    callback = idp_login(http, admin, clock, start_login(http).headers["Location"])
    stripped = callback.replace("iss=", "xiss=")
    resp = http.get(local(stripped))
    assert resp.status_code == 400 and 'data-reason="token_exchange_failed"' in resp.get_data(as_text=True)


def test_logout_needs_csrf_and_ends_the_session(http, services, clock):
    admin = make_admin(services, clock, "root", ["superadmin"])
    console_login(http, admin, clock)
    refused = http.post("/admin/logout", data={"csrf_token": "forged"})
    assert refused.status_code == 400 and 'id="csrf-expired"' in refused.get_data(as_text=True)
    assert http.get("/admin/").status_code == 200
    old = http.get_cookie(CONSOLE_COOKIE).value
    resp = http.post("/admin/logout", data={"csrf_token": csrf_of(http)})
    assert resp.status_code == 303 and resp.headers["Location"] == "/admin/logged-out"
    assert http.get_cookie(CONSOLE_COOKIE) is None
    http.set_cookie(CONSOLE_COOKIE, old)
    assert http.get("/admin/").status_code == 302  # the old cookie no longer works


def test_session_ends_after_idle_timeout(http, services, clock):
    admin = make_admin(services, clock, "root", ["superadmin"])
    console_login(http, admin, clock)
    clock.advance(14 * 60)
    assert http.get("/admin/").status_code == 200
    clock.advance(14 * 60)
    assert http.get("/admin/").status_code == 200  # each request restarts the idle timer
    clock.advance(15 * 60)
    resp = http.get("/admin/")
    assert resp.status_code == 302 and resp.headers["Location"] == "/admin/login"


def test_revoked_role_ends_access_at_once(http, services, clock):
    from admin.models import AdminRole

    admin = make_admin(services, clock, "root", ["client-admin"])
    console_login(http, admin, clock)
    assert http.get("/admin/").status_code == 200
    db.session.execute(db.delete(AdminRole).where(AdminRole.account_id == admin.account_id))
    db.session.commit()
    resp = http.get("/admin/")
    assert resp.status_code == 403 and 'data-reason="no_role"' in resp.get_data(as_text=True)
    assert http.get("/admin/").status_code == 302


@pytest.mark.parametrize("lang,text", [("en", "Overview"), ("zh-CN", "概览")])
def test_console_speaks_chinese_and_english(http, services, clock, lang, text):
    admin = make_admin(services, clock, "root", ["auditor"])
    console_login(http, admin, clock)
    html = http.get("/admin/", query_string={"lang": lang}).get_data(as_text=True)
    assert f'lang="{lang}"' in html and text in html
    # The choice is kept in the console session.
    assert f'lang="{lang}"' in http.get("/admin/").get_data(as_text=True)
