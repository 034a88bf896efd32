"""Console authorization (issue 6 "Access"): every console view declares a permission,
the server checks it for GET and POST alike (never only by hiding a button), the
navigation shows only what the roles allow; role × route matrix; keys area."""

from __future__ import annotations

import re

import pytest

from admin.console.web import declared_permission, is_public
from admin.roles import GRANTS, Permission, Role
from common.db import db
from common.models import AuditEvent
from idp.models import SigningKey

from ._console import console_login, csrf_of, make_admin

# Every console route with the permission it must need: (method, path, permission).
ROUTES: list[tuple[str, str, Permission | None]] = [
    ("GET", "/admin/", None),
    ("GET", "/admin/clients", Permission.CLIENTS_READ),
    ("GET", "/admin/clients/new", Permission.CLIENTS_WRITE),
    ("POST", "/admin/clients/new", Permission.CLIENTS_WRITE),
    ("GET", "/admin/clients/{client}", Permission.CLIENTS_READ),
    ("GET", "/admin/clients/{client}/edit", Permission.CLIENTS_WRITE),
    ("POST", "/admin/clients/{client}/edit", Permission.CLIENTS_WRITE),
    ("POST", "/admin/clients/{client}/rotate", Permission.CLIENTS_WRITE),
    ("POST", "/admin/clients/{client}/enabled", Permission.CLIENTS_WRITE),
    ("POST", "/admin/clients/{client}/delete", Permission.CLIENTS_WRITE),
    ("GET", "/admin/keys", Permission.KEYS_READ),
    ("POST", "/admin/keys/rotate", Permission.KEYS_WRITE),
    ("POST", "/admin/keys/{kid}/retire", Permission.KEYS_WRITE),
    ("GET", "/admin/audit", Permission.AUDIT_READ),
    ("GET", "/admin/audit/export", Permission.AUDIT_READ),
    ("GET", "/admin/audit/chain", Permission.AUDIT_READ),
    ("POST", "/admin/audit/verify", Permission.AUDIT_READ),
    ("GET", "/admin/alerts", Permission.AUDIT_READ),
    # {id}: a database id that does not exist (allowed roles get 404, the others 403).
    ("GET", "/admin/cas", Permission.CAS_READ),
    ("GET", "/admin/cas/new", Permission.CAS_WRITE),
    ("POST", "/admin/cas/new", Permission.CAS_WRITE),
    ("GET", "/admin/cas/preview", Permission.CAS_READ),
    ("POST", "/admin/cas/preview", Permission.CAS_READ),
    ("GET", "/admin/cas/{id}", Permission.CAS_READ),
    ("GET", "/admin/cas/{id}/edit", Permission.CAS_WRITE),
    ("POST", "/admin/cas/{id}/edit", Permission.CAS_WRITE),
    ("POST", "/admin/cas/{id}/enabled", Permission.CAS_WRITE),
    ("POST", "/admin/cas/{id}/crl", Permission.CAS_WRITE),
    ("GET", "/admin/legal-persons", Permission.LEGAL_READ),
    ("GET", "/admin/legal-persons/{id}", Permission.LEGAL_READ),
    ("POST", "/admin/legal-persons/{id}/credentials/{id}/unbind", Permission.LEGAL_WRITE),
    ("POST", "/admin/legal-persons/{id}/credentials/{id}/reinstate", Permission.LEGAL_WRITE),
    ("POST", "/admin/legal-persons/{id}/mandates/{id}/revoke", Permission.LEGAL_WRITE),
    ("GET", "/admin/accounts", Permission.ACCOUNTS_READ),
    ("POST", "/admin/accounts", Permission.ACCOUNTS_READ),
    ("GET", "/admin/accounts/{id}", Permission.ACCOUNTS_READ),
    ("POST", "/admin/accounts/{id}/lock", Permission.ACCOUNTS_WRITE),
    ("POST", "/admin/accounts/{id}/unlock", Permission.ACCOUNTS_WRITE),
    ("POST", "/admin/accounts/{id}/reset-mfa", Permission.ACCOUNTS_WRITE),
    ("GET", "/admin/accounts/{id}/reveal", Permission.ACCOUNTS_REVEAL),
    ("POST", "/admin/accounts/{id}/reveal", Permission.ACCOUNTS_REVEAL),
    ("GET", "/admin/accounts/reidentify", Permission.ACCOUNTS_REVEAL),
    ("POST", "/admin/accounts/reidentify", Permission.ACCOUNTS_REVEAL),
    ("GET", "/admin/accounts/{id}/sessions", Permission.SESSIONS_READ),
    ("POST", "/admin/accounts/{id}/sessions/{kid}/end", Permission.SESSIONS_WRITE),
    ("POST", "/admin/accounts/{id}/sessions/end-all", Permission.SESSIONS_WRITE),
]


def test_every_console_view_declares_a_permission_or_is_a_login_step(app):
    undeclared = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("console.") or rule.endpoint == "console.static":
            continue
        view = app.view_functions[rule.endpoint]
        if not is_public(view) and declared_permission(view) is None:
            undeclared.append(rule.endpoint)
    assert undeclared == []
    public = sorted(r.endpoint for r in app.url_map.iter_rules()
                    if r.endpoint.startswith("console.") and is_public(app.view_functions[r.endpoint]))
    assert public == ["console.callback", "console.logged_out", "console.login"]


