"""Certificate login for legal persons through HTTP (issue 4): challenge-response with
the holder's key, mTLS behind a trusted proxy, cn-l4 / hwk, legal-person claims, the same
company through three provincial CAs, and rejections with specific reasons."""

from __future__ import annotations

import base64
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from common.db import db
from tests.helpers import Browser, decode_unverified, form_field, pkce_pair, query_of
from tests.support.pki import issue_leaf, make_crl, sm2_variant, three_provinces

from ._support import (
    authorize_with_certificate,
    certificate_login,
    mtls_app,
    page_challenge,
    pem,
    register_client,
)

USCC = "91350100M000100Y43"


def bundle(province) -> str:
    return pem(province.root.cert) + pem(province.intermediate.cert)


@pytest.fixture(scope="module")
def provinces():
    return three_provinces()


@pytest.fixture
def cas(services, provinces):
    ids = []
    for p in provinces:
        row = services.cas.add(name=p.name, province=p.province, pem_bundle=bundle(p), profile=p.profile)
        services.cas.load_crl(row.id, make_crl(p.intermediate, revoked=[]))
        ids.append(row.id)
    db.session.commit()
    return ids


@pytest.fixture
def portal(services):
    return register_client(services, name="Enterprise Portal", redirect_uri="https://qy.example.test/cb",
                           scopes=["openid", "legal_person"])


def test_certificate_login_gives_cn_l4_and_legal_person_claims(app, http, cas, portal, provinces):
    leaf = provinces[0].issue(USCC)
    tokens = authorize_with_certificate(http, portal, leaf)
    claims = decode_unverified(tokens["id_token"])
    assert claims["acr"] == "cn-l4" and claims["amr"] == ["hwk"]
    info = http.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]}).get_json()
    assert info["uscc"] == USCC and info["legal_person_name"] == "示例科技有限公司"
    assert info["cert_issuer"] == {"name": "Fujian CA", "province": "Fujian"}
    assert info["sub"] == claims["sub"]


def test_same_company_through_three_cas_gets_one_sub(app, cas, portal, provinces):
    subs = set()
    for p in provinces:
        browser = app.test_client()
        tokens = authorize_with_certificate(browser, portal, p.issue(USCC))
        subs.add(decode_unverified(tokens["id_token"])["sub"])
        info = browser.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]}).get_json()
        assert info["cert_issuer"]["province"] == p.province
    assert len(subs) == 1


def test_wrong_key_replayed_challenge_and_rejections(app, http, cas, provinces, services):
    fujian = provinces[0]
    leaf = fujian.issue(USCC)
    # Proof of possession with another key.
    resp = certificate_login(http, leaf, key=ec.generate_private_key(ec.SECP256R1()))
    assert resp.status_code == 403
    # A challenge can be used once.
    page = http.get("/login/certificate")
    challenge = page_challenge(page.get_data(as_text=True))
    assert certificate_login(http, leaf, challenge=challenge).status_code == 303
    again = certificate_login(http, leaf, challenge=challenge)
    assert again.status_code == 400
    # Revoked: a new CRL lists the certificate.
    revoked = fujian.issue(USCC)
    services.cas.load_crl(cas[0], make_crl(fujian.intermediate, revoked=[revoked.cert.serial_number], number=2))
    db.session.commit()
    resp = certificate_login(app.test_client(), revoked)
    assert resp.status_code == 403 and "证书已被吊销" in resp.get_data(as_text=True)
    # Unknown issuer.
    stranger = three_provinces()[0].issue(USCC)
    resp = certificate_login(app.test_client(), stranger)
    assert resp.status_code == 403 and "不是由已登记的证书认证机构签发" in resp.get_data(as_text=True)
    # A P-256 certificate relabelled as SM2 (issue 10): refused with its own reason, not a crash.
    sm2 = sm2_variant(leaf.cert)
    sm2_pem = "-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(sm2).decode() + "-----END CERTIFICATE-----\n"
    resp = certificate_login(app.test_client(), leaf, certificate=sm2_pem)
    assert resp.status_code == 403 and "不在 SM2 曲线上" in resp.get_data(as_text=True)


def test_login_without_identifier_is_refused(app, cas, provinces):
    leaf = issue_leaf(provinces[0].intermediate)  # no identifier anywhere
    resp = certificate_login(app.test_client(), leaf)
    assert resp.status_code == 403


def test_mtls_header_mode(app, cas, provinces, settings, store, clock, password_hasher, tmp_path):
    mtls = mtls_app(settings, store, clock, password_hasher, tmp_path)
    leaf = provinces[1].issue(USCC)
    header = quote(pem(leaf.cert))
    with mtls.app_context():
        client = mtls.test_client()
        ok = client.get("/login/certificate/mtls", headers={"X-SSL-Client-Cert": header})
        assert ok.status_code == 303
        # The same header from a peer that is not the configured proxy is ignored.
        other = mtls.test_client()
        refused = other.get("/login/certificate/mtls", headers={"X-SSL-Client-Cert": header},
                            environ_base={"REMOTE_ADDR": "10.1.2.3"})
        assert refused.status_code == 403
    # And with mTLS mode off (the default app), the header means nothing.
    assert app.test_client().get("/login/certificate/mtls", headers={"X-SSL-Client-Cert": header}).status_code == 403


