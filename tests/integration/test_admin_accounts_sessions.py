"""Accounts and sessions administration (admin/accounts.py, admin/sessions.py) on real
PostgreSQL and Redis: permission checks, audit events without personal data, the
reason-bound reveal, and locking that ends SSO sessions with back-channel logout
deliveries (OIDC Back-Channel Logout 1.0 §2.5) to a real loopback receiver."""

from __future__ import annotations

import json

import pyotp
import pytest
from sqlalchemy import select

from admin.actor import Actor
from admin.errors import (
    AdminForbiddenError,
    AdminNotFoundError,
    IdentityNotFoundError,
    ProtectedAccountError,
    RevealReasonError,
    SelfAdministrationError,
    SessionNotFoundError,
)
from admin.roles import Role
from admin.service import AdminServices
from common.db import db
from common.models import AuditEvent
from idp.models import LogoutDelivery
from realname.idnumbers import parse_id_number
from tests.functional._support import backchannel_receiver, register_client

ID_NUMBER = "11010519491231002X"
PHONE = "13800138000"
NAME = "张三"
REASON = "公安机关协查函 2026-117 号，核对身份"


@pytest.fixture
def admin(services) -> AdminServices:
    return AdminServices(services)


@pytest.fixture
def citizen(services) -> int:
    """A registry-verified person with a phone, an authenticator and recovery codes."""
    account = services.accounts.create(username="zhangsan", password="correct horse battery", name=NAME, phone=PHONE)
    services.realname.bind_identity(account.id, NAME, parse_id_number(ID_NUMBER, today=services.p.clock.now().date()))
    secret = services.realname.start_totp_enrollment(account.id, pyotp.random_base32(32))
    assert services.realname.confirm_totp(account.id, pyotp.TOTP(secret).at(services.p.clock.timestamp()))
    db.session.commit()
    return account.id


def actor_with(*roles: Role, account_id: int = 999_001) -> Actor:
    return Actor(account_id=account_id, roles=frozenset(r.value for r in roles), ip="192.0.2.10")


USER_ADMIN = actor_with(Role.USER_ADMIN)
AUDITOR = actor_with(Role.AUDITOR)


def _events(prefix: str) -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action.startswith(prefix))
                                   .order_by(AuditEvent.id)))


def _no_personal_data(events: list[AuditEvent], *values: str) -> None:
    for event in events:
        text = json.dumps({"details": event.details, "reason": event.reason, "target": event.target},
                          ensure_ascii=False)
        for value in (ID_NUMBER, PHONE, NAME, REASON, *values):
            assert value not in text, (event.action, value)


# -- search and detail ----------------------------------------------------------------


def test_search_by_phone_id_number_and_username_shows_masked_numbers_only(admin, citizen):
    for query in ("13800138000", "+86 138-0013-8000", ID_NUMBER, ID_NUMBER.lower(), "zhang", f"#{citizen}"):
        page = admin.accounts.search(USER_ADMIN, query=query)
        assert [a.account_id for a in page.items] == [citizen], query
        assert page.items[0].id_number_masked == "110105********002X"
    assert admin.accounts.search(USER_ADMIN, query="13900000000").items == []
    # A full number with a wrong check character is no ID number: a username search, no hit.
    assert admin.accounts.search(USER_ADMIN, query="110105194912310021").items == []
    db.session.commit()
    # Look-ups by personal data are audited by kind, never by value.
    events = _events("admin.accounts.search")
    assert [e.details["by"] for e in events] == ["phone", "phone", "id_number", "id_number", "phone"]
    assert events[0].details["found"] == 1 and events[0].actor == f"account:{USER_ADMIN.account_id}"
    _no_personal_data(events)


def test_search_pages_by_keyset(admin, services):
    ids = [services.accounts.create(username=f"pager{i}", password="correct horse battery").id for i in range(5)]
    first = admin.accounts.search(AUDITOR, query="pager", limit=2)
    second = admin.accounts.search(AUDITOR, query="pager", limit=2, cursor=first.next_cursor)
    third = admin.accounts.search(AUDITOR, query="pager", limit=2, cursor=second.next_cursor)
    assert [a.account_id for a in first.items + second.items + third.items] == ids
    assert third.next_cursor is None


