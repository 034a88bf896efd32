"""Console and admin API with SM2 certificate authorities (issue 10): an SM2 CA and a mixed
one (RSA root, SM2 intermediate) register from the console form, the CA page shows the key
and signature algorithm of every certificate and both SM2 signer IDs, an SM2-signed CRL
uploads, the profile preview names a sample's algorithm, and the API returns the same."""

from __future__ import annotations

import json
import re

import pytest

from certificates.mapping import DEFAULT_PROFILE
from tests.support.gm_pki import DEFAULT_DISTID, OTHER_DISTID, has_openssl_sm2, openssl_verify_crl

from ._admin_api import API, admin_headers
from ._console import console_login, csrf_of, make_admin

pytestmark = pytest.mark.skipif(not has_openssl_sm2(), reason="this machine's openssl cannot make SM2 keys")


def _text(resp) -> str:
    return str(resp.get_data(as_text=True))


def _register(http, ca, profile: str = "") -> str:
    resp = http.post("/admin/cas/new", data={"csrf_token": csrf_of(http, "/admin/cas/new"), "name": ca.name,
                                             "province": ca.province, "pem_bundle": ca.bundle_pem.decode(),
                                             "profile": profile, "crl_urls": "", "ocsp_url": ""})
    assert resp.status_code == 303, _text(resp)[-800:]
    return str(resp.headers["Location"]).split("?")[0]


def test_sm2_and_mixed_cas_show_the_algorithm_of_each_link(http, services, clock, gm_pki):
    admin = make_admin(services, clock, "ca-ops", ["ca-admin"])
    console_login(http, admin, clock)
    page = _register(http, gm_pki.sm2)
    html = _text(http.get(page))
    assert html.count('data-key-algorithm="SM2"') == 2 and html.count("SM2-with-SM3") == 2
    assert f'id="ca-sm2-signer-id"><code>{DEFAULT_DISTID}<' in html
    assert "not yet supported" not in html and "暂不支持" not in html
    mixed = _text(http.get(_register(http, gm_pki.mixed_rsa_root)))
    assert 'data-key-algorithm="RSA-' in mixed and 'data-key-algorithm="SM2"' in mixed
    assert "sha256WithRSAEncryption" in mixed  # the root's self-signature and the intermediate's

    # An SM2-signed CRL uploads (pasted PEM) and its state is shown.
    crl = gm_pki.crl("sm2")
    assert openssl_verify_crl(crl, gm_pki.sm2.intermediate_pem, DEFAULT_DISTID)
    import base64

    crl_pem = "-----BEGIN X509 CRL-----\n" + base64.encodebytes(crl).decode() + "-----END X509 CRL-----\n"
    resp = http.post(page + "/crl", data={"csrf_token": csrf_of(http, page), "crl_pem": crl_pem})
    assert resp.status_code == 303, _text(resp)[-800:]
    assert 'data-crl-status="current"' in _text(http.get(page))

    # The preview names the sample's algorithm.
    preview = http.post("/admin/cas/preview", data={"csrf_token": csrf_of(http, "/admin/cas/preview"),
                                                    "sample": gm_pki.leaves["sm2"].cert_pem.decode(), "profile": "",
                                                    "ca_id": page.rsplit("/", 1)[1]})
    assert 'id="preview-algorithm" data-key-algorithm="SM2"' in _text(preview), _text(preview)[-800:]


def test_sm2_ca_with_another_signer_id_from_the_form(http, services, clock, gm_pki):
    admin = make_admin(services, clock, "ca-ops", ["ca-admin"])
    console_login(http, admin, clock)
    other = gm_pki.sm2_other
    # Without the signer ID the form says what to set, and nothing is registered.
    resp = http.post("/admin/cas/new", data={"csrf_token": csrf_of(http, "/admin/cas/new"), "name": other.name,
                                             "province": other.province, "pem_bundle": other.bundle_pem.decode(),
                                             "profile": "", "crl_urls": "", "ocsp_url": ""})
    assert resp.status_code == 400 and "sm2_signer_id" in _text(resp)
    profile = json.dumps({**json.loads(DEFAULT_PROFILE.to_json()), "sm2_signer_id": OTHER_DISTID})
    html = _text(http.get(_register(http, other, profile)))
    assert f'id="ca-sm2-signer-id"><code>{OTHER_DISTID}<' in html


def test_api_returns_algorithms_and_signer_ids(http, services, clock, gm_pki):
    headers = admin_headers(services, clock)("ca-admin")
    created = http.post(f"{API}/cas", headers=headers, json={
        "name": gm_pki.sm2.name, "province": gm_pki.sm2.province, "pem_bundle": gm_pki.sm2.bundle_pem.decode()})
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert [(c["key_algorithm"], c["signature_algorithm"]) for c in body["certificates"]] == [
        ("SM2", "SM2-with-SM3"), ("SM2", "SM2-with-SM3")]
    assert body["profile"]["sm2_signer_id"] == DEFAULT_DISTID == body["profile"]["sm2_holder_signer_id"]
    assert re.fullmatch(r"\d+", str(body["id"]))


def test_legal_person_page_names_each_credentials_algorithm(http, services, clock, gm_pki):
    from certificates.validation import CertificateValidator
    from common.db import db

    admin = make_admin(services, clock, "legal-ops", ["ca-admin", "legal-admin"])
    console_login(http, admin, clock)
    identities = []
    for ca_key, leaf in (("rsa", "rsa"), ("sm2", "sm2")):
        row = services.cas.add(name=gm_pki.cas[ca_key].name, province=gm_pki.cas[ca_key].province,
                               pem_bundle=gm_pki.cas[ca_key].bundle_pem)
        services.cas.load_crl(row.id, gm_pki.crl(ca_key))
        validated = CertificateValidator(clock).validate(gm_pki.leaves[leaf].cert_der, [], services.cas.trusted(),
                                                         production=False)
        identities.append(services.legal.resolve(validated))
        db.session.commit()
    # One company, two provinces' certificates (RSA and SM2): one legal person.
    assert identities[0].legal_person_id == identities[1].legal_person_id
    html = _text(http.get(f"/admin/legal-persons/{identities[0].legal_person_id}"))
    cells = re.findall(r'<td class="algorithm">([^<]*)</td>', html)
    assert sorted(cells) == ["RSA-2048 / sha256WithRSAEncryption", "SM2 / SM2-with-SM3"], cells
