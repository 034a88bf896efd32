"""Admin API: accounts and sessions through HTTP — search by phone / ID number /
username with masked numbers only, detail, lock (sessions end, back-channel logout
tokens reach the portal: OIDC Back-Channel Logout 1.0 §2.5), unlock, second-factor
reset, the reason-bound reveal, session list/end, sub re-identification; problem+json
refusals (RFC 9457) and audit events without personal data."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from admin.api.errors import render_domain_error
from common.db import db
from common.errors import ValidationError
from common.models import AuditEvent
from idp.errors import KeyAlreadyRetiredError, SecondFactorLockedError, SigningKeyUnavailableError
from idp.models import LogoutDelivery, SigningKey
from realname.errors import RegistryUnavailableError
from realname.idnumbers import parse_id_number
from tests.functional._admin_api import API, admin_headers, make_admin
from tests.helpers import Browser, decode_unverified

from ._support import backchannel_receiver, isolate_requests, prompt_none, register_client

ID_NUMBER = "11010519491231002X"
REASON = "区人社局来函（2026）第 42 号：核对参保人身份"


@pytest.fixture(autouse=True)
def _request_contexts(app):
    isolate_requests(app)


@pytest.fixture
def as_admin(http, services, clock):
    return admin_headers(services, clock)


@pytest.fixture
def alice(services, user) -> int:
    """The conftest user (张三, 13800138000), registry-verified."""
    account = services.accounts.find_by_identifier(user.username)
    services.realname.bind_identity(account.id, "张三", parse_id_number(ID_NUMBER, today=services.p.clock.now().date()))
    db.session.commit()
    return int(account.id)


def _events(prefix: str) -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action.like(prefix + "%"))
                                   .order_by(AuditEvent.id)))


def test_search_by_phone_and_id_number_never_lists_the_number(http, as_admin, alice):
    h = as_admin("user-admin")
    for q in ("13800138000", "+86 138 0013 8000", ID_NUMBER, "alic", f"#{alice}"):
        resp = http.post(f"{API}/accounts/search", json={"q": q}, headers=h)
        assert resp.status_code == 200, resp.get_json()
        [item] = resp.get_json()["items"]
        assert item["account_id"] == alice and item["id_number_masked"] == "110105********002X"
        assert ID_NUMBER not in resp.get_data(as_text=True) and "13800138000" not in resp.get_data(as_text=True)
    found = http.post(f"{API}/accounts/search", json={"q": ID_NUMBER}, headers=h).get_json()
    assert found["matched_by"] == "id_number"
    # Personal data stays out of URLs: the GET listing refuses a phone or ID number.
    for q in ("13800138000", ID_NUMBER):
        refused = http.get(f"{API}/accounts", query_string={"q": q}, headers=h)
        assert refused.status_code == 422 and refused.mimetype == "application/problem+json"
    assert [a["account_id"] for a in http.get(f"{API}/accounts", query_string={"q": "alic"},
                                              headers=h).get_json()["items"]] == [alice]
    detail = http.get(f"{API}/accounts/{alice}", headers=h)
    body = detail.get_json()
    assert (body["masked_name"], body["masked_phone"], body["level"]) == ("张*", "138****8000", "cn-l1")
    assert body["totp_enrolled"] is False and body["active_sessions"] == 0
    assert ID_NUMBER not in detail.get_data(as_text=True)
    assert http.get(f"{API}/accounts/987654321", headers=h).status_code == 404
    searches = _events("admin.accounts.search")
    assert [e.details["by"] for e in searches] == ["phone", "phone", "id_number", "id_number"]


def test_lock_ends_sessions_and_sends_backchannel_logout(http, services, as_admin, alice, user):
    h = as_admin("user-admin")
    with backchannel_receiver() as rx:
        portal = register_client(services, name="BC Portal", redirect_uri="https://bc.example.test/cb",
                                 backchannel_logout_uri=rx.url)
        tokens = Browser(http).tokens(portal, user)
        sid = decode_unverified(tokens["id_token"])["sid"]
        listed = http.get(f"{API}/accounts/{alice}/sessions", headers=h).get_json()["items"]
        assert [s["sid"] for s in listed] == [sid] and listed[0]["clients"] == [portal.client_id]

        resp = http.post(f"{API}/accounts/{alice}/lock", headers=h)
        assert resp.status_code == 200, resp.get_json()
        assert resp.get_json() == {"account_id": alice, "status": "locked", "changed": True, "sessions_ended": 1,
                                   "deliveries_scheduled": 1}
        # Back-Channel Logout §2.5: the portal got a logout token for that session.
        [token] = rx.logout_tokens()
    claims = decode_unverified(token)
    assert claims["sid"] == sid and claims["aud"] in (portal.client_id, [portal.client_id])
    # The browser's SSO session is gone: a silent request needs a login (OIDC Core §3.1.2.6).
    assert prompt_none(http, portal)["error"] == "login_required"
    assert http.get(f"{API}/accounts/{alice}/sessions", headers=h).get_json()["items"] == []
    # A refresh is refused for a locked account (RFC 6749 §5.2 invalid_grant).
    refreshed = http.post("/token", auth=portal.auth, data={"grant_type": "refresh_token",
                                                            "refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 400 and refreshed.get_json()["error"] == "invalid_grant"
    [event] = _events("admin.accounts.lock")
    assert event.details == {"changed": True, "sessions": 1, "deliveries": 1}
    assert [e.outcome for e in _events("logout.delivery")] == ["ok"]
    unlocked = http.post(f"{API}/accounts/{alice}/unlock", headers=h)
    assert unlocked.get_json()["status"] == "active" and unlocked.get_json()["changed"] is True


def test_end_one_session_and_all(http, services, as_admin, alice, user):
    h = as_admin("user-admin")
    portal = register_client(services, name="Portal", redirect_uri="https://p.example.test/cb")
    first = decode_unverified(Browser(http).tokens(portal, user)["id_token"])["sid"]
    _, second = services.sessions.create(account_id=alice, subject_seed="s", amr=["pwd"], acr="cn-l1")
    assert http.delete(f"{API}/accounts/{alice}/sessions/unknown-sid", headers=h).status_code == 404
    ended = http.delete(f"{API}/accounts/{alice}/sessions/{first}", headers=h)
    assert ended.status_code == 200 and ended.get_json()["ended"] == [first]
    assert prompt_none(http, portal)["error"] == "login_required"
    rest = http.delete(f"{API}/accounts/{alice}/sessions", headers=h)
    assert rest.get_json()["ended"] == [second.sid]
    assert [e.action for e in _events("admin.sessions.")] == ["admin.sessions.end", "admin.sessions.end_all"]


def test_reveal_needs_a_reason_and_the_audit_keeps_only_its_hash(http, services, as_admin, alice):
    h = as_admin("user-admin")
    for body in (None, {}, {"reason": "short"}, {"reason": "x" * 501}):
        resp = http.post(f"{API}/accounts/{alice}/reveal", json=body, headers=h)
        assert resp.status_code == 422, (body, resp.status_code)
        assert resp.mimetype == "application/problem+json"
    assert _events("admin.accounts.reveal") == []
    resp = http.post(f"{API}/accounts/{alice}/reveal", json={"reason": REASON}, headers=h)
    assert resp.status_code == 200 and resp.get_json() == {"account_id": alice, "id_number": ID_NUMBER}
    assert resp.headers["Cache-Control"] == "no-store"
    [event] = _events("admin.accounts.reveal")
    stored = json.dumps(event.details, ensure_ascii=False)
    assert ID_NUMBER not in stored and REASON not in stored and "参保人" not in stored
    assert event.details["reason_length"] == len(REASON)


def test_auditor_reads_but_cannot_change_reveal_or_end(http, services, as_admin, alice):
    h = as_admin("auditor")
    assert http.get(f"{API}/accounts/{alice}", headers=h).status_code == 200
    assert http.get(f"{API}/accounts/{alice}/sessions", headers=h).status_code == 200
    for method, path, body in (("POST", "lock", None), ("POST", "unlock", None), ("POST", "reset-mfa", None),
                               ("POST", "reveal", {"reason": REASON}), ("DELETE", "sessions", None)):
        resp = http.open(f"{API}/accounts/{alice}/{path}", method=method, json=body, headers=h)
        assert resp.status_code == 403 and resp.get_json()["code"] == "forbidden", path
    assert services.accounts.get(alice).status == "active"
    denied = [e for e in _events("admin.api.") if e.outcome == "denied"]
    assert len(denied) == 5


def test_user_admin_cannot_lock_an_administrator(http, services, as_admin, clock):
    h = as_admin("user-admin")
    other = make_admin(services, clock, "another-admin", "client-admin")
    resp = http.post(f"{API}/accounts/{other.account_id}/lock", headers=h)
    assert resp.status_code == 403 and resp.get_json()["code"] == "forbidden"
    assert services.accounts.get(other.account_id).status == "active"
    assert http.post(f"{API}/accounts/{other.account_id}/lock", headers=as_admin("superadmin")).status_code == 200


def test_reidentify_a_pairwise_sub(http, services, as_admin, alice, user):
    h = as_admin("user-admin")
    portal = register_client(services, name="Tax", redirect_uri="https://tax.example.test/cb")
    tokens = Browser(http).tokens(portal, user)
    sub = decode_unverified(tokens["id_token"])["sub"]
    body = {"client_id": portal.client_id, "sub": sub, "reason": REASON, "requested_by": "市税务局稽查局 协查 2026-9"}
    resp = http.post(f"{API}/subjects/reidentify", json=body, headers=h)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["matched"] is True and resp.get_json()["account"]["account_id"] == alice
    assert http.post(f"{API}/subjects/reidentify", json=body, headers=as_admin("auditor")).status_code == 403
    missing = http.post(f"{API}/subjects/reidentify", json=body | {"client_id": "no-such-client"}, headers=h)
    assert missing.status_code == 404
    [event] = _events("subject.reidentify")
    assert event.target == f"account:{alice}" and REASON not in json.dumps(event.details, ensure_ascii=False)


def _no_active_signing_key(app, services) -> None:
    """What an operator's mistake leaves (issue 11): no key may sign, while the retired ones
    stay published, so the administrator's token still verifies."""
    now = services.p.clock.now()
    db.session.execute(update(SigningKey).where(SigningKey.state == "active")
                       .values(state="retired", retired_at=now, unpublish_after=now + timedelta(days=1)))
    db.session.commit()
    app.extensions["yiwang.provider"].key_cache.invalidate()


