"""Console area "Clients" (issue 6): register with redirect URIs, scopes and a claim policy
(purpose and legal basis, PIPL Art. 13/17), the secret shown once, edit, rotate, disable,
delete, consent/disclosure counts; each change audited; CSRF and 303 after POST."""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient

from admin.console.login import CONSOLE_CLIENT_ID
from common.db import db
from common.models import AuditEvent
from idp.models import Client

from ._console import console_login, csrf_of, make_admin
from ._support import document_server


def _client_form(csrf: str, **over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "csrf_token": csrf,
        "name": "社保服务平台",
        "redirect_uris": "https://shebao.example.gov.cn/callback\r\nhttps://shebao.example.gov.cn/cb2",
        "post_logout_redirect_uris": "https://shebao.example.gov.cn/bye",
        "grant_types": ["authorization_code", "refresh_token"],
        "scopes": ["openid", "profile", "realname"],
        "token_endpoint_auth_method": "client_secret_basic",
        "subject_type": "pairwise",
        "claim.name": "on", "claim.name.purpose": "办理社保业务时核对参保人", "claim.name.basis": "statutory",
        "claim.age_over_18": "on", "claim.age_over_18.purpose": "确认已成年", "claim.age_over_18.basis": "consent",
    }
    data.update(over)
    return data


def _secret_on(page: Any) -> str | None:
    m = re.search(r'id="client-secret">([^<]+)<', page.get_data(as_text=True))
    return m.group(1) if m else None


def _create(http: FlaskClient) -> tuple[str, Any]:
    resp = http.post("/admin/clients/new", data=_client_form(csrf_of(http, "/admin/clients/new")))
    assert resp.status_code == 303, resp.get_data(as_text=True)[:500]
    client_id = re.search(r"/admin/clients/([A-Za-z0-9]+)", resp.headers["Location"]).group(1)  # type: ignore[union-attr]
    return client_id, resp


def _actions(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(db.select(AuditEvent).where(AuditEvent.action == action)))


def test_register_a_client_with_claim_policy_and_see_the_secret_once(http, services, clock):
    admin = make_admin(services, clock, "ops", ["client-admin"])
    console_login(http, admin, clock)
    client_id, resp = _create(http)
    page = http.get(resp.headers["Location"])
    secret = _secret_on(page)
    assert secret and len(secret) >= 40
    row = services.clients.get(client_id)
    assert services.p.hasher.verify("client-secret", secret, row.secret_hash)
    assert row.redirect_uris == ["https://shebao.example.gov.cn/callback", "https://shebao.example.gov.cn/cb2"]
    assert row.claim_policy == {"name": {"purpose": "办理社保业务时核对参保人", "basis": "statutory"},
                                "age_over_18": {"purpose": "确认已成年", "basis": "consent"}}
    html = page.get_data(as_text=True)
    assert 'data-claim="name"' in html and "办理社保业务时核对参保人" in html
    assert 'id="consents-active">0<' in html and 'id="disclosures-total">0' in html
    # Shown once: a reload (same URL) no longer has it.
    assert _secret_on(http.get(resp.headers["Location"])) is None
    [event] = _actions("admin.clients.create")
    assert event.actor == f"account:{admin.account_id}" and event.target == f"client:{client_id}"
    assert secret not in str(event.details)


def test_list_and_search(http, services, clock):
    admin = make_admin(services, clock, "ops", ["client-admin"])
    console_login(http, admin, clock)
    client_id, _ = _create(http)
    html = http.get("/admin/clients", query_string={"q": "社保"}).get_data(as_text=True)
    assert f'data-client-id="{client_id}"' in html
    html = http.get("/admin/clients", query_string={"q": "nothing-like-this"}).get_data(as_text=True)
    assert 'id="no-clients"' in html


def test_invalid_registration_is_a_form_error_and_nothing_is_created(http, services, clock):
    admin = make_admin(services, clock, "ops", ["client-admin"])
    console_login(http, admin, clock)
    before = db.session.scalar(db.select(db.func.count()).select_from(Client))
    resp = http.post("/admin/clients/new", data=_client_form(csrf_of(http, "/admin/clients/new"),
                                                             redirect_uris="https://x.example/cb#frag"))
    assert resp.status_code == 400
    assert 'id="form-error"' in resp.get_data(as_text=True) and "fragment" in resp.get_data(as_text=True)
    # A claim without a purpose (PIPL Art. 17: the purpose is told to the citizen).
    resp = http.post("/admin/clients/new", data=_client_form(csrf_of(http, "/admin/clients/new"),
                                                             **{"claim.name.purpose": ""}))
    assert resp.status_code == 400 and "purpose" in resp.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count()).select_from(Client)) == before


