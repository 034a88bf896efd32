"""Console areas "Accounts" and "Sessions" (issue 6): search by phone / ID number with
masked numbers only, detail, lock (the citizen's sessions end and the portal receives a
back-channel logout token, OIDC Back-Channel Logout 1.0 §2.5), unlock, second-factor
reset, the reason-bound reveal shown once, sessions ended one by one, re-identification;
auditors see but cannot change; CSRF and 303 after every POST."""

from __future__ import annotations

import re

import pyotp
import pytest
from sqlalchemy import select

from common.db import db
from common.models import AuditEvent
from realname.idnumbers import parse_id_number
from tests.helpers import Browser, decode_unverified

from ._console import console_login, csrf_of, make_admin
from ._support import backchannel_receiver, prompt_none, register_client

ID_NUMBER = "11010519491231002X"
REASON = "街道办来函第 7 号，核对低保申请人身份"


@pytest.fixture
def alice(services, user) -> int:
    account = services.accounts.find_by_identifier(user.username)
    services.realname.bind_identity(account.id, "张三", parse_id_number(ID_NUMBER, today=services.p.clock.now().date()))
    db.session.commit()
    return int(account.id)


def _actions(prefix: str) -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action.like(prefix + "%"))
                                   .order_by(AuditEvent.id)))


def test_find_by_phone_and_id_number_shows_masked_data_only(http, services, clock, alice):
    admin = make_admin(services, clock, "useradmin", ["user-admin"])
    console_login(http, admin, clock)
    home = http.get("/admin/").get_data(as_text=True)
    assert 'id="nav-accounts"' in home
    for q in ("138 0013 8000", ID_NUMBER):
        # POSTed: the number never appears in a URL, and is not echoed into the page.
        page = http.post("/admin/accounts", data={"csrf_token": csrf_of(http, "/admin/accounts"), "q": q})
        html = page.get_data(as_text=True)
        assert page.status_code == 200 and f'data-account-id="{alice}"' in html
        assert "110105********002X" in html and ID_NUMBER not in html and "13800138000" not in html
    detail = http.get(f"/admin/accounts/{alice}").get_data(as_text=True)
    assert 'id="account-name">张*<' in detail and "138****8000" in detail and "张三" not in detail
    assert 'data-level="cn-l1"' in detail and 'id="account-reveal"' in detail and 'id="account-lock"' in detail
    assert 'data-account-id' in http.get("/admin/accounts", query_string={"q": "alic"}).get_data(as_text=True)
    assert http.get("/admin/accounts/987654321").status_code == 404
    assert [e.details["by"] for e in _actions("admin.accounts.search")] == ["phone", "id_number"]


def test_lock_ends_the_citizens_session_with_backchannel_logout(app, http, services, clock, alice, user):
    admin = make_admin(services, clock, "useradmin", ["user-admin"])
    citizen = app.test_client()
    with backchannel_receiver() as rx:
        portal = register_client(services, name="BC Portal", redirect_uri="https://bc.example.test/cb",
                                 backchannel_logout_uri=rx.url)
        sid = decode_unverified(Browser(citizen).tokens(portal, user)["id_token"])["sid"]
        console_login(http, admin, clock)
        sessions = http.get(f"/admin/accounts/{alice}/sessions").get_data(as_text=True)
        assert f'data-sid="{sid}"' in sessions and portal.client_id in sessions
        # Without the CSRF token nothing happens.
        assert http.post(f"/admin/accounts/{alice}/lock").status_code == 400
        assert services.accounts.get(alice).status == "active"
        resp = http.post(f"/admin/accounts/{alice}/lock", data={"csrf_token": csrf_of(http, f"/admin/accounts/{alice}")})
        assert resp.status_code == 303 and resp.headers["Location"].endswith(f"/admin/accounts/{alice}?done=locked")
        [token] = rx.logout_tokens()
    assert decode_unverified(token)["sid"] == sid
    assert prompt_none(citizen, portal)["error"] == "login_required"
    page = http.get(resp.headers["Location"]).get_data(as_text=True)
    assert 'data-status="locked"' in page and 'id="account-sessions">0<' in page and 'id="account-unlock"' in page
    resp = http.post(f"/admin/accounts/{alice}/unlock", data={"csrf_token": csrf_of(http, f"/admin/accounts/{alice}")})
    assert resp.status_code == 303 and services.accounts.get(alice).status == "active"
    assert [e.action for e in _actions("admin.accounts.")][-2:] == ["admin.accounts.lock", "admin.accounts.unlock"]


def test_reveal_requires_a_reason_and_shows_the_number_once(http, services, clock, alice):
    admin = make_admin(services, clock, "useradmin", ["user-admin"])
    console_login(http, admin, clock)
    form = f"/admin/accounts/{alice}/reveal"
    csrf = csrf_of(http, form)
    refused = http.post(form, data={"csrf_token": csrf, "reason": "too short"})
    assert refused.status_code == 400 and 'id="reveal-error"' in refused.get_data(as_text=True)
    assert ID_NUMBER not in refused.get_data(as_text=True) and _actions("admin.accounts.reveal") == []
    resp = http.post(form, data={"csrf_token": csrf, "reason": REASON})
    assert resp.status_code == 303
    shown = http.get(resp.headers["Location"]).get_data(as_text=True)
    assert re.search(rf'id="revealed-id-number">{ID_NUMBER}<', shown)
    # Shown once: a reload of the same URL no longer carries it.
    assert ID_NUMBER not in http.get(resp.headers["Location"]).get_data(as_text=True)
    [event] = _actions("admin.accounts.reveal")
    assert REASON not in str(event.details) and ID_NUMBER not in str(event.details)