def test_detail_shows_factors_level_and_masked_data(admin, services, citizen, clock):
    services.sessions.create(account_id=citizen, subject_seed="seed", amr=["pwd"], acr="cn-l1")
    services.audit.record("login.success", actor=f"account:{citizen}", details={"amr": ["pwd"]})
    db.session.commit()
    detail = admin.accounts.get(AUDITOR, citizen)
    assert (detail.kind, detail.status, detail.username) == ("person", "active", "zhangsan")
    assert detail.level == "cn-l2"  # registry-verified + TOTP
    assert detail.totp_enrolled and detail.recovery_codes_left == 10
    assert (detail.masked_name, detail.masked_phone, detail.id_number_masked) == ("张*", "138****8000",
                                                                                  "110105********002X")
    assert detail.active_sessions == 1 and detail.last_login_at is not None
    assert detail.administrator is False
    with pytest.raises(AdminNotFoundError):
        admin.accounts.get(AUDITOR, 987_654_321)
    with pytest.raises(AdminForbiddenError):
        admin.accounts.get(actor_with(Role.CLIENT_ADMIN), citizen)


# -- lock, unlock, second factor --------------------------------------------------------


def test_locking_ends_sessions_and_sends_backchannel_logout(admin, services, citizen):
    with backchannel_receiver() as rx:
        portal = register_client(services, name="BC Portal", redirect_uri="https://bc.example.test/cb",
                                 backchannel_logout_uri=rx.url)
        _, first = services.sessions.create(account_id=citizen, subject_seed="s", amr=["pwd"], acr="cn-l1")
        services.sessions.create(account_id=citizen, subject_seed="s", amr=["pwd"], acr="cn-l1")
        services.sessions.add_client(first.sid, portal.client_id)
        result = admin.accounts.lock(USER_ADMIN, citizen)
        db.session.commit()
        assert result.changed and len(result.ended) == 2 and len(result.ended.deliveries) == 1
        assert admin.sessions.deliver(result.ended) == 1
        db.session.commit()
        assert len(rx.posts) == 1
    assert services.accounts.get(citizen).status == "locked"
    assert services.sessions.of_account(citizen) == []
    [row] = db.session.scalars(select(LogoutDelivery).where(LogoutDelivery.client_id == portal.client_id))
    assert (row.sid, row.state) == (first.sid, "delivered")
    [event] = _events("admin.accounts.lock")
    assert event.target == f"account:{citizen}"
    assert event.details == {"changed": True, "sessions": 2, "deliveries": 1}
    assert len(_events("logout.delivery")) == 1
    # Locking again changes nothing and records nothing.
    assert admin.accounts.lock(USER_ADMIN, citizen).changed is False
    assert admin.accounts.unlock(USER_ADMIN, citizen) is True
    assert admin.accounts.unlock(USER_ADMIN, citizen) is False
    db.session.commit()
    assert services.accounts.get(citizen).status == "active"
    assert len(_events("admin.accounts.lock")) == 1 and len(_events("admin.accounts.unlock")) == 1


def test_reset_second_factor_removes_totp_and_recovery_codes(admin, services, citizen):
    assert admin.accounts.reset_second_factor(USER_ADMIN, citizen) is True
    db.session.commit()
    assert not services.realname.has_totp(citizen)
    assert admin.accounts.get(AUDITOR, citizen).recovery_codes_left == 0
    assert admin.accounts.reset_second_factor(USER_ADMIN, citizen) is False
    [event] = _events("admin.accounts.reset_mfa")
    assert event.details == {"authenticator_removed": True, "recovery_codes_removed": 10}


def test_auditors_change_nothing_and_administrators_are_protected(admin, services, citizen):
    for call in (lambda: admin.accounts.lock(AUDITOR, citizen), lambda: admin.accounts.unlock(AUDITOR, citizen),
                 lambda: admin.accounts.reset_second_factor(AUDITOR, citizen),
                 lambda: admin.accounts.reveal_id_number(AUDITOR, citizen, REASON),
                 lambda: admin.sessions.end_all(AUDITOR, citizen)):
        with pytest.raises(AdminForbiddenError):
            call()
    # A user-admin cannot lock or reset an administrator's account; a superadmin can.
    admin.admins.grant(Actor.cli(), citizen, "auditor")
    with pytest.raises(ProtectedAccountError):
        admin.accounts.lock(USER_ADMIN, citizen)
    with pytest.raises(ProtectedAccountError):
        admin.accounts.reset_second_factor(USER_ADMIN, citizen)
    assert admin.accounts.lock(actor_with(Role.SUPERADMIN), citizen).changed is True
    # Nobody locks their own account here.
    with pytest.raises(SelfAdministrationError):
        admin.accounts.lock(actor_with(Role.SUPERADMIN, account_id=citizen), citizen)


# -- reveal and re-identification -------------------------------------------------------


