"""CA and legal-person administration (admin/cas.py, admin/legal.py) on real PostgreSQL,
over the certificates services: every change checks its permission and writes an audit
event (pseudonymous ids only) in the same transaction; invalid bundles, profiles and
CRLs are refused with an error naming the problem, and nothing is written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select

from admin.actor import Actor
from admin.errors import AdminForbiddenError, ConflictError
from admin.roles import Role
from admin.service import AdminServices
from certificates.legal import CredentialNotFoundError, CredentialStateError, MandateNotFoundError
from certificates.mapping import MappingProfile
from certificates.models import CertificateAuthority, Credential
from certificates.registry import DuplicateCaError, InvalidCaBundleError, InvalidCrlError, InvalidProfileError
from certificates.trust import CertificateRejectedError, RejectionReason
from common.db import db
from common.models import AuditEvent
from tests.support.admin_certificates import (
    OTHER_USCC,
    USCC,
    bundle_pem,
    certificate_login,
    crl_pem,
    pem,
    register,
)
from tests.support.pki import PRIVATE_OID, make_ca, make_crl, make_sub_ca, three_provinces

CA_ADMIN = Actor(account_id=7, roles=frozenset({Role.CA_ADMIN.value}), ip="192.0.2.10")


@pytest.fixture(scope="module")
def provinces():
    return three_provinces()


@pytest.fixture
def admin(services) -> AdminServices:
    return AdminServices(services)


def _events(prefix: str) -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action.like(prefix + "%"))
                                   .order_by(AuditEvent.id)))


def _ca_count() -> int:
    return int(db.session.scalar(select(func.count()).select_from(CertificateAuthority)) or 0)


# -- certificate authorities ------------------------------------------------------------


def test_add_a_ca_from_a_bundle_is_audited_without_names(admin, provinces):
    fujian = provinces[0]
    view = admin.cas.add(CA_ADMIN, name="福建 CA", province="福建", pem_bundle=bundle_pem(fujian))
    db.session.commit()
    assert [c.role for c in view.certificates] == ["root", "intermediate"]
    assert view.certificates[0].subject == fujian.root.cert.subject.rfc4514_string()
    assert len(view.certificates[0].sha256) == 64 and view.crl_status == "none"
    assert view.profile["sources"][0]["oid"] == "1.2.156.10260.4.4"  # the default profile
    [event] = _events("admin.ca.")
    assert (event.action, event.actor, event.target, event.ip_hash is not None) == ("admin.ca.add", "account:7",
                                                                                   None, True)
    assert event.details == {"ca_id": view.row.id, "roots": 1, "intermediates": 1, "default_profile": True}
    assert "福建" not in str(event.details)


@pytest.mark.parametrize(("make_bundle", "message"), [
    (lambda p: "not a certificate", "holds no readable PEM certificate"),
    (lambda p: pem(p.issue(USCC).cert), "is not a CA certificate"),
    (lambda p: pem(make_sub_ca(p.root, "Old Sub CA", not_before=datetime.now(UTC) - timedelta(days=30),
                               not_after=datetime.now(UTC) - timedelta(days=1)).cert) + pem(p.root.cert),
     "has expired"),
    (lambda p: pem(p.intermediate.cert), "holds no self-signed root"),
    (lambda p: pem(make_ca("Elsewhere", "X").cert) + pem(p.intermediate.cert), "is not issued by a certificate"),
])
def test_invalid_bundles_are_refused_naming_the_problem_and_nothing_is_written(admin, provinces, make_bundle,
                                                                               message):
    with pytest.raises(InvalidCaBundleError) as info:
        admin.cas.add(CA_ADMIN, name="Broken CA", province="Fujian", pem_bundle=make_bundle(provinces[0]))
    assert message in info.value.public_message
    db.session.rollback()
    assert _ca_count() == 0 and _events("admin.ca.") == []


@pytest.mark.parametrize(("profile", "message"), [
    ('{"sources": [{"kind": "registry", "oid": "1.2.3"}]}', "kind must be 'extension' or 'subject'"),
    ('{"sources": []}', "non-empty 'sources'"),
    ('{"sources": [{"kind": "extension", "oid": "1.2.3", "pattern": "a{4294967296}"}]}', "bad pattern"),
    ('{"sources": [{"kind": "extension", "oid": "1.2.3", "yields": 5}]}', "yields must be a list"),
    ("{not json", "not JSON"),
])
def test_invalid_profiles_are_refused_before_anything_is_written(admin, provinces, profile, message):
    with pytest.raises(InvalidProfileError) as info:
        admin.cas.add(CA_ADMIN, name="Fujian CA", province="Fujian", pem_bundle=bundle_pem(provinces[0]),
                      profile=profile)
    assert message in info.value.public_message
    db.session.rollback()
    assert _ca_count() == 0 and _events("admin.ca.") == []


def test_permissions_are_checked_by_the_operations(admin, provinces):
    auditor = Actor(account_id=8, roles=frozenset({Role.AUDITOR.value}))
    portal_admin = Actor(account_id=9, roles=frozenset({Role.CLIENT_ADMIN.value}))
    assert admin.cas.all(auditor) == []
    with pytest.raises(AdminForbiddenError) as info:
        admin.cas.add(auditor, name="X", province="Y", pem_bundle=bundle_pem(provinces[0]))
    assert info.value.permission == "cas.write" and info.value.action == "admin.ca.add"
    with pytest.raises(AdminForbiddenError):
        admin.cas.all(portal_admin)
    with pytest.raises(AdminForbiddenError):
        admin.legal.search(portal_admin)
    with pytest.raises(AdminForbiddenError):
        admin.legal.unbind(auditor, 1, 1)
    assert _ca_count() == 0


def test_rename_and_change_the_profile_only_what_differs_is_recorded(admin, services, provinces):
    beijing = provinces[2]
    ca_id = register(services, beijing)
    other = register(services, provinces[0])
    view = admin.cas.update(CA_ADMIN, ca_id, name="北京 CA", province=beijing.province)
    assert view.row.name == "北京 CA"
    db.session.commit()
    with pytest.raises(DuplicateCaError):
        admin.cas.update(CA_ADMIN, other, name="北京 CA")
    db.session.rollback()
    # The same profile again is no change and no event.
    admin.cas.update(CA_ADMIN, ca_id, profile=beijing.profile.to_json())
    db.session.commit()
    assert [e.details for e in _events("admin.ca.update")] == [{"ca_id": ca_id, "fields": ["name"],
                                                                "checked_on_sample": False}]
    # A profile that finds nothing in the sample certificate is refused and nothing changes.
    sample = pem(beijing.issue(USCC).cert).encode()
    with pytest.raises(InvalidProfileError):
        admin.cas.update(CA_ADMIN, ca_id, profile='{"sources": [{"kind": "extension", "oid": "1.2.3.4"}]}',
                         sample=sample)
    db.session.rollback()
    assert admin.cas.get(CA_ADMIN, ca_id).profile["sources"][0]["oid"] == PRIVATE_OID
    changed = admin.cas.update(CA_ADMIN, ca_id, profile={"sources": [
        {"kind": "extension", "oid": PRIVATE_OID, "yields": ["uscc"], "strip_prefixes": ["USCC:"]},
        {"kind": "extension", "oid": "1.2.156.10260.4.4"}]}, sample=sample)
    db.session.commit()
    assert len(changed.profile["sources"]) == 2
    assert _events("admin.ca.update")[-1].details == {"ca_id": ca_id, "fields": ["profile"],
                                                      "checked_on_sample": True}


def test_disable_enable_and_crl_upload_are_audited(admin, services, clock, provinces):
    fujian = provinces[0]
    ca_id = register(services, fujian)
    assert admin.cas.set_enabled(CA_ADMIN, ca_id, False).row.enabled is False
    leaf = fujian.issue(USCC)
    with pytest.raises(CertificateRejectedError) as info:
        certificate_login(services, clock, leaf)
    assert info.value.reason is RejectionReason.CA_DISABLED
    admin.cas.set_enabled(CA_ADMIN, ca_id, True)
    state = admin.cas.load_crl(CA_ADMIN, ca_id, crl_pem(fujian.intermediate, (leaf.cert.serial_number,),
                                                       number=5).encode())
    db.session.commit()
    assert (state.crl_number, state.entries) == (5, 1)
    assert admin.cas.get(CA_ADMIN, ca_id).crl_status == "current"
    with pytest.raises(CertificateRejectedError) as info:
        certificate_login(services, clock, leaf)
    assert info.value.reason is RejectionReason.REVOKED
    assert [e.action for e in _events("admin.ca.")] == ["admin.ca.disable", "admin.ca.enable", "admin.ca.load_crl"]
    assert _events("admin.ca.load_crl")[0].details == {"ca_id": ca_id, "crl_number": 5, "entries": 1,
                                                       "next_update": state.next_update.isoformat()}
    # An older CRL (replay to un-revoke) and a CRL of another CA are refused, nothing written.
    for data, message in ((make_crl(fujian.intermediate, [], number=4), "older than the one loaded"),
                          (make_crl(provinces[1].intermediate, []), "not issued by this certificate authority"),
                          (b"garbage", "could not be read")):
        with pytest.raises(InvalidCrlError) as crl_info:
            admin.cas.load_crl(CA_ADMIN, ca_id, data)
        assert message in crl_info.value.public_message
        db.session.rollback()
    assert len(_events("admin.ca.load_crl")) == 1
    # The CRL goes stale once its nextUpdate passes (RFC 5280 §5.1.2.5).
    clock.advance(8 * 24 * 3600)
    assert admin.cas.get(CA_ADMIN, ca_id).crl_status == "stale"


def test_preview_maps_without_saving(admin, services, provinces):
    beijing = provinces[2]
    ca_id = register(services, beijing)
    sample = pem(beijing.issue(USCC, org_name="北京示例有限公司").cert).encode()
    default = admin.cas.preview(CA_ADMIN, sample)
    assert default.result.identifier is None and default.result.reason == "no_identifier"
    assert default.profile_source == "default" and any("absent" in step for step in default.result.trail)
    saved = admin.cas.preview(CA_ADMIN, sample, ca_id=ca_id)
    assert (saved.uscc, saved.result.name, saved.issuer_match) == (USCC, "北京示例有限公司", True)
    given = admin.cas.preview(CA_ADMIN, sample, profile=beijing.profile.to_json())
    assert given.uscc == USCC and given.profile_source == "given"
    other = admin.cas.preview(CA_ADMIN, pem(provinces[0].issue(USCC).cert).encode(), ca_id=ca_id)
    assert other.issuer_match is False
    with pytest.raises(CertificateRejectedError) as info:
        admin.cas.preview(CA_ADMIN, b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    assert info.value.reason is RejectionReason.MALFORMED_CERTIFICATE
    # Read-only: an auditor may preview; nothing was recorded or changed.
    auditor = Actor(account_id=8, roles=frozenset({Role.AUDITOR.value}))
    assert admin.cas.preview(auditor, sample, ca_id=ca_id).uscc == USCC
    assert _events("admin.ca.") == []
    assert MappingProfile.from_dict(admin.cas.get(CA_ADMIN, ca_id).profile) == beijing.profile


# -- legal persons ----------------------------------------------------------------------------


@pytest.fixture
def company(services, clock, provinces, user):
    """One legal person with two certificates (two CAs) and an agent's mandate."""
    for p in provinces:
        register(services, p)
    first = certificate_login(services, clock, provinces[0].issue(USCC, org_name="福州示例科技有限公司"))
    second = certificate_login(services, clock, provinces[1].issue(USCC))
    agent = services.accounts.get_by_username(user.username)
    mandate = services.legal.grant_by_admin("ops", agent_account_id=agent.id, legal_person_id=first.legal_person_id,
                                            scope=["tax.filing"], valid_until=clock.now() + timedelta(days=30))
    db.session.commit()
    return first, second, mandate.id, agent.id