def test_no_signing_key_for_the_logout_tokens_is_a_503_not_a_422(app, http, services, as_admin, alice, user):
    h = as_admin("user-admin")
    portal = register_client(services, name="BC Portal", redirect_uri="https://bc.example.test/cb",
                             backchannel_logout_uri="http://127.0.0.1:9/logout")
    Browser(http).tokens(portal, user)
    _no_active_signing_key(app, services)
    resp = http.delete(f"{API}/accounts/{alice}/sessions", headers=h)
    # A server fault the caller may retry (RFC 9110 §15.6.4, §10.2.3), not refused input.
    assert resp.status_code == 503, (resp.status_code, resp.get_json())
    assert resp.mimetype == "application/problem+json"
    problem = resp.get_json()
    assert problem["status"] == 503 and problem["code"] == "temporarily_unavailable"
    assert problem["title"] == "Service Unavailable" and "errors" not in problem
    assert resp.headers["Retry-After"].isdigit()
    # The sessions ended before the tokens were to be signed; their delivery stays due
    # for `flask logout deliver`.
    assert http.get(f"{API}/accounts/{alice}/sessions", headers=h).get_json()["items"] == []
    db.session.expire_all()
    assert [d.state for d in db.session.scalars(select(LogoutDelivery))] == ["pending"]
    # The document says so.
    operation = http.get(f"{API}/openapi.json").get_json()["paths"][f"{API}/accounts/{{account_id}}/sessions"]
    assert "503" in operation["delete"]["responses"]


@pytest.mark.parametrize(("error", "status"), [
    (SigningKeyUnavailableError("no active ES256 signing key"), 503),
    (RegistryUnavailableError("registry down"), 503),
    (SecondFactorLockedError(), 429),
    (ValidationError("bad"), 422),  # a 400-class refusal of the content
    (KeyAlreadyRetiredError("kid"), 409),
])
def test_problem_statuses(app, error, status):
    with app.test_request_context():
        resp = render_domain_error(error)
    assert resp.status_code == status and resp.get_json()["status"] == status
    assert ("Retry-After" in resp.headers) is isinstance(error, SigningKeyUnavailableError)
