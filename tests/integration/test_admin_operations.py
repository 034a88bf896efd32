"""Administration operations (admin/admins.py, clients.py, keys.py) on real PostgreSQL:
each checks its permission on the server, writes an audit event in the same
transaction, and a disabled client is refused by the protocol engine."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from admin.actor import Actor, record_denied
from admin.errors import AdminForbiddenError, AdminNotFoundError, LastSuperadminError, UnknownRoleError
from admin.roles import GRANTS, Permission, Role
from admin.service import AdminServices
from common.db import db
from common.models import AuditEvent
from idp.errors import ClientNotFoundError, InvalidClientMetadataError, KeyAlreadyRetiredError
from idp.models import Consent, SigningKey


@pytest.fixture
def admin(services) -> AdminServices:
    return AdminServices(services)


@pytest.fixture
def person(services) -> int:
    account = services.accounts.create(username="root-admin", password="a long enough secret")
    db.session.commit()
    return account.id


def _events(action: str) -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def actor_with(*roles: Role, account_id: int = 7) -> Actor:
    return Actor(account_id=account_id, roles=frozenset(r.value for r in roles), ip="192.0.2.10")


# -- roles ----------------------------------------------------------------------------


def test_grant_and_revoke_are_audited_and_roles_read_back(admin, person):
    assert admin.admins.roles_of(person) == frozenset()
    assert admin.admins.grant(Actor.cli(), person, "client-admin") is True
    assert admin.admins.grant(Actor.cli(), person, "client-admin") is False
    db.session.commit()
    assert admin.admins.roles_of(person) == {"client-admin"}
    [event] = _events("admin.admins.grant")
    assert (event.actor, event.target, event.details) == ("admin:cli", f"account:{person}", {"role": "client-admin"})
    assert admin.admins.revoke(Actor.cli(), person, "client-admin") is True
    db.session.commit()
    assert admin.admins.roles_of(person) == frozenset()
    assert len(_events("admin.admins.revoke")) == 1


def test_unknown_role_and_unknown_account_are_refused(admin, person):
    with pytest.raises(UnknownRoleError):
        admin.admins.grant(Actor.cli(), person, "root")
    with pytest.raises(AdminNotFoundError):
        admin.admins.grant(Actor.cli(), 987654321, "auditor")
    with pytest.raises(AdminNotFoundError):
        admin.admins.account_by_username("nobody-here")


def test_organisation_accounts_cannot_become_administrators(admin, services):
    org = services.accounts.create_organization()
    with pytest.raises(AdminNotFoundError):
        admin.admins.grant(Actor.cli(), org.id, "auditor")


def test_only_superadmins_grant_roles(admin, person):
    for role in Role:
        actor = actor_with(role)
        if Permission.ADMINS_WRITE in GRANTS[role]:
            assert admin.admins.grant(actor, person, "auditor") in (True, False)
        else:
            with pytest.raises(AdminForbiddenError) as info:
                admin.admins.grant(actor, person, "superadmin")
            assert info.value.code == "forbidden" and info.value.action == "admin.admins.grant"
    assert "superadmin" not in admin.admins.roles_of(person)


def test_the_last_superadmin_keeps_the_role_unless_the_cli_removes_it(admin, person):
    admin.admins.grant(Actor.cli(), person, "superadmin")
    me = admin.admins.actor(person, "192.0.2.1")
    with pytest.raises(LastSuperadminError):
        admin.admins.revoke(me, person, "superadmin")
    assert admin.admins.revoke(Actor.cli(), person, "superadmin") is True


def test_list_shows_grants_to_readers_only(admin, person):
    admin.admins.grant(Actor.cli(), person, "auditor")
    admin.admins.grant(Actor.cli(), person, "ca-admin")
    [entry] = admin.admins.all(actor_with(Role.AUDITOR))
    assert entry.account_id == person and entry.username == "root-admin"
    assert entry.roles == ("auditor", "ca-admin") and entry.grants[0].granted_by == "admin:cli"
    with pytest.raises(AdminForbiddenError):
        admin.admins.all(actor_with(Role.CLIENT_ADMIN))


def test_a_denial_is_recorded_after_the_rollback(admin, services, person):
    actor = actor_with(Role.AUDITOR)
    with pytest.raises(AdminForbiddenError) as info:
        admin.clients.create(actor, name="Nope", redirect_uris=["https://nope.example.test/cb"])
    db.session.rollback()
    record_denied(services.audit, actor, info.value)
    db.session.commit()
    [event] = _events("admin.clients.create")
    assert (event.outcome, event.reason, event.details) == ("denied", "forbidden", {"permission": "clients.write"})


# -- clients --------------------------------------------------------------------------


def _create(admin, actor=None, **extra):
    fields = {"name": "Tax Portal", "redirect_uris": ["https://tax.example.test/cb"]} | extra
    return admin.clients.create(actor or actor_with(Role.CLIENT_ADMIN), **fields)


def test_create_update_rotate_delete_are_audited(admin):
    actor = actor_with(Role.CLIENT_ADMIN)
    row, secret = _create(admin, actor, scopes=["openid", "profile"],
                          claim_policy={"name": {"purpose": "Address the citizen", "basis": "consent"}})
    assert secret and row.claim_policy == {"name": {"purpose": "Address the citizen", "basis": "consent"}}
    row, new_secret = admin.clients.update(actor, row.client_id, name="Tax Portal 2",
                                           redirect_uris=["https://tax.example.test/cb", "https://tax.example.test/cb2"])
    assert new_secret is None and row.name == "Tax Portal 2" and len(row.redirect_uris) == 2
    rotated = admin.clients.rotate_secret(actor, row.client_id)
    assert rotated != secret
    admin.clients.delete(actor, row.client_id)
    db.session.commit()
    for verb in ("create", "update", "rotate_secret", "delete"):
        [event] = _events(f"admin.clients.{verb}")
        assert event.actor == "account:7" and event.target == f"client:{row.client_id}"
        assert event.ip_hash and "192.0.2.10" not in str(event.details)
    assert _events("admin.clients.update")[0].details == {"fields": ["name", "redirect_uris"],
                                                         "new_credential": False}
    with pytest.raises(ClientNotFoundError):
        admin.clients.get(actor, row.client_id)


def test_update_validates_the_whole_registration(admin):
    actor = actor_with(Role.SUPERADMIN)
    row, _ = _create(admin, actor)
    with pytest.raises(InvalidClientMetadataError):
        admin.clients.update(actor, row.client_id, redirect_uris=["https://tax.example.test/cb#frag"])
    with pytest.raises(InvalidClientMetadataError):
        admin.clients.update(actor, row.client_id, scopes=["openid", "nonsense"])
    with pytest.raises(InvalidClientMetadataError):
        admin.clients.update(actor, row.client_id, secret_hash="mine")
    # OIDC Core §8.1: the pairwise sector never changes with an update.
    with pytest.raises(InvalidClientMetadataError):
        admin.clients.update(actor, row.client_id, sector_identifier_uri="https://other.example.test/sector.json")
    # Issue 17: nor may the redirect URIs leave the sector without its document vouching
    # for them (this update used to pass, keeping the tax sector for other hosts).
    with pytest.raises(InvalidClientMetadataError):
        admin.clients.update(actor, row.client_id, redirect_uris=["https://a.example.test/cb",
                                                                  "https://b.example.test/cb"])
    kept = admin.clients.get(actor, row.client_id)
    assert kept.sector_identifier == "tax.example.test"
    assert all(uri.startswith("https://tax.example.test/") for uri in kept.redirect_uris)


def test_switching_to_a_secret_method_returns_a_new_secret(admin):
    actor = actor_with(Role.CLIENT_ADMIN)
    row, secret = _create(admin, actor, public=True)
    assert secret is None and row.secret_hash is None
    row, secret = admin.clients.update(actor, row.client_id, token_endpoint_auth_method="client_secret_post")
    assert secret and row.secret_hash
    row, again = admin.clients.update(actor, row.client_id, token_endpoint_auth_method="none")
    assert again is None and row.secret_hash is None


def test_search_paginates_by_keyset_and_matches_name_or_client_id(admin):
    actor = actor_with(Role.AUDITOR)
    writer = actor_with(Role.CLIENT_ADMIN)
    made = [_create(admin, writer, name=f"Portal {i} 50%_off")[0] for i in range(5)]
    page = admin.clients.search(actor, query="50%_", limit=2)
    assert [c.client_id for c in page.items] == [c.client_id for c in made[:2]] and page.next_cursor
    page2 = admin.clients.search(actor, query="50%_", limit=2, cursor=page.next_cursor)
    page3 = admin.clients.search(actor, query="50%_", limit=2, cursor=page2.next_cursor)
    assert [c.client_id for c in page2.items + page3.items] == [c.client_id for c in made[2:]]
    assert page3.next_cursor is None
    assert [c.client_id for c in admin.clients.search(actor, query=made[3].client_id).items] == [made[3].client_id]
    assert admin.clients.search(actor, query="no such portal").items == []


def test_search_rejects_bad_cursor_and_limit(admin):
    from common.errors import ValidationError

    for kwargs in ({"cursor": "abc"}, {"cursor": "-1"}, {"limit": 0}, {"limit": 201}):
        with pytest.raises(ValidationError):
            admin.clients.search(actor_with(Role.AUDITOR), **kwargs)


def test_a_disabled_client_is_unknown_to_the_protocol_engine(admin, services, oauth_client, http):
    actor = actor_with(Role.CLIENT_ADMIN)
    assert services.client(oauth_client.client_id) is not None  # now cached
    admin.clients.set_enabled(actor, oauth_client.client_id, False)
    db.session.commit()
    # The cache entry was dropped: the change is seen at once on this instance.
    assert services.client(oauth_client.client_id) is None
    resp = http.post("/token", data={"grant_type": "client_credentials", "scope": "openid"}, auth=oauth_client.auth)
    assert resp.status_code == 401 and resp.get_json()["error"] == "invalid_client"
    admin.clients.set_enabled(actor, oauth_client.client_id, True)
    db.session.commit()
    resp = http.post("/token", data={"grant_type": "client_credentials"}, auth=oauth_client.auth)
    assert resp.status_code == 200
    assert [e.action for e in _events("admin.clients.disable") + _events("admin.clients.enable")] == [
        "admin.clients.disable", "admin.clients.enable"]


def test_usage_counts_consents_and_disclosures(admin, services, oauth_client, user, clock):
    account = services.accounts.find_by_identifier("alice")
    # Rows written directly: the consent service's signature belongs to issue 5's work.
    db.session.add(Consent(account_id=account.id, client_id=oauth_client.client_id, scopes=["profile"],
                           granted_at=clock.now(), expires_at=clock.now() + timedelta(days=1)))
    services.disclosures.record(account_id=account.id, client_id=oauth_client.client_id, claim_names={"name"})
    services.disclosures.record(account_id=account.id, client_id=oauth_client.client_id, claim_names={"name"},
                                legal_basis="statutory")
    usage = admin.clients.usage(actor_with(Role.AUDITOR), oauth_client.client_id)
    assert (usage.consents_active, usage.consents_withdrawn, usage.consents_expired) == (1, 0, 0)
    assert usage.disclosures_total == 2 and usage.disclosures_by_basis == {"consent": 1, "statutory": 1}
    assert usage.last_disclosure_at == clock.now()
    with pytest.raises(AdminForbiddenError):
        admin.clients.usage(actor_with(Role.CA_ADMIN), oauth_client.client_id)


# -- keys -----------------------------------------------------------------------------


def test_keys_list_rotate_retire(admin, services, clock):
    actor = actor_with(Role.SUPERADMIN)
    before = {k.kid: k.state for k in admin.keys.all(actor_with(Role.AUDITOR))}
    assert sorted(before.values()) == ["active", "active", "next", "next"]
    [promoted] = admin.keys.rotate(actor, "ES256")
    assert before[promoted.kid] == "next"
    nxt = db.session.scalars(select(SigningKey).where(SigningKey.alg == "ES256", SigningKey.state == "next")).one()
    retired = admin.keys.retire(actor, nxt.kid)
    assert retired.state == "retired" and retired.kid not in {k["kid"] for k in services.keys.jwks()["keys"]}
    old_active = next(k for k, s in before.items() if s == "active" and k != promoted.kid and
                      db.session.scalars(select(SigningKey).where(SigningKey.kid == k)).one().alg == "ES256")
    # The rotated-away key is still published (overlap) until unpublished on purpose.
    assert old_active in {k["kid"] for k in services.keys.jwks()["keys"]}
    admin.keys.retire(actor, old_active, unpublish=True)
    assert old_active not in {k["kid"] for k in services.keys.jwks()["keys"]}
    with pytest.raises(KeyAlreadyRetiredError):
        admin.keys.retire(actor, old_active, unpublish=True)
    db.session.commit()
    assert len(_events("admin.keys.rotate")) == 1 and len(_events("admin.keys.retire")) == 2
    with pytest.raises(AdminForbiddenError):
        admin.keys.rotate(actor_with(Role.AUDITOR))


def test_retiring_the_active_key_promotes_the_next_one(admin, services):
    actor = actor_with(Role.SUPERADMIN)
    active = services.keys.active_kids()["RS256"]
    admin.keys.retire(actor, active)
    assert services.keys.active_kids()["RS256"] != active
    states = [k.state for k in services.keys.all() if k.alg == "RS256"]
    assert sorted(states) == ["active", "next", "retired"]