def test_search_by_uscc_or_name_and_detail(admin, company):
    first, second, mandate_id, agent_id = company
    assert [p.id for p in admin.legal.search(CA_ADMIN, query=USCC.lower()).items] == [first.legal_person_id]
    assert [p.id for p in admin.legal.search(CA_ADMIN, query="示例科技").items] == [first.legal_person_id]
    assert admin.legal.search(CA_ADMIN, query=USCC[:10]).items == []  # a USCC matches exactly, not in part
    assert admin.legal.search(CA_ADMIN, query="%").items == []  # LIKE wildcards are literal
    detail = admin.legal.get(CA_ADMIN, first.legal_person_id)
    assert [c.row.id for c in detail.credentials] == [first.credential_id, second.credential_id]
    assert [c.ca_name for c in detail.credentials] == ["Fujian CA", "Guangdong CA"]
    assert all(c.row.status == "active" and len(c.row.spki_sha256) == 43 for c in detail.credentials)
    [mandate] = detail.mandates
    assert (mandate.row.id, mandate.agent_username, mandate.state) == (mandate_id, "alice", "active")


def test_unbind_revokes_the_credential_for_good(admin, services, clock, provinces, company):
    first, second, _, _ = company
    with pytest.raises(CredentialNotFoundError):
        admin.legal.unbind(CA_ADMIN, first.legal_person_id, 987654)
    view = admin.legal.unbind(CA_ADMIN, first.legal_person_id, second.credential_id)
    db.session.commit()
    assert view.row.status == "revoked" and "account:7" in (view.row.status_detail or "")
    [event] = _events("admin.legal.unbind")
    assert (event.actor, event.target) == ("account:7", f"legal_person:{first.legal_person_id}")
    assert event.details == {"credential_id": second.credential_id, "ca_id": view.row.ca_id,
                             "previous_status": "active"}
    with pytest.raises(CredentialStateError):
        admin.legal.unbind(CA_ADMIN, first.legal_person_id, second.credential_id)
    with pytest.raises(CredentialStateError):
        admin.legal.reinstate(CA_ADMIN, first.legal_person_id, second.credential_id)


