"""Console areas "Certificate authorities" and "Legal persons" (issue 6): register a CA
from a PEM bundle, see its certificates and revocation state, edit its mapping profile
with a preview on a sample certificate before saving, disable it, upload CRLs (file or
pasted PEM), test a profile on a certificate; search legal persons, unbind / reinstate
certificates and revoke mandates. CSRF on every POST, 303 after each change, errors
shown in the form with nothing written, every change audited."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select

from admin.console.i18n import MESSAGES
from certificates.models import CertificateAuthority, Credential
from certificates.trust import CertificateRejectedError
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
from tests.support.pki import PRIVATE_OID, make_crl, three_provinces

from ._console import console_login, csrf_of, make_admin


@pytest.fixture(scope="module")
def provinces():
    return three_provinces()


def _actions(prefix: str) -> list[str]:
    db.session.expire_all()
    return [e.action for e in db.session.scalars(select(AuditEvent).where(AuditEvent.action.like(prefix + "%"))
                                                 .order_by(AuditEvent.id))]


def _ca_count() -> int:
    return int(db.session.scalar(select(func.count()).select_from(CertificateAuthority)) or 0)


def _text(resp) -> str:
    return str(resp.get_data(as_text=True))


def test_register_a_ca_and_see_its_certificates(http, services, clock, provinces):
    admin = make_admin(services, clock, "ca-ops", ["ca-admin"])
    console_login(http, admin, clock)
    listing = _text(http.get("/admin/cas"))
    assert 'id="no-cas"' in listing and 'id="ca-new"' in listing
    fujian = provinces[0]
    resp = http.post("/admin/cas/new", data={"csrf_token": csrf_of(http, "/admin/cas/new"), "name": "福建 CA",
                                             "province": "福建", "pem_bundle": bundle_pem(fujian), "profile": "",
                                             "crl_urls": "http://crl.fj.example.test/a.crl\r\n", "ocsp_url": ""})
    assert resp.status_code == 303, _text(resp)[:500]
    assert re.fullmatch(r"/admin/cas/\d+\?done=created", resp.headers["Location"])
    html = _text(http.get(resp.headers["Location"]))
    assert 'id="ca-name">福建 CA<' in html and 'data-done="created"' in html
    assert html.count('data-role="root"') == 1 and html.count('data-role="intermediate"') == 1
    assert fujian.root.cert.subject.rfc4514_string() in html
    assert 'id="crl-status" data-crl-status="none"' in html and "http://crl.fj.example.test/a.crl" in html
    assert "1.2.156.10260.4.4" in html  # the default profile, shown
    assert _actions("admin.ca.") == ["admin.ca.add"]
    assert 'data-crl-status="none"' in _text(http.get("/admin/cas"))


@pytest.mark.parametrize(("field", "value", "message"), [
    ("pem_bundle", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----", "no readable PEM certificate"),
    ("pem_bundle", "leaf", "is not a CA certificate"),
    ("profile", '{"sources": [{"kind": "dn", "oid": "2.5.4.5"}]}', "kind must be"),
])
def test_a_refused_registration_keeps_the_form_and_writes_nothing(http, services, clock, provinces, field, value,
                                                                 message):
    admin = make_admin(services, clock, "ca-ops", ["ca-admin"])
    console_login(http, admin, clock)
    if value == "leaf":
        value = pem(provinces[0].issue(USCC).cert)
    form = {"csrf_token": csrf_of(http, "/admin/cas/new"), "name": "福建 CA", "province": "福建",
            "pem_bundle": bundle_pem(provinces[0]), "profile": "", field: value}
    resp = http.post("/admin/cas/new", data=form)
    assert resp.status_code == 400
    html = _text(resp)
    assert message in re.search(r'id="form-error"[^>]*>([^<]+)<', html).group(1)  # type: ignore[union-attr]
    assert 'value="福建 CA"' in html  # what was typed stays
    assert _ca_count() == 0 and _actions("admin.ca.") == []


def test_edit_the_profile_with_a_preview_before_saving(http, services, clock, provinces):
    beijing = provinces[2]
    ca_id = register(services, beijing)
    admin = make_admin(services, clock, "ca-ops", ["ca-admin"])
    console_login(http, admin, clock)
    sample = pem(beijing.issue(USCC, org_name="北京示例有限公司").cert)
    form = {"csrf_token": csrf_of(http, f"/admin/cas/{ca_id}/edit"), "name": "Beijing CA", "province": "Beijing",
            "profile": '{"sources": [{"kind": "extension", "oid": "1.2.156.10260.4.4"}]}', "sample": sample}
    # Preview: the trail says the new profile finds nothing in this CA's certificate; nothing saved.
    resp = http.post(f"/admin/cas/{ca_id}/edit", data={**form, "action": "preview"})
    assert resp.status_code == 200
    html = _text(resp)
    assert 'id="preview-result" data-found="no"' in html and "extension 1.2.156.10260.4.4: absent" in html
    assert _actions("admin.ca.") == []
    # Saving it with the sample is refused for the same reason; the form says why.
    resp = http.post(f"/admin/cas/{ca_id}/edit", data={**form, "action": "save"})
    assert resp.status_code == 400 and "finds no legal-person identifier" in _text(resp)
    # The right profile: the preview shows the USCC, then it is saved (303).
    form["profile"] = json.dumps({"sources": [{"kind": "extension", "oid": PRIVATE_OID, "strip_prefixes": ["USCC:"]}]})
    html = _text(http.post(f"/admin/cas/{ca_id}/edit", data={**form, "action": "preview"}))
    assert f'id="preview-uscc">{USCC}<' in html and 'id="preview-name">北京示例有限公司<' in html
    resp = http.post(f"/admin/cas/{ca_id}/edit", data={**form, "name": "北京 CA", "action": "save"})
    assert resp.status_code == 303 and resp.headers["Location"] == f"/admin/cas/{ca_id}?done=saved"
    db.session.expire_all()
    row = services.cas.get(ca_id)
    assert row.name == "北京 CA" and row.profile["sources"][0]["strip_prefixes"] == ["USCC:"]
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "admin.ca.update")).all()
    assert [e.details for e in events] == [{"ca_id": ca_id, "fields": ["name", "profile"],
                                            "checked_on_sample": True}]


def test_disable_and_upload_crls(http, services, clock, provinces):
    fujian = provinces[0]
    ca_id = register(services, fujian)  # with CRL number 1
    admin = make_admin(services, clock, "ca-ops", ["ca-admin"])
    console_login(http, admin, clock)
    resp = http.post(f"/admin/cas/{ca_id}/enabled", data={"csrf_token": csrf_of(http), "enabled": "no"})
    assert resp.status_code == 303 and resp.headers["Location"].endswith("done=disabled")
    assert 'id="ca-status" data-enabled="no"' in _text(http.get(f"/admin/cas/{ca_id}"))
    # A DER file,
    der = make_crl(fujian.intermediate, [11, 12], number=2)
    resp = http.post(f"/admin/cas/{ca_id}/crl", content_type="multipart/form-data",
                     data={"csrf_token": csrf_of(http), "crl_file": (io.BytesIO(der), "issuing.crl")})
    assert resp.status_code == 303 and resp.headers["Location"] == f"/admin/cas/{ca_id}?done=crl_loaded"
    assert 'id="crl-number">2<' in _text(http.get(f"/admin/cas/{ca_id}"))
    # then pasted PEM text.
    resp = http.post(f"/admin/cas/{ca_id}/crl", data={"csrf_token": csrf_of(http),
                                                      "crl_pem": crl_pem(fujian.intermediate, (11,), number=3)})
    assert resp.status_code == 303
    html = _text(http.get(f"/admin/cas/{ca_id}"))
    assert 'id="crl-number">3<' in html and 'data-crl-status="current"' in html
    # An older CRL, another CA's CRL, nothing at all: refused on the page, nothing written.
    for data, message in (({"crl_pem": crl_pem(fujian.intermediate, number=2)}, "older than the one loaded"),
                          ({"crl_pem": crl_pem(provinces[1].intermediate)}, "not issued by this certificate"),
                          ({"crl_pem": ""}, MESSAGES["cas.crl_missing"][0])):
        resp = http.post(f"/admin/cas/{ca_id}/crl", data={"csrf_token": csrf_of(http), **data})
        assert resp.status_code == 400 and message in _text(resp)
    assert _actions("admin.ca.") == ["admin.ca.disable", "admin.ca.load_crl", "admin.ca.load_crl"]
    # Without the CSRF token nothing changes.
    resp = http.post(f"/admin/cas/{ca_id}/enabled", data={"enabled": "yes"})
    assert resp.status_code == 400 and services.cas.get(ca_id).enabled is False


def test_preview_page_with_a_saved_or_typed_profile(http, services, clock, provinces):
    beijing = provinces[2]
    ca_id = register(services, beijing)
    admin = make_admin(services, clock, "watcher", ["auditor"])  # read-only: may test, may not change
    console_login(http, admin, clock)
    page = _text(http.get("/admin/cas/preview", query_string={"ca_id": ca_id}))
    assert f'<option value="{ca_id}" selected>' in page
    sample = pem(beijing.issue(USCC).cert)
    html = _text(http.post("/admin/cas/preview", data={"csrf_token": csrf_of(http), "sample": sample,
                                                       "ca_id": str(ca_id), "profile": ""}))
    assert f'id="preview-uscc">{USCC}<' in html and 'id="preview-issuer-match">' in html
    html = _text(http.post("/admin/cas/preview", data={"csrf_token": csrf_of(http), "sample": sample, "ca_id": "",
                                                       "profile": ""}))
    assert 'data-found="no"' in html and MESSAGES["cas.preview.reason.no_identifier"][0] in html
    resp = http.post("/admin/cas/preview", data={"csrf_token": csrf_of(http), "sample": "junk", "ca_id": ""})
    assert resp.status_code == 400 and "could not be read" in _text(resp)
    resp = http.post("/admin/cas/preview", data={"csrf_token": csrf_of(http), "sample": sample,
                                                 "profile": '{"sources": "x"}'})
    assert resp.status_code == 400 and "non-empty &#39;sources&#39;" in _text(resp)
    detail = _text(http.get(f"/admin/cas/{ca_id}"))
    assert 'id="ca-actions"' not in detail and 'id="ca-new"' not in _text(http.get("/admin/cas"))
    assert _actions("admin.ca.") == []


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


def test_legal_persons_search_detail_and_changes(http, services, clock, provinces, company):
    first, second, mandate_id, key = company
    admin = make_admin(services, clock, "ca-ops", ["ca-admin"])
    console_login(http, admin, clock)
    html = _text(http.get("/admin/legal-persons", query_string={"q": "示例科技"}))
    assert f'data-legal-person-id="{first.legal_person_id}" data-uscc="{USCC}"' in html
    assert 'id="no-legal-persons"' in _text(http.get("/admin/legal-persons", query_string={"q": "91350100"}))
    page = f"/admin/legal-persons/{first.legal_person_id}"
    html = _text(http.get(page))
    assert f'id="legal-person-uscc">{USCC}<' in html and "Guangdong CA" in html
    assert f'data-mandate-id="{mandate_id}" data-state="active"' in html and "alice" in html

    # A conflict flags the first certificate: the page shows it, with a reinstate button.
    with pytest.raises(CertificateRejectedError):
        certificate_login(services, clock, provinces[1].issue(OTHER_USCC, key=key))
    db.session.commit()
    html = _text(http.get(page))
    assert f'data-credential-id="{first.credential_id}" data-status="flagged"' in html and OTHER_USCC in html
    resp = http.post(f"{page}/credentials/{first.credential_id}/reinstate", data={"csrf_token": csrf_of(http)})
    assert resp.status_code == 303 and resp.headers["Location"] == f"{page}?done=reinstated"
    # Unbinding needs the confirmation box.
    url = f"{page}/credentials/{second.credential_id}/unbind"
    assert http.post(url, data={"csrf_token": csrf_of(http)}).status_code == 303
    assert db.session.get(Credential, second.credential_id).status == "active"
    resp = http.post(url, data={"csrf_token": csrf_of(http), "confirm": "yes"})
    assert resp.status_code == 303 and resp.headers["Location"] == f"{page}?done=unbound"
    again = http.post(url, data={"csrf_token": csrf_of(http), "confirm": "yes"})
    assert again.status_code == 409 and 'id="error"' in _text(again)
    resp = http.post(f"{page}/mandates/{mandate_id}/revoke", data={"csrf_token": csrf_of(http)})
    assert resp.status_code == 303
    html = _text(http.get(resp.headers["Location"]))
    assert f'data-credential-id="{second.credential_id}" data-status="revoked"' in html
    assert f'data-mandate-id="{mandate_id}" data-state="revoked"' in html and 'data-done="mandate_revoked"' in html
    assert f'id="unbind-{second.credential_id}"' not in html
    assert _actions("admin.legal.") == ["admin.legal.reinstate", "admin.legal.unbind", "admin.legal.revoke_mandate"]
    assert http.get("/admin/legal-persons/987654").status_code == 404
    assert http.get("/admin/legal-persons/not-a-number").status_code == 404


def test_auditor_sees_legal_persons_without_buttons(http, services, clock, company):
    first, _, _, _ = company
    admin = make_admin(services, clock, "watcher", ["auditor"])
    console_login(http, admin, clock)
    html = _text(http.get(f"/admin/legal-persons/{first.legal_person_id}"))
    assert "Fujian CA" in html and "unbind" not in html and "reinstate" not in html and "revoke" not in html


@pytest.mark.parametrize("role,shown", [("ca-admin", {"cas", "legal_persons"}), ("client-admin", set()),
                                        ("auditor", {"cas", "legal_persons"})])
def test_navigation_entries(http, services, clock, role, shown):
    admin = make_admin(services, clock, "nav", [role])
    console_login(http, admin, clock)
    html = _text(http.get("/admin/"))
    assert set(re.findall(r'id="nav-(cas|legal_persons)"', html)) == shown


def test_dynamic_texts_exist_in_both_languages():
    keys = [f"cas.crl.{s}" for s in ("none", "current", "stale")]
    keys += [f"cas.role.{r}" for r in ("root", "intermediate")]
    keys += [f"cas.preview.source.{s}" for s in ("given", "ca", "default")]
    keys += [f"cas.preview.reason.{r}" for r in ("no_identifier", "malformed_identifier")]
    keys += [f"legal.status.{s}" for s in ("active", "revoked", "flagged")]
    keys += [f"legal.mandate.{s}" for s in ("active", "pending", "expired", "revoked")]
    keys += [f"done.{d}" for d in ("crl_loaded", "unbound", "reinstated", "mandate_revoked", "created", "saved",
                                   "enabled", "disabled")]
    keys += ["nav.cas", "nav.legal"]
    assert [k for k in keys if k not in MESSAGES] == []