def test_reveal_needs_a_reason_and_is_audited_without_it(admin, services, citizen):
    for reason in (None, "", "   too short", "x" * 501, "reason with a \x00 control char"):
        with pytest.raises(RevealReasonError):
            admin.accounts.reveal_id_number(USER_ADMIN, citizen, reason)
    db.session.commit()
    assert _events("admin.accounts.reveal") == []
    assert admin.accounts.reveal_id_number(USER_ADMIN, citizen, f"  {REASON} ") == ID_NUMBER
    db.session.commit()
    [event] = _events("admin.accounts.reveal")
    assert event.actor == f"account:{USER_ADMIN.account_id}" and event.target == f"account:{citizen}"
    assert event.details == {"field": "id_number", "reason_hash": admin.accounts.reason_hash(REASON),
                             "reason_length": len(REASON)}
    assert event.ip_hash  # from where
    _no_personal_data(_events("admin."))


def test_reveal_of_an_account_without_identity(admin, services):
    plain = services.accounts.create(username="noidentity", password="correct horse battery")
    with pytest.raises(IdentityNotFoundError):
        admin.accounts.reveal_id_number(USER_ADMIN, plain.id, REASON)


def test_reidentify_wraps_the_resolver_with_the_reveal_permission(admin, services, citizen):
    portal = register_client(services, name="Tax", redirect_uri="https://tax.example.test/cb")
    client = services.client(portal.client_id)
    sub = services.subject(services.accounts.get(citizen).subject_seed, client)
    services.disclosures.record(account_id=citizen, client_id=portal.client_id, claim_names={"sub"}, subject=sub)
    with pytest.raises(AdminForbiddenError):
        admin.accounts.reidentify(AUDITOR, portal.client_id, sub, reason=REASON, requested_by="市公安局 协查 117")
    found = admin.accounts.reidentify(USER_ADMIN, portal.client_id, sub, reason=REASON,
                                      requested_by="市公安局 协查 117")
    db.session.commit()
    assert found is not None and found.account_id == citizen
    [event] = _events("subject.reidentify")
    assert event.actor == f"account:{USER_ADMIN.account_id}" and event.ip_hash


# -- sessions ---------------------------------------------------------------------------


def test_list_and_end_one_session(admin, services, citizen, other_user):
    _, one = services.sessions.create(account_id=citizen, subject_seed="s", amr=["pwd"], acr="cn-l1")
    _, two = services.sessions.create(account_id=citizen, subject_seed="s", amr=["pwd", "otp"], acr="cn-l2")
    bob = services.accounts.find_by_identifier("bob")
    _, bobs = services.sessions.create(account_id=bob.id, subject_seed="b", amr=["pwd"], acr="cn-l0")
    assert {s.sid for s in admin.sessions.for_account(AUDITOR, citizen)} == {one.sid, two.sid}
    # Another account's sid cannot be ended through this account.
    with pytest.raises(SessionNotFoundError):
        admin.sessions.end(USER_ADMIN, citizen, bobs.sid)
    assert [s.sid for s in services.sessions.of_account(bob.id)] == [bobs.sid]
    ended = admin.sessions.end(USER_ADMIN, citizen, one.sid)
    db.session.commit()
    assert ended.sids == (one.sid,)
    assert [s.sid for s in admin.sessions.for_account(AUDITOR, citizen)] == [two.sid]
    [event] = _events("admin.sessions.end")
    assert event.details == {"sid": one.sid, "clients": 0, "deliveries": 0}
    with pytest.raises(SessionNotFoundError):
        admin.sessions.end(USER_ADMIN, citizen, one.sid)
    assert len(admin.sessions.end_all(USER_ADMIN, citizen)) == 1
    assert admin.sessions.for_account(AUDITOR, citizen) == []


def test_the_index_forgets_sessions_that_ended_or_expired(services, citizen, clock, store):
    cookie, first = services.sessions.create(account_id=citizen, subject_seed="s", amr=["pwd"], acr="cn-l1")
    _, second = services.sessions.create(account_id=citizen, subject_seed="s", amr=["pwd"], acr="cn-l1")
    services.sessions.end(cookie)  # the citizen's own logout
    assert [s.sid for s in services.sessions.of_account(citizen)] == [second.sid]
    assert store.members(f"sso-account:{citizen}") == {second.sid}
    clock.advance(services.p.settings.session_idle_ttl + 1)
    assert services.sessions.of_account(citizen) == []
    assert store.members(f"sso-account:{citizen}") == set()
    assert first.sid != second.sid