def test_end_one_session_from_the_sessions_page(app, http, services, clock, alice, user):
    admin = make_admin(services, clock, "useradmin", ["user-admin"])
    _, one = services.sessions.create(account_id=alice, subject_seed="s", amr=["pwd"], acr="cn-l1")
    _, two = services.sessions.create(account_id=alice, subject_seed="s", amr=["pwd"], acr="cn-l1")
    console_login(http, admin, clock)
    page = f"/admin/accounts/{alice}/sessions"
    resp = http.post(f"{page}/{one.sid}/end", data={"csrf_token": csrf_of(http, page)})
    assert resp.status_code == 303 and resp.headers["Location"].endswith("done=session_ended")
    html = http.get(page).get_data(as_text=True)
    assert f'data-sid="{one.sid}"' not in html and f'data-sid="{two.sid}"' in html
    resp = http.post(f"{page}/end-all", data={"csrf_token": csrf_of(http, page)})
    assert resp.status_code == 303 and 'id="no-sessions"' in http.get(page).get_data(as_text=True)


def test_reset_second_factor_needs_the_confirmation(http, services, clock, alice):
    secret = services.realname.start_totp_enrollment(alice, pyotp.random_base32(32))
    assert services.realname.confirm_totp(alice, pyotp.TOTP(secret).at(clock.timestamp()))
    db.session.commit()
    admin = make_admin(services, clock, "useradmin", ["user-admin"])
    console_login(http, admin, clock)
    path = f"/admin/accounts/{alice}"
    assert http.post(f"{path}/reset-mfa", data={"csrf_token": csrf_of(http, path)}).status_code == 303
    assert services.realname.has_totp(alice)
    resp = http.post(f"{path}/reset-mfa", data={"csrf_token": csrf_of(http, path), "confirm": "yes"})
    assert resp.status_code == 303 and not services.realname.has_totp(alice)
    assert 'data-enrolled="no"' in http.get(path).get_data(as_text=True)


def test_auditor_sees_the_account_but_cannot_change_or_reveal(http, services, clock, alice):
    admin = make_admin(services, clock, "watcher", ["auditor"])
    console_login(http, admin, clock)
    html = http.get(f"/admin/accounts/{alice}").get_data(as_text=True)
    assert 'id="account-status"' in html
    assert 'id="account-actions"' not in html and 'id="account-reveal"' not in html
    assert 'id="sessions-end-all"' not in http.get(f"/admin/accounts/{alice}/sessions").get_data(as_text=True)
    csrf = csrf_of(http)
    for path, data in (("lock", {}), ("reset-mfa", {"confirm": "yes"}), ("reveal", {"reason": REASON}),
                       ("sessions/end-all", {})):
        resp = http.post(f"/admin/accounts/{alice}/{path}", data={"csrf_token": csrf, **data})
        assert resp.status_code == 403 and 'id="forbidden"' in resp.get_data(as_text=True), path
    assert http.get(f"/admin/accounts/{alice}/reveal").status_code == 403
    assert http.get("/admin/accounts/reidentify").status_code == 403
    assert services.accounts.get(alice).status == "active"
    assert _actions("admin.accounts.reveal") == []


def test_client_admin_cannot_reach_accounts(http, services, clock, alice):
    admin = make_admin(services, clock, "portals", ["client-admin"])
    console_login(http, admin, clock)
    assert 'id="nav-accounts"' not in http.get("/admin/").get_data(as_text=True)
    assert http.get("/admin/accounts").status_code == 403
    assert http.get(f"/admin/accounts/{alice}/sessions").status_code == 403


def test_reidentify_a_sub(app, http, services, clock, alice, user):
    portal = register_client(services, name="Tax", redirect_uri="https://tax.example.test/cb")
    sub = decode_unverified(Browser(app.test_client()).tokens(portal, user)["id_token"])["sub"]
    admin = make_admin(services, clock, "useradmin", ["user-admin"])
    console_login(http, admin, clock)
    form = {"csrf_token": csrf_of(http, "/admin/accounts/reidentify"), "client_id": portal.client_id, "sub": sub,
            "reason": REASON, "requested_by": "区民政局 协查 2026-3"}
    bad = http.post("/admin/accounts/reidentify", data=form | {"sub": "not-a-sub"})
    assert bad.status_code == 400 and 'id="reidentify-error"' in bad.get_data(as_text=True)
    resp = http.post("/admin/accounts/reidentify", data=form)
    assert resp.status_code == 303 and resp.headers["Location"].endswith(f"/admin/accounts/{alice}?done=reidentified")
    other = services.accounts.create(username="nobody", password="correct horse battery")
    db.session.commit()
    unknown = services.subject(other.subject_seed, services.client(portal.client_id))
    resp = http.post("/admin/accounts/reidentify", data=form | {"sub": unknown})
    assert resp.status_code == 303 and resp.headers["Location"].endswith("done=no_match")
    assert [e.details["matched"] for e in _actions("subject.reidentify")] == [True, False]
