"""Admin API: certificate authorities and legal persons through HTTP — register a CA from
a PEM bundle, rename, change the profile, disable/enable, upload CRLs (PEM text or
base64 DER), preview a profile on a certificate; search legal persons, unbind / reinstate
credentials, revoke mandates. Refusals are RFC 9457 problems naming the certificate
problem (bad PEM, not a CA, expired, unknown profile source); every change is audited."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from admin.api import cas, legal
from certificates.trust import CertificateRejectedError
from common.db import db
from common.models import AuditEvent
from tests.functional._admin_api import API, admin_headers
from tests.support.admin_certificates import (
    OTHER_USCC,
    USCC,
    bundle_pem,
    certificate_login,
    crl_pem,
    pem,
    register,
)
from tests.support.pki import PRIVATE_OID, make_crl, make_sub_ca, three_provinces


@pytest.fixture(scope="module")
def provinces():
    return three_provinces()


@pytest.fixture
def as_admin(http, services, clock):
    return admin_headers(services, clock)


def _actions(prefix: str) -> list[str]:
    db.session.expire_all()
    return [e.action for e in db.session.scalars(select(AuditEvent).where(AuditEvent.action.like(prefix + "%"))
                                                 .order_by(AuditEvent.id))]


def _conforms(body: dict, schema: str) -> None:
    """The body matches its published response model (types, required, no extra fields),
    read as JSON the way the model reads a request: strictly."""
    model = getattr(cas, schema, None) or getattr(legal, schema)
    model.model_validate_json(json.dumps(body))


def _problem(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, (resp.status_code, resp.get_data(as_text=True)[:400])
    assert resp.mimetype == "application/problem+json"
    body = resp.get_json()
    assert body["status"] == status and body["code"] == code, body
    return dict(body)


def test_ca_lifecycle(http, as_admin, provinces):
    h = as_admin("ca-admin")
    beijing = provinces[2]
    created = http.post(f"{API}/cas", headers=h, json={
        "name": "Beijing CA", "province": "Beijing", "pem_bundle": bundle_pem(beijing),
        "profile": {"sources": [{"kind": "extension", "oid": PRIVATE_OID, "yields": ["uscc"],
                                 "strip_prefixes": ["USCC:"]}]},
        "crl_urls": ["http://crl.beijing-ca.example.test/issuing.crl"]})
    assert created.status_code == 201, created.get_json()
    ca = created.get_json()
    assert created.headers["Location"] == f"{API}/cas/{ca['id']}"
    assert [c["role"] for c in ca["certificates"]] == ["root", "intermediate"]
    assert ca["revocation"]["crl_status"] == "none" and ca["revocation"]["crl_urls"] == [
        "http://crl.beijing-ca.example.test/issuing.crl"]
    assert ca["profile"]["sources"][0]["pattern"] is None  # every field present
    _conforms(ca, "Ca")
    assert [c["id"] for c in http.get(f"{API}/cas", headers=h).get_json()["items"]] == [ca["id"]]

    renamed = http.patch(f"{API}/cas/{ca['id']}", headers=h, json={"name": "北京 CA"})
    assert renamed.status_code == 200 and renamed.get_json()["name"] == "北京 CA"
    assert http.post(f"{API}/cas/{ca['id']}/disable", headers=h).get_json()["enabled"] is False
    assert http.post(f"{API}/cas/{ca['id']}/enable", headers=h).get_json()["enabled"] is True

    loaded = http.post(f"{API}/cas/{ca['id']}/crl", headers=h, json={"pem": crl_pem(beijing.intermediate, (7,))})
    assert loaded.status_code == 200, loaded.get_json()
    assert loaded.get_json()["crl_number"] == "1" and loaded.get_json()["entries"] == 1
    _conforms(loaded.get_json(), "CrlState")
    der = make_crl(beijing.intermediate, [7, 8], number=2)
    loaded = http.post(f"{API}/cas/{ca['id']}/crl", headers=h,
                       json={"der_base64": base64.b64encode(der).decode()})
    assert loaded.status_code == 200 and loaded.get_json()["entries"] == 2
    shown = http.get(f"{API}/cas/{ca['id']}", headers=h).get_json()["revocation"]
    assert shown["crl_status"] == "current" and shown["crl_number"] == "2" and shown["crl_next_update"]
    assert ca["revocation"]["crl_loaded_at"] is None and shown["crl_loaded_at"]  # when it was last refreshed

    sample = pem(beijing.issue(USCC, org_name="北京示例有限公司").cert)
    preview = http.post(f"{API}/cas/mapping-preview", headers=h, json={"certificate_pem": sample, "ca_id": ca["id"]})
    assert preview.status_code == 200, preview.get_json()
    body = preview.get_json()
    assert (body["uscc"], body["name"], body["issuer_match"], body["profile_source"]) == (
        USCC, "北京示例有限公司", True, "ca")
    assert body["trail"][0] == f"extension {PRIVATE_OID}: uscc {USCC}"
    _conforms(body, "MappingPreview")
    default = http.post(f"{API}/cas/mapping-preview", headers=h, json={"certificate_pem": sample}).get_json()
    assert default["identifier"] is None and default["reason"] == "no_identifier"
    assert _actions("admin.ca.") == ["admin.ca.add", "admin.ca.update", "admin.ca.disable", "admin.ca.enable",
                                     "admin.ca.load_crl", "admin.ca.load_crl"]


def test_certificate_problems_are_named(http, as_admin, provinces):
    h = as_admin("ca-admin")
    fujian = provinces[0]

    def add(**body):
        return http.post(f"{API}/cas", headers=h, json={"name": "Fujian CA", "province": "Fujian",
                                                         "pem_bundle": bundle_pem(fujian), **body})

    bad_pem = _problem(add(pem_bundle="-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"), 422,
                       "invalid_ca_bundle")
    assert "no readable PEM certificate" in bad_pem["detail"]
    not_ca = _problem(add(pem_bundle=pem(fujian.issue(USCC).cert)), 422, "invalid_ca_bundle")
    assert "is not a CA certificate" in not_ca["detail"]
    now = datetime.now(UTC)
    old = make_sub_ca(fujian.root, "Retired Issuing CA", not_before=now - timedelta(days=900),
                      not_after=now - timedelta(days=1))
    expired = _problem(add(pem_bundle=bundle_pem(fujian) + pem(old.cert)), 422, "invalid_ca_bundle")
    assert "has expired" in expired["detail"] and "Retired Issuing CA" in expired["detail"]
    # An unknown kind of profile source: refused by the published schema, naming the field.
    unknown = _problem(add(profile={"sources": [{"kind": "registry", "oid": "1.2.3"}]}), 422, "invalid_input")
    assert unknown["errors"][0]["field"] == "profile/sources/0/kind"
    # What only the profile rules know: a pattern without a capture group.
    no_group = _problem(add(profile={"sources": [{"kind": "subject", "oid": "2.5.4.5", "pattern": "^91"}]}), 422,
                        "invalid_profile")
    assert "pattern needs a capture group" in no_group["detail"]
    _problem(add(pem_bundle="-----BEGIN CERTIFICATE-----\n\x00\n"), 422, "invalid_input")  # NUL is never text
    assert add().status_code == 201
    _problem(add(), 409, "duplicate_ca")
    ca_id = http.get(f"{API}/cas", headers=h).get_json()["items"][0]["id"]
    _problem(http.post(f"{API}/cas/{ca_id}/crl", headers=h, json={"der_base64": "bm90IGEgQ1JM"}), 422, "invalid_crl")
    _problem(http.post(f"{API}/cas/{ca_id}/crl", headers=h, json={"pem": "x", "der_base64": "eA=="}), 422,
             "invalid_input")
    other = _problem(http.post(f"{API}/cas/{ca_id}/crl", headers=h,
                               json={"der_base64": base64.b64encode(make_crl(provinces[1].intermediate)).decode()}),
                     422, "invalid_crl")
    assert "not issued by this certificate authority" in other["detail"]
    _problem(http.post(f"{API}/cas/mapping-preview", headers=h, json={"certificate_pem": "not a certificate"}), 422,
             "certificate_rejected")
    _problem(http.post(f"{API}/cas/mapping-preview", headers=h, json={"certificate_pem": pem(fujian.root.cert),
                                                                      "ca_id": 99999}), 404, "ca_not_found")
    _problem(http.get(f"{API}/cas/99999", headers=h), 404, "ca_not_found")
    _problem(http.patch(f"{API}/cas/{ca_id}", headers=h, json={"sample_pem": pem(fujian.root.cert)}), 422,
             "invalid_input")
    assert _actions("admin.ca.") == ["admin.ca.add"]  # only the one registration succeeded


def test_auditor_reads_cas_and_legal_persons_but_changes_nothing(http, as_admin, services, provinces):
    ca_id = register(services, provinces[0])
    h = as_admin("auditor")
    assert http.get(f"{API}/cas/{ca_id}", headers=h).status_code == 200
    assert http.get(f"{API}/legal-persons", headers=h).status_code == 200
    assert http.post(f"{API}/cas/mapping-preview", headers=h,
                     json={"certificate_pem": pem(provinces[0].issue(USCC).cert)}).status_code == 200
    _problem(http.post(f"{API}/cas/{ca_id}/disable", headers=h), 403, "forbidden")
    assert services.cas.get(ca_id).enabled is True
    _problem(http.get(f"{API}/cas", headers=as_admin("client-admin")), 403, "forbidden")


@pytest.fixture
def company(services, clock, provinces, user):
    for p in provinces[:2]:
        register(services, p)
    key = ec.generate_private_key(ec.SECP256R1())
    first = certificate_login(services, clock, provinces[0].issue(USCC, key=key, org_name="福州示例科技有限公司"))
    second = certificate_login(services, clock, provinces[1].issue(USCC, org_name="福州示例科技有限公司"))
    agent = services.accounts.get_by_username(user.username)
    mandate = services.legal.grant_by_admin("ops", agent_account_id=agent.id, legal_person_id=first.legal_person_id,
                                            scope=["tax.filing"], valid_until=clock.now() + timedelta(days=30))
    db.session.commit()
    return first, second, mandate.id, key


def test_legal_persons(http, as_admin, services, clock, provinces, company):
    first, second, mandate_id, key = company
    h = as_admin("ca-admin")
    found = http.get(f"{API}/legal-persons", headers=h, query_string={"q": USCC}).get_json()
    assert [p["id"] for p in found["items"]] == [first.legal_person_id] and found["next_cursor"] is None
    assert [p["uscc"] for p in http.get(f"{API}/legal-persons", headers=h,
                                        query_string={"q": "示例科技"}).get_json()["items"]] == [USCC]
    base = f"{API}/legal-persons/{first.legal_person_id}"
    detail = http.get(base, headers=h).get_json()
    assert detail["legal_person"]["name"] == "福州示例科技有限公司"
    assert [(c["ca_name"], c["status"]) for c in detail["credentials"]] == [("Fujian CA", "active"),
                                                                            ("Guangdong CA", "active")]
    assert detail["mandates"][0]["agent_username"] == "alice" and detail["mandates"][0]["state"] == "active"
    _conforms(detail, "LegalPersonDetail")
    _conforms(found, "LegalPersonPage")

    # A conflict flags the first credential; an administrator reviews and reinstates it.
    with pytest.raises(CertificateRejectedError):
        certificate_login(services, clock, provinces[1].issue(OTHER_USCC, key=key))
    db.session.commit()
    flagged = http.get(base, headers=h).get_json()["credentials"][0]
    assert flagged["status"] == "flagged" and OTHER_USCC in flagged["status_detail"]
    reinstated = http.post(f"{base}/credentials/{first.credential_id}/reinstate", headers=h)
    assert reinstated.status_code == 200 and reinstated.get_json()["status"] == "active"
    _problem(http.post(f"{base}/credentials/{first.credential_id}/reinstate", headers=h), 409, "credential_state")

    unbound = http.post(f"{base}/credentials/{second.credential_id}/unbind", headers=h)
    assert unbound.status_code == 200 and unbound.get_json()["status"] == "revoked"
    _problem(http.post(f"{base}/credentials/{second.credential_id}/unbind", headers=h), 409, "credential_state")
    _problem(http.post(f"{base}/credentials/987654/unbind", headers=h), 404, "credential_not_found")

    revoked = http.post(f"{base}/mandates/{mandate_id}/revoke", headers=h)
    assert revoked.status_code == 200 and revoked.get_json()["state"] == "revoked"
    _conforms(revoked.get_json(), "Mandate")
    _conforms(unbound.get_json(), "Credential")
    _problem(http.post(f"{base}/mandates/{mandate_id}/revoke", headers=h), 409, "conflict")
    _problem(http.get(f"{API}/legal-persons/987654", headers=h), 404, "legal_person_not_found")
    assert _actions("admin.legal.") == ["admin.legal.reinstate", "admin.legal.unbind", "admin.legal.revoke_mandate"]