def test_agent_acts_for_the_company_with_act_claim(app, http, cas, portal, provinces, services, user, clock):
    from datetime import timedelta

    company_tokens = authorize_with_certificate(app.test_client(), portal, provinces[0].issue(USCC))
    company_sub = decode_unverified(company_tokens["id_token"])["sub"]
    company_id = services.legal.find_by_uscc(USCC).id
    alice = services.accounts.find_by_identifier("alice")
    services.legal.grant_by_admin("root", agent_account_id=alice.id, legal_person_id=company_id, scope=["tax"],
                                  valid_until=clock.now() + timedelta(days=30))
    db.session.commit()

    def run(choice_of):
        browser = app.test_client()
        verifier, challenge = pkce_pair()
        resp = browser.get("/authorize", query_string={
            "response_type": "code", "client_id": portal.client_id, "redirect_uri": portal.redirect_uri,
            "scope": "openid legal_person", "state": "s", "code_challenge": challenge,
            "code_challenge_method": "S256"})
        page = browser.get(resp.headers["Location"])
        resp = Browser(browser).login(page, user)
        seen_picker = False
        for _ in range(6):
            location = resp.headers["Location"]
            if location.startswith(portal.redirect_uri):
                break
            if location.startswith("/login/act-as"):
                seen_picker = True
                html = browser.get(location).get_data(as_text=True)
                assert "示例科技有限公司" in html and USCC in html
                resp = browser.post("/login/act-as", data={"csrf_token": form_field(html, "csrf_token"),
                                                           "interaction": form_field(html, "interaction"),
                                                           "acting_for": choice_of(company_id)})
            elif location.startswith("/consent"):
                resp = Browser(browser).consent(browser.get(location))
            else:
                resp = browser.get(location)
        assert seen_picker
        tokens = browser.post("/token", data={"grant_type": "authorization_code", "code": query_of(location)["code"],
                                              "redirect_uri": portal.redirect_uri, "code_verifier": verifier},
                              auth=portal.auth).get_json()
        info = browser.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]}).get_json()
        return decode_unverified(tokens["id_token"]), info

    claims, info = run(str)
    # RFC 8693 §4.1: the company is the subject, the citizen the actor.
    assert claims["sub"] == company_sub and claims["act"]["sub"] != company_sub
    assert info["uscc"] == USCC and info["act"] == claims["act"] and "cert_issuer" not in info
    assert claims["amr"] == ["pwd"]
    own, own_info = run(lambda c: "self")
    assert own["sub"] == claims["act"]["sub"] and "act" not in own and "uscc" not in own_info


def test_company_grants_and_revokes_a_mandate_from_its_certificate_session(app, cas, provinces, services, user):
    company_browser = app.test_client()
    resp = certificate_login(company_browser, provinces[2].issue(USCC))
    assert resp.status_code == 303 and resp.headers["Location"] == "/company"
    page = company_browser.get("/company")
    html = page.get_data(as_text=True)
    assert USCC in html and "示例科技有限公司" in html
    granted = company_browser.post("/company/mandates", data={"csrf_token": form_field(html, "csrf_token"),
                                                              "agent": "alice", "scope": "tax social", "days": "30"})
    assert granted.status_code == 303
    alice = services.accounts.find_by_identifier("alice")
    acting = services.legal.active_for(alice.id)
    assert [a.uscc for a in acting] == [USCC] and acting[0].scope == ("tax", "social")
    mandate = services.legal.mandates_of(acting[0].legal_person_id)[0]
    assert mandate.granted_by.startswith("certificate:")
    # Unknown agent → form error, nothing granted.
    bad = company_browser.post("/company/mandates", data={"csrf_token": form_field(html, "csrf_token"),
                                                          "agent": "nobody-here", "scope": "tax", "days": "30"})
    assert bad.status_code == 400
    html = company_browser.get("/company").get_data(as_text=True)
    revoked = company_browser.post(f"/company/mandates/{mandate.id}/revoke",
                                   data={"csrf_token": form_field(html, "csrf_token")})
    assert revoked.status_code == 303
    assert services.legal.active_for(alice.id) == []
    # A citizen's session cannot open the company page.
    citizen = app.test_client()
    Browser(citizen).login(citizen.get("/login"), user)
    assert citizen.get("/company").headers["Location"] == "/login/certificate"


def test_rejection_reasons_are_in_the_page_language(app, cas, provinces):
    leaf = issue_leaf(provinces[0].intermediate)  # no identifier
    zh = certificate_login(app.test_client(), leaf).get_data(as_text=True)
    assert "证书中没有法人标识" in zh and "does not carry" not in zh
    en = certificate_login(app.test_client(), leaf, lang="en").get_data(as_text=True)
    assert "does not carry a legal-person identifier" in en