def test_a_sector_document_is_fetched_and_checked_from_the_console(http, services, clock):
    # Issue 17 (OIDC Core §8.1): the console registers through the same rule as the API.
    admin = make_admin(services, clock, "ops", ["client-admin"])
    console_login(http, admin, clock)
    before = db.session.scalar(db.select(db.func.count()).select_from(Client))
    with document_server() as docs:
        url = docs.serve_json("/sector.json", ["https://shebao.example.gov.cn/callback"])
        form = _client_form(csrf_of(http, "/admin/clients/new"), sector_identifier_uri=url)
        resp = http.post("/admin/clients/new", data=form)
        assert resp.status_code == 400
        html = resp.get_data(as_text=True)
        assert 'id="form-error"' in html and "does not list every redirect URI" in html
        assert db.session.scalar(db.select(db.func.count()).select_from(Client)) == before
        docs.serve_json("/sector.json", ["https://shebao.example.gov.cn/callback", "https://shebao.example.gov.cn/cb2"])
        form = _client_form(csrf_of(http, "/admin/clients/new"), sector_identifier_uri=url)
        resp = http.post("/admin/clients/new", data=form)
        assert resp.status_code == 303, resp.get_data(as_text=True)[:500]
        assert docs.hits["/sector.json"] == 2
    client_id = re.search(r"/admin/clients/([A-Za-z0-9]+)", resp.headers["Location"]).group(1)  # type: ignore[union-attr]
    assert services.clients.get(client_id).sector_identifier == "127.0.0.1"


def test_edit_rotate_disable_enable_delete(http, services, clock):
    admin = make_admin(services, clock, "ops", ["superadmin"])
    console_login(http, admin, clock)
    client_id, resp = _create(http)
    first = _secret_on(http.get(resp.headers["Location"]))
    edit_page = http.get(f"/admin/clients/{client_id}/edit").get_data(as_text=True)
    assert "https://shebao.example.gov.cn/cb2" in edit_page and 'value="statutory" selected' in edit_page
    resp = http.post(f"/admin/clients/{client_id}/edit", data=_client_form(
        csrf_of(http), name="社保服务平台（新）", redirect_uris="https://shebao.example.gov.cn/callback",
        scopes=["openid", "profile"], **{"claim.age_over_18": ""}))
    assert resp.status_code == 303 and "done=saved" in resp.headers["Location"]
    db.session.expire_all()
    row = services.clients.get(client_id)
    assert row.name == "社保服务平台（新）" and row.redirect_uris == ["https://shebao.example.gov.cn/callback"]
    assert set(row.claim_policy) == {"name"} and row.scopes == ["openid", "profile"]

    resp = http.post(f"/admin/clients/{client_id}/rotate", data={"csrf_token": csrf_of(http)})
    assert resp.status_code == 303
    second = _secret_on(http.get(resp.headers["Location"]))
    assert second and second != first
    db.session.expire_all()
    assert services.p.hasher.verify("client-secret", second, services.clients.get(client_id).secret_hash)

    resp = http.post(f"/admin/clients/{client_id}/enabled", data={"csrf_token": csrf_of(http), "enabled": "no"})
    assert resp.status_code == 303
    db.session.expire_all()
    assert services.clients.snapshot(client_id) is None  # unknown to the protocol engine now
    http.post(f"/admin/clients/{client_id}/enabled", data={"csrf_token": csrf_of(http), "enabled": "yes"})
    db.session.expire_all()
    assert services.clients.snapshot(client_id) is not None

    unconfirmed = http.post(f"/admin/clients/{client_id}/delete", data={"csrf_token": csrf_of(http)})
    assert unconfirmed.status_code == 303 and services.clients.find(client_id) is not None
    resp = http.post(f"/admin/clients/{client_id}/delete", data={"csrf_token": csrf_of(http), "confirm": "yes"})
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/admin/clients?done=deleted")
    db.session.expire_all()
    assert services.clients.find(client_id) is None
    for action in ("update", "rotate_secret", "disable", "enable", "delete"):
        assert len(_actions(f"admin.clients.{action}")) == 1, action


def test_post_without_csrf_token_changes_nothing(http, services, clock):
    admin = make_admin(services, clock, "ops", ["client-admin"])
    console_login(http, admin, clock)
    client_id, _ = _create(http)
    resp = http.post(f"/admin/clients/{client_id}/enabled", data={"enabled": "no"})
    assert resp.status_code == 400 and 'id="csrf-expired"' in resp.get_data(as_text=True)
    resp = http.post("/admin/clients/new", data=_client_form("not-the-token"))
    assert resp.status_code == 400
    db.session.expire_all()
    assert services.clients.get(client_id).enabled
    assert len(_actions("admin.clients.create")) == 1


def test_console_client_cannot_be_changed(http, services, clock):
    admin = make_admin(services, clock, "ops", ["superadmin"])
    console_login(http, admin, clock)
    page = http.get(f"/admin/clients/{CONSOLE_CLIENT_ID}").get_data(as_text=True)
    assert 'id="system-client"' in page and 'id="client-actions"' not in page
    for path, data in (("rotate", {}), ("enabled", {"enabled": "no"}), ("delete", {"confirm": "yes"})):
        resp = http.post(f"/admin/clients/{CONSOLE_CLIENT_ID}/{path}", data={"csrf_token": csrf_of(http), **data})
        assert resp.status_code == 409, path
    db.session.expire_all()
    assert services.clients.get(CONSOLE_CLIENT_ID).enabled


def test_unknown_client_is_a_404_page(http, services, clock):
    admin = make_admin(services, clock, "ops", ["auditor"])
    console_login(http, admin, clock)
    resp = http.get("/admin/clients/doesnotexist")
    assert resp.status_code == 404 and resp.mimetype == "text/html"