def test_a_flagged_credential_is_reinstated_by_an_administrator(admin, services, clock, provinces):
    fujian, guangdong, _ = provinces
    register(services, fujian)
    register(services, guangdong)
    key = ec.generate_private_key(ec.SECP256R1())
    mine = fujian.issue(USCC, key=key)
    identity = certificate_login(services, clock, mine)
    # The same key certified for another company: refused, and our credential flagged.
    with pytest.raises(CertificateRejectedError):
        certificate_login(services, clock, guangdong.issue(OTHER_USCC, key=key))
    db.session.commit()
    with pytest.raises(CertificateRejectedError) as info:
        certificate_login(services, clock, mine)
    assert info.value.reason is RejectionReason.IDENTIFIER_CONFLICT
    db.session.rollback()
    flagged = admin.legal.get(CA_ADMIN, identity.legal_person_id).credentials[0]
    assert flagged.row.status == "flagged" and OTHER_USCC in (flagged.row.status_detail or "")
    view = admin.legal.reinstate(CA_ADMIN, identity.legal_person_id, identity.credential_id)
    db.session.commit()
    assert view.row.status == "active" and "was flagged" in (view.row.status_detail or "")
    assert certificate_login(services, clock, mine).credential_id == identity.credential_id
    [event] = _events("admin.legal.reinstate")
    assert event.details == {"credential_id": identity.credential_id, "ca_id": view.row.ca_id}
    with pytest.raises(CredentialStateError):
        admin.legal.reinstate(CA_ADMIN, identity.legal_person_id, identity.credential_id)
    # Every legal-person event names ids only: no USCC, no company name, no agent.
    assert all(USCC not in str(e.details) and OTHER_USCC not in str(e.details) for e in _events("admin.legal."))


