"""Legal persons, credentials and mandates (certificates/legal.py) on real PostgreSQL,
fed by real validation (certificates/validation.py) of certificates from three
provincial CAs registered through the registry. Issue 4 "Legal persons"; DESIGN.md §5-§6
("一证通用": one legal person per USCC whatever the CA)."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select

from certificates.legal import (
    DuplicateLegalPersonError,
    LegalPersonService,
    MandateError,
    MandateNotFoundError,
)
from certificates.mapping import MappingProfile, Source
from certificates.models import Credential, LegalPerson, Mandate
from certificates.registry import CaService
from certificates.trust import CertificateRejectedError, RejectionReason, ValidatedCertificate
from certificates.uscc import org_code_check_character, uscc_check_character
from certificates.validation import CertificateValidator
from common.db import db
from common.errors import ValidationError
from idp.models import Account
from tests.support.pki import PRIVATE_OID, issue_leaf, make_crl, printable, set_of, three_provinces

USCC = "91350100M000100Y43"
ORG = "M000100Y4"
OTHER_USCC = "91110000600037341L"
REG_NO = "350100100012345"


def uscc_with(org_body8: str, region: str = "350100") -> str:
    """A valid USCC (GB 32100-2015) embedding the organisation code built from ``org_body8``."""
    org = org_body8 + org_code_check_character(org_body8)
    first17 = "91" + region + org
    return first17 + uscc_check_character(first17)


@pytest.fixture(scope="module")
def provinces():
    return three_provinces()


@pytest.fixture
def cas(services, clock, provinces) -> CaService:
    """The three provincial CAs registered, each with a current (empty) CRL."""
    service = CaService(services.session, clock=clock)
    for p in provinces:
        row = service.add(name=p.name, province=p.province, profile=p.profile,
                          pem_bundle=b"".join(c.public_bytes(serialization.Encoding.PEM)
                                              for c in (p.root.cert, p.intermediate.cert)))
        service.load_crl(row.id, make_crl(p.intermediate, []))
    db.session.commit()
    return service


@pytest.fixture
def legal(services, clock) -> LegalPersonService:
    def create_account() -> int:
        # What idp wires: an organisation account with no usable password (it logs in
        # with certificates only; "!" is no argon2 hash, so it never verifies).
        account = services.accounts.create(username=f"org-{secrets.token_hex(8)}", password=None,
                                           password_hash="!", kind="organization")
        return int(account.id)

    return LegalPersonService(services.session, clock=clock, create_account=create_account)


@pytest.fixture
def login(cas, clock, legal):
    validator = CertificateValidator(clock)

    def run(leaf, *, require_identifier: bool = True):
        validated = validator.validate(leaf.der, [], cas.trusted(), production=False,
                                       require_identifier=require_identifier)
        return legal.resolve(validated)

    return run


def _rows(model) -> list:
    db.session.expire_all()
    return list(db.session.scalars(select(model).order_by(model.id)))


# -- one legal person whatever the CA ---------------------------------------------------------


def test_same_company_three_cas_one_legal_person_one_sub(login, provinces, services, oauth_client):
    identities = [login(p.issue(USCC)) for p in provinces]
    db.session.commit()

    assert [i.created for i in identities] == [True, False, False]
    assert len({i.legal_person_id for i in identities}) == 1
    assert len({i.account_id for i in identities}) == 1
    assert len({i.credential_id for i in identities}) == 3
    [person] = _rows(LegalPerson)
    assert (person.uscc, person.org_code, person.name) == (USCC, ORG, "示例科技有限公司")
    assert person.created_by == f"certificate:{identities[0].credential_id}"
    creds = _rows(Credential)
    assert len({c.ca_id for c in creds}) == 3
    assert {c.legal_person_id for c in creds} == {person.id} and {c.status for c in creds} == {"active"}
    # The legal person is an organisation account, so a portal sees one pairwise sub
    # for it (OIDC Core §8.1) whichever CA's certificate was used.
    account = db.session.get(Account, person.account_id)
    assert account is not None and account.kind == "organization"
    client = services.client(oauth_client.client_id)
    subs = {services.subject(db.session.get(Account, i.account_id).subject_seed, client) for i in identities}
    assert len(subs) == 1
    # Nobody can log in to it with a password.
    assert services.p.passwords.verify(account.password_hash, "") is False


def test_same_certificate_again_reuses_its_credential(login, provinces, clock):
    leaf = provinces[0].issue(USCC)
    first = login(leaf)
    clock.advance(60)
    again = login(leaf)
    assert again.credential_id == first.credential_id and again.created is False
    [cred] = _rows(Credential)
    assert cred.last_used_at == clock.now()


def test_name_follows_the_latest_certificate(login, provinces):
    login(provinces[0].issue(USCC, org_name="旧名称有限公司"))
    identity = login(provinces[1].issue(USCC, org_name="新名称有限公司"))
    assert identity.name == "新名称有限公司"
    assert _rows(LegalPerson)[0].name == "新名称有限公司"


# -- aliases: organisation code and registration number ---------------------------------------


def test_org_code_only_certificate_maps_to_the_uscc_containing_it(login, provinces):
    fujian, guangdong, _ = provinces
    login(fujian.issue(USCC))
    # Guangdong's placement (1.2.156.10260.4.1.4) carries only the old organisation code.
    identity = login(guangdong.issue(ORG))
    assert identity.uscc == USCC and identity.created is False
    assert len(_rows(LegalPerson)) == 1


def test_org_code_matching_no_legal_person_is_refused(login, provinces):
    with pytest.raises(CertificateRejectedError) as info:
        login(provinces[1].issue(ORG))
    assert info.value.reason is RejectionReason.AMBIGUOUS_ORG_CODE
    assert _rows(LegalPerson) == [] and _rows(Credential) == []


def test_org_code_matching_two_legal_persons_is_refused(login, provinces):
    fujian, guangdong, _ = provinces
    body = "MA01X2Y3"
    a, b = uscc_with(body, "350100"), uscc_with(body, "440300")
    assert a != b and a[8:17] == b[8:17]
    login(fujian.issue(a))
    login(fujian.issue(b))
    # Issue 4: refused unless exactly one USCC contains the code; never a guess.
    with pytest.raises(CertificateRejectedError) as info:
        login(guangdong.issue(a[8:17]))
    assert info.value.reason is RejectionReason.AMBIGUOUS_ORG_CODE
    assert len(_rows(Credential)) == 2


def test_registration_number_alias(legal, login, provinces):
    legal.create(uscc=USCC, name="示例科技有限公司", reg_no=REG_NO, created_by="admin:ops")
    # GM/T 0015 1.2.156.10260.4.1.3: business registration number.
    leaf = issue_leaf(provinces[0].intermediate, extensions=[("1.2.156.10260.4.1.3", set_of(printable(REG_NO)))])
    identity = login(leaf)
    assert identity.uscc == USCC and identity.created is False


def test_admin_creation_rules(legal):
    person = legal.create(uscc=USCC.lower(), name=" 示例科技有限公司 ", created_by="admin:ops")
    assert (person.uscc, person.org_code, person.name) == (USCC, ORG, "示例科技有限公司")
    with pytest.raises(DuplicateLegalPersonError):
        legal.create(uscc=USCC, name="Again", created_by="admin:ops")
    with pytest.raises(ValidationError):
        legal.create(uscc=USCC[:-1] + "0", name="Bad checksum", created_by="admin:ops")  # GB 32100-2015 §5
    with pytest.raises(ValidationError):
        legal.create(uscc=OTHER_USCC, name="Bad reg", reg_no="12345", created_by="admin:ops")
    # The failed duplicate left no orphan organisation account behind.
    assert db.session.scalar(select(func.count()).select_from(Account)) == 1


# -- identifier problems and conflicts -------------------------------------------------------


def test_certificate_without_identifier_or_with_a_bad_one(login, provinces):
    fujian = provinces[0]
    with pytest.raises(CertificateRejectedError) as info:
        login(issue_leaf(fujian.intermediate), require_identifier=False)
    assert info.value.reason is RejectionReason.NO_IDENTIFIER
    bad = issue_leaf(fujian.intermediate, extensions=[("1.2.156.10260.4.4", printable(USCC[:-1] + "0"))])
    with pytest.raises(CertificateRejectedError) as info:
        login(bad, require_identifier=False)
    assert info.value.reason is RejectionReason.MALFORMED_IDENTIFIER
    assert _rows(LegalPerson) == []


def test_key_reused_for_another_company_is_refused_and_flagged(login, provinces):
    fujian, guangdong, _ = provinces
    key = ec.generate_private_key(ec.SECP256R1())
    mine = login(fujian.issue(USCC, key=key))
    db.session.commit()
    # The same key certified (by another CA) for another company.
    with pytest.raises(CertificateRejectedError) as info:
        login(guangdong.issue(OTHER_USCC, key=key))
    assert info.value.reason is RejectionReason.IDENTIFIER_CONFLICT
    # The caller commits the flag: the refusal is the event worth recording.
    db.session.commit()
    [cred] = _rows(Credential)
    assert cred.id == mine.credential_id and cred.status == "flagged"
    assert OTHER_USCC in (cred.status_detail or "")
    assert [p.uscc for p in _rows(LegalPerson)] == [USCC]  # no legal person for the other
    # A flagged credential stays refused until an administrator looks at it.
    with pytest.raises(CertificateRejectedError) as info:
        login(fujian.issue(USCC, key=key))
    assert info.value.reason is RejectionReason.IDENTIFIER_CONFLICT


def test_known_certificate_mapping_elsewhere_is_refused_and_flagged(cas, login, provinces):
    fujian = provinces[0]
    # One certificate carrying two identifiers: the default profile reads the GM/T
    # 0015-2023 extension, a changed profile reads the private one first.
    leaf = fujian.issue(USCC, extensions=[("1.2.156.10260.4.4", printable(USCC)),
                                          (PRIVATE_OID, printable(OTHER_USCC))])
    login(leaf)
    ca_id = next(ca.ca_id for ca in cas.trusted() if ca.name == "Fujian CA")
    cas.set_profile(ca_id, MappingProfile(sources=(Source("extension", PRIVATE_OID),)))
    db.session.commit()
    with pytest.raises(CertificateRejectedError) as info:
        login(leaf)
    assert info.value.reason is RejectionReason.IDENTIFIER_CONFLICT
    db.session.commit()
    assert [c.status for c in _rows(Credential)] == ["flagged"]


def test_credential_revoked_by_an_administrator(legal, login, provinces):
    leaf = provinces[0].issue(USCC)
    identity = login(leaf)
    legal.revoke_credential(identity.credential_id, by="admin:ops")
    with pytest.raises(CertificateRejectedError) as info:
        login(leaf)
    assert info.value.reason is RejectionReason.REVOKED
    # Another certificate of the same company still works.
    assert login(provinces[1].issue(USCC)).legal_person_id == identity.legal_person_id


def test_resolve_needs_a_mapping(legal, cas, provinces, clock):
    # A ValidatedCertificate built directly: resolve never trusts a missing identifier.
    leaf = provinces[0].issue(USCC)
    validated = CertificateValidator(clock).validate(leaf.der, [], cas.trusted(), production=False)
    assert isinstance(validated, ValidatedCertificate)
    validated.mapping.identifier = None
    with pytest.raises(CertificateRejectedError) as info:
        legal.resolve(validated)
    assert info.value.reason is RejectionReason.NO_IDENTIFIER


# -- mandates (经办人) ----------------------------------------------------------------------------


@pytest.fixture
def agent(services, user) -> int:
    return int(services.accounts.get_by_username(user.username).id)


@pytest.fixture
def company(login, provinces):
    return login(provinces[0].issue(USCC))


def test_admin_mandate_lifecycle(legal, agent, company, clock):
    until = clock.now() + timedelta(days=30)
    mandate = legal.grant_by_admin("ops", agent_account_id=agent, legal_person_id=company.legal_person_id,
                                   scope=["tax", "social_security", "tax"], valid_until=until)
    assert mandate.granted_by == "admin:ops" and mandate.scope == ["tax", "social_security"]
    [acting] = legal.active_for(agent)
    assert (acting.uscc, acting.legal_person_account_id, acting.scope) == (USCC, company.account_id,
                                                                           ("tax", "social_security"))
    assert legal.get_active(agent, company.legal_person_id).mandate_id == mandate.id
    # Expiry: after valid_until the mandate no longer counts.
    clock.advance(timedelta(days=30).total_seconds())
    assert legal.active_for(agent) == []
    with pytest.raises(MandateNotFoundError):
        legal.get_active(agent, company.legal_person_id)


def test_revoked_mandate_stops_at_once(legal, agent, company, clock):
    mandate = legal.grant_by_admin("ops", agent_account_id=agent, legal_person_id=company.legal_person_id,
                                   scope=["tax"], valid_until=clock.now() + timedelta(days=1))
    legal.revoke_mandate(mandate.id, by="admin:ops")
    assert legal.active_for(agent) == []
    first = mandate.revoked_at
    clock.advance(10)
    assert legal.revoke_mandate(mandate.id, by="admin:other").revoked_at == first
    assert legal.mandates_of(company.legal_person_id)[0].revoked_by == "admin:ops"
    # Once revoked, a new mandate may be granted.
    legal.grant_by_admin("ops", agent_account_id=agent, legal_person_id=company.legal_person_id,
                         scope=["tax"], valid_until=clock.now() + timedelta(days=1))
    assert len(legal.active_for(agent)) == 1


def test_future_mandate_starts_later(legal, agent, company, clock):
    legal.grant_by_admin("ops", agent_account_id=agent, legal_person_id=company.legal_person_id, scope=["tax"],
                         valid_from=clock.now() + timedelta(hours=1), valid_until=clock.now() + timedelta(days=1))
    assert legal.active_for(agent) == []
    clock.advance(3600)
    assert len(legal.active_for(agent)) == 1


def test_certificate_session_grants_for_its_own_company(legal, agent, company, clock, login, provinces):
    mandate = legal.grant_by_certificate(company, agent_account_id=agent, scope=["tax"],
                                         valid_until=clock.now() + timedelta(days=7))
    assert mandate.granted_by == f"certificate:{company.credential_id}"
    assert mandate.legal_person_id == company.legal_person_id
    # A revoked credential cannot grant anything.
    other = login(provinces[1].issue(OTHER_USCC))
    legal.revoke_credential(other.credential_id, by="admin:ops")
    with pytest.raises(MandateError):
        legal.grant_by_certificate(other, agent_account_id=agent, scope=["tax"],
                                   valid_until=clock.now() + timedelta(days=7))


@pytest.mark.parametrize(("change", "message"), [
    ({"scope": []}, "scope"),
    ({"scope": ["Tax Office"]}, "scope"),
    ({"valid_until": -1}, "end after it starts"),
    ({"valid_until": 3 * 366 + 2}, "at most"),
])
def test_mandate_rules(legal, agent, company, clock, change, message):
    args = {"agent_account_id": agent, "legal_person_id": company.legal_person_id, "scope": ["tax"],
            "valid_until": clock.now() + timedelta(days=1)}
    if "valid_until" in change:
        args["valid_until"] = clock.now() + timedelta(days=change.pop("valid_until"))
    args.update(change)
    with pytest.raises(MandateError) as info:
        legal.grant_by_admin("ops", **args)
    assert message in info.value.public_message
    assert _rows(Mandate) == []


def test_mandate_agents_must_be_natural_persons(legal, agent, company, clock, login, provinces):
    until = clock.now() + timedelta(days=1)
    other = login(provinces[1].issue(OTHER_USCC))
    # An organisation account is not an agent.
    with pytest.raises(MandateError):
        legal.grant_by_admin("ops", agent_account_id=other.account_id, legal_person_id=company.legal_person_id,
                             scope=["tax"], valid_until=until)
    # An account that does not exist (foreign key) is refused cleanly.
    with pytest.raises(MandateError):
        legal.grant_by_admin("ops", agent_account_id=987654321, legal_person_id=company.legal_person_id,
                             scope=["tax"], valid_until=until)
    # One active mandate per agent and company.
    legal.grant_by_admin("ops", agent_account_id=agent, legal_person_id=company.legal_person_id, scope=["tax"],
                         valid_until=until)
    with pytest.raises(MandateError) as info:
        legal.grant_by_admin("ops", agent_account_id=agent, legal_person_id=company.legal_person_id,
                             scope=["hr"], valid_until=until)
    assert "revoke it first" in info.value.public_message
    assert len(_rows(Mandate)) == 1