def test_matrix_covers_every_console_route(app):
    declared = {(m, re.sub(r"<[^>]+>", "x", r.rule)) for r in app.url_map.iter_rules()
                if r.endpoint.startswith("console.") and r.endpoint != "console.static"
                and not is_public(app.view_functions[r.endpoint]) for m in r.methods - {"HEAD", "OPTIONS"}}
    covered = {(m, re.sub(r"\{[^}]+\}", "x", p)) for m, p, _ in ROUTES} | {("GET", "/admin/logout"),
                                                                           ("POST", "/admin/logout")}
    assert declared - covered == set()


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_role_by_route_matrix(http, services, clock, oauth_client, role):
    """Each role is refused (403, audited) exactly the routes its grants do not cover; a
    refused POST (with a valid CSRF token: a forged request from the admin's own session)
    changes nothing."""
    admin = make_admin(services, clock, f"admin-{role}", [role])
    console_login(http, admin, clock)
    allowed = GRANTS[Role(role)]
    kid = db.session.scalar(db.select(SigningKey.kid).where(SigningKey.state == "next"))
    csrf = csrf_of(http)
    for method, template, needed in ROUTES:
        path = template.format(client=oauth_client.client_id, kid=kid, id=0)
        if method == "GET":
            resp = http.get(path)
        else:
            resp = http.post(path, data={"csrf_token": csrf})
        refused = needed is not None and needed not in allowed
        if refused:
            assert resp.status_code == 403, (role, method, path, resp.status_code)
            assert 'id="forbidden"' in resp.get_data(as_text=True)
        else:
            assert resp.status_code != 403, (role, method, path)
    denied = list(db.session.scalars(db.select(AuditEvent).where(AuditEvent.action == "admin.denied",
                                                                 AuditEvent.actor == f"account:{admin.account_id}")))
    assert len(denied) == sum(1 for _, _, n in ROUTES if n is not None and n not in allowed)
    if Permission.CLIENTS_WRITE not in allowed:
        db.session.expire_all()
        assert services.clients.get(oauth_client.client_id).enabled


@pytest.mark.parametrize("role,areas", [
    ("superadmin", {"clients", "keys"}),
    ("client-admin", {"clients"}),
    ("auditor", {"clients", "keys"}),
    ("ca-admin", set()),
    ("user-admin", set()),
])
def test_navigation_shows_only_allowed_areas(http, services, clock, role, areas):
    admin = make_admin(services, clock, "nav-admin", [role])
    console_login(http, admin, clock)
    html = http.get("/admin/").get_data(as_text=True)
    shown = set(re.findall(r'id="nav-(\w+)"', html)) - {"home"}
    assert shown & {"clients", "keys"} == areas
    assert ('id="read-only"' in html) == (role == "auditor")


def test_auditor_sees_no_change_buttons(http, services, clock, oauth_client):
    admin = make_admin(services, clock, "watcher", ["auditor"])
    console_login(http, admin, clock)
    clients = http.get("/admin/clients").get_data(as_text=True)
    assert oauth_client.client_id in clients and 'id="client-new"' not in clients
    detail = http.get(f"/admin/clients/{oauth_client.client_id}").get_data(as_text=True)
    assert 'id="client-actions"' not in detail
    keys = http.get("/admin/keys").get_data(as_text=True)
    assert 'data-state="active"' in keys and 'id="rotate-ES256"' not in keys and "retire" not in keys.lower()


def test_keys_rotate_and_retire(http, services, clock):
    admin = make_admin(services, clock, "keys", ["superadmin"])
    console_login(http, admin, clock)
    active = db.session.scalar(db.select(SigningKey.kid).where(SigningKey.alg == "ES256", SigningKey.state == "active"))
    nxt = db.session.scalar(db.select(SigningKey.kid).where(SigningKey.alg == "ES256", SigningKey.state == "next"))
    resp = http.post("/admin/keys/rotate", data={"csrf_token": csrf_of(http), "alg": "ES256"})
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/admin/keys?done=rotated")
    html = http.get("/admin/keys").get_data(as_text=True)
    assert f'data-kid="{nxt}" data-state="active"' in html and f'data-kid="{active}" data-state="retired"' in html
    # Retired but still published (overlap); unpublish it now.
    assert re.search(rf'data-kid="{active}".*?class="published">([^<]+)<', html, re.S).group(1) in ("是", "yes")  # type: ignore[union-attr]
    resp = http.post(f"/admin/keys/{active}/retire", data={"csrf_token": csrf_of(http), "unpublish": "yes"})
    assert resp.status_code == 303
    jwks = {k["kid"] for k in http.get("/jwks.json").get_json()["keys"]}
    assert active not in jwks and nxt in jwks
    again = http.post(f"/admin/keys/{active}/retire", data={"csrf_token": csrf_of(http), "unpublish": "yes"})
    assert again.status_code == 409 and 'id="error"' in again.get_data(as_text=True)
    actions = [e.action for e in db.session.scalars(db.select(AuditEvent).where(AuditEvent.action.like("admin.keys.%")))]
    assert actions.count("admin.keys.rotate") == 1 and actions.count("admin.keys.retire") == 1