def test_a_revoked_credential_is_not_turned_into_a_flagged_one(admin, services, clock, provinces):
    """Regression: a conflict used to overwrite "revoked" with "flagged", which a
    reinstatement would then have turned back into "active"."""
    fujian, guangdong, _ = provinces
    register(services, fujian)
    register(services, guangdong)
    key = ec.generate_private_key(ec.SECP256R1())
    identity = certificate_login(services, clock, fujian.issue(USCC, key=key))
    admin.legal.unbind(CA_ADMIN, identity.legal_person_id, identity.credential_id)
    db.session.commit()
    with pytest.raises(CertificateRejectedError):
        certificate_login(services, clock, guangdong.issue(OTHER_USCC, key=key))
    db.session.commit()
    assert db.session.get(Credential, identity.credential_id).status == "revoked"
    with pytest.raises(CredentialStateError):
        admin.legal.reinstate(CA_ADMIN, identity.legal_person_id, identity.credential_id)


def test_revoke_a_mandate(admin, services, company):
    first, _, mandate_id, agent_id = company
    other = services.legal.create(uscc=OTHER_USCC, name="另一家公司", created_by="admin:test")
    with pytest.raises(MandateNotFoundError):
        admin.legal.revoke_mandate(CA_ADMIN, other.id, mandate_id)  # not this legal person's mandate
    view = admin.legal.revoke_mandate(CA_ADMIN, first.legal_person_id, mandate_id)
    db.session.commit()
    assert view.state == "revoked" and view.row.revoked_by == "account:7"
    assert services.legal.active_for(agent_id) == []
    [event] = _events("admin.legal.revoke_mandate")
    assert event.details == {"mandate_id": mandate_id, "agent": f"account:{agent_id}"}
    with pytest.raises(ConflictError):
        admin.legal.revoke_mandate(CA_ADMIN, first.legal_person_id, mandate_id)

