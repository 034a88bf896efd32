"""SM2 certificate login through HTTP (issue 10) on the PKI made by OpenSSL 3's command line
(tests/support/gm_pki.py): the challenge signed by ``openssl pkeyutl`` with SM2/SM3 and the
Z value of the signer ID (GB/T 32918.2 §5.5, GM/T 0009 §10), in the DER ``SEQUENCE {r, s}``
form (GB/T 35276 §7.3) and the raw 64-octet r ‖ s; the same company through an RSA, an ECDSA
and an SM2 CA as one legal person with one pairwise ``sub`` (OIDC Core §8.1); every refusal
with its own reason on the page (zh and en), a 403 and a ``certificate.rejected`` audit event;
mTLS header mode with an SM2 client certificate. Every signature a login accepts is also
verified by ``openssl`` in the same test, so a wrong Z value cannot pass unnoticed."""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest

from certificates.mapping import DEFAULT_PROFILE, MappingProfile
from certificates.proof import signed_bytes
from common.db import db
from tests.helpers import decode_unverified
from tests.support.gm_pki import (
    COMPANY,
    DEFAULT_DISTID,
    OTHER_DISTID,
    USCC,
    GmPki,
    der_children,
    has_openssl_sm2,
    openssl_verify,
)

from ._support import (
    authorize_with_certificate,
    bearer,
    certificate_login,
    certificate_rejections,
    form_error,
    mtls_app,
    register_client,
)

pytestmark = pytest.mark.skipif(not has_openssl_sm2(), reason="this machine's openssl cannot make SM2 keys")


# -- the operator's side ------------------------------------------------------------------


def _profile(**overrides: object) -> MappingProfile:
    return MappingProfile.from_dict({**json.loads(DEFAULT_PROFILE.to_json()), **overrides})


def register(services: Any, pki: GmPki, key: str, **profile: object) -> int:
    """Register one of the PKI's provincial CAs with its CRL (RFC 5280 §5); a CA whose own
    SM2 signatures use another signer ID gets it in its profile, as an operator would."""
    ca = pki.cas[key]
    if ca.distid != DEFAULT_DISTID:
        profile.setdefault("sm2_signer_id", ca.distid)
    row = services.cas.add(name=ca.name, province=ca.province, pem_bundle=ca.bundle_pem,
                           profile=_profile(**profile) if profile else None)
    services.cas.load_crl(row.id, pki.crl(key))
    db.session.commit()
    return int(row.id)


@pytest.fixture
def cas(services: Any, gm_pki: GmPki) -> dict[str, int]:
    """Three provinces, three algorithms: Guangdong RSA, Jiangsu ECDSA P-256, Zhejiang SM2."""
    return {key: register(services, gm_pki, key) for key in ("rsa", "ecdsa", "sm2")}


@pytest.fixture
def portal(services: Any) -> Any:
    return register_client(services, name="Enterprise Portal", redirect_uri="https://qy.example.test/cb",
                           scopes=["openid", "legal_person"])


# -- the holder's side: its UKey is `openssl pkeyutl` ---------------------------------------


def _b64(signature: bytes) -> str:
    return base64.b64encode(signature).decode()


@dataclass
class GmHolder:
    """A gm_pki leaf's holder. Signs the challenge with ``openssl pkeyutl`` (SM2/SM3 with
    ``distid``, DER or ``raw`` r ‖ s; RSA and ECDSA with SHA-256) using the key of ``signer``
    (default: the leaf's own), then ``alter``s and ``encode``s the signature as a broken
    middleware might. Keeps each (signed bytes, signature) for the openssl cross-check."""

    pki: GmPki
    leaf: str
    signer: str | None = None
    distid: str = DEFAULT_DISTID
    raw: bool = False
    alter: Callable[[bytes], bytes] | None = None
    encode: Callable[[bytes], str] = _b64
    with_chain: bool = False
    signed: list[tuple[bytes, bytes]] = field(default_factory=list)

    @property
    def certificate(self) -> str:
        return self.pki.leaves[self.leaf].cert_pem.decode()

    @property
    def chain(self) -> str:
        return self.pki.cas[self.pki.leaves[self.leaf].ca].intermediate_pem.decode() if self.with_chain else ""

    def sign(self, challenge: str) -> str:
        data = signed_bytes(challenge)
        signature = self.pki.sign(self.signer or self.leaf, data, distid=self.distid, raw=self.raw)
        self.signed.append((data, signature))
        return self.encode(self.alter(signature) if self.alter else signature)


def openssl_accepts(holder: GmHolder, *, distid: str | None = None) -> bool:
    """OpenSSL verifies every signature ``holder`` made with its certificate's key, with
    ``distid`` (default: the one it signed with)."""
    leaf = holder.pki.leaves[holder.leaf]
    digest = "sm3" if leaf.key_algorithm == "sm2" else "sha256"
    assert holder.signed
    return all(openssl_verify(leaf.cert_pem, signature, data, distid=distid or holder.distid, digest=digest,
                              raw=holder.raw)
               for data, signature in holder.signed)


# Malformed encodings of a real DER signature (X.690 §8.1.3, §8.3, §10.1).
def _truncated(signature: bytes) -> bytes:
    # Half of it, as a bad copy and paste leaves it. Not "a few octets short": a DER
    # signature of 69 octets (r or s below 2^247) cut by 5 is 64 octets, which the page
    # must take for a raw r ‖ s, and is refused as a bad signature instead.
    return signature[: len(signature) // 2]


def _long_form_length(signature: bytes) -> bytes:
    # SEQUENCE length 0x81 LL: valid BER, not DER (short form is required below 128).
    return b"\x30\x81" + signature[1:]


def _padded_r(signature: bytes) -> bytes:
    # r with one superfluous leading zero octet: valid BER, not DER, whatever r's high bit.
    r, s = der_children(signature)
    padded = b"\x02" + bytes([r[1] + 1]) + b"\x00" + r[2:]
    return b"\x30" + bytes([len(padded) + len(s)]) + padded + s


def _labelled(signature: bytes) -> str:
    return "base64:" + _b64(signature)


def _refused(resp: Any, text: str) -> str:
    assert resp.status_code == 403, (resp.status_code, resp.get_data(as_text=True)[-600:])
    shown = form_error(resp)
    assert text in shown, shown
    return shown


def _last_rejection() -> Any:
    events = certificate_rejections()
    assert events, "no certificate.rejected audit event"
    return events[-1]


# -- logging in ---------------------------------------------------------------------------------


def test_sm2_certificate_logs_in_with_der_and_raw_signatures(app, cas, portal, gm_pki):
    subs = set()
    for raw in (False, True):
        # The second time the holder also pastes the (optional) issuing CA certificate.
        holder = GmHolder(gm_pki, "sm2", raw=raw, with_chain=raw)
        browser = app.test_client()
        tokens = authorize_with_certificate(browser, portal, holder)
        # GM/T 0009 §7.3 / GB/T 35276 §7.3: what was posted is the form under test.
        [(_, signature)] = holder.signed
        assert len(signature) == 64 if raw else signature[0] == 0x30
        assert openssl_accepts(holder)
        claims = decode_unverified(tokens["id_token"])
        # DESIGN.md §5: a qualified certificate is cn-l4; RFC 8176 §2: hwk.
        assert claims["acr"] == "cn-l4" and claims["amr"] == ["hwk"]
        info = browser.get("/userinfo", headers=bearer(tokens["access_token"])).get_json()
        assert info["sub"] == claims["sub"]
        assert info["uscc"] == USCC and info["legal_person_name"] == COMPANY
        assert info["cert_issuer"] == {"name": gm_pki.sm2.name, "province": gm_pki.sm2.province}
        subs.add(claims["sub"])
    assert len(subs) == 1
    assert certificate_rejections() == []


def test_same_company_through_rsa_ecdsa_and_sm2_cas_is_one_legal_person_with_one_sub(
        app, services, cas, portal, gm_pki):
    subs = {}
    for key in ("rsa", "ecdsa", "sm2"):
        holder = GmHolder(gm_pki, key)
        browser = app.test_client()
        tokens = authorize_with_certificate(browser, portal, holder)
        assert openssl_accepts(holder)
        info = browser.get("/userinfo", headers=bearer(tokens["access_token"])).get_json()
        assert info["uscc"] == USCC and info["cert_issuer"]["province"] == gm_pki.cas[key].province
        subs[key] = decode_unverified(tokens["id_token"])["sub"]
    # OIDC Core §8.1, DESIGN.md §8: one legal person, one pairwise sub at this portal.
    assert len(set(subs.values())) == 1, subs
    company = services.legal.find_by_uscc(USCC)
    credentials = services.legal.credentials(company.id)
    assert sorted(c.ca_id for c in credentials) == sorted(cas.values())


# -- refusals -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    holder: dict[str, Any]  # GmHolder arguments
    reason: str  # the audited reason
    zh: str  # on the page in Chinese (the default)
    en: str  # and with lang=en
    at_proof: bool = True  # refused at the proof of possession, not at path validation
    # What openssl says of the signature as made, before it was altered or re-encoded:
    # good when only the encoding is at fault, bad for another key's signature.
    openssl_accepts: bool | None = None


BAD_PROOF_ZH, BAD_PROOF_EN = "签名与挑战值或证书不符", "The signature does not match the challenge or the certificate."
REJECTED_ZH, REJECTED_EN = "证书未通过验证。", "The certificate was not accepted."
NOT_CANONICAL_ZH, NOT_CANONICAL_EN = "签名不是规范的 DER 编码", "The signature is not in canonical DER encoding."

REFUSALS = {
    # Signed by another company's SM2 key: well-formed, does not verify (GB/T 32918.2 §7).
    "wrong_key": Refusal({"leaf": "sm2", "signer": "sm2_other_company"}, "bad_signature_proof",
                         BAD_PROOF_ZH, BAD_PROOF_EN, openssl_accepts=False),
    "truncated": Refusal({"leaf": "sm2", "alter": _truncated}, "signature_truncated",
                         "签名不完整（被截断）", "The signature is incomplete (truncated).", openssl_accepts=True),
    "long_form_length": Refusal({"leaf": "sm2", "alter": _long_form_length}, "signature_not_canonical",
                                NOT_CANONICAL_ZH, NOT_CANONICAL_EN, openssl_accepts=True),
    "padded_integer": Refusal({"leaf": "sm2", "alter": _padded_r}, "signature_not_canonical",
                              NOT_CANONICAL_ZH, NOT_CANONICAL_EN, openssl_accepts=True),
    "not_base64": Refusal({"leaf": "sm2", "encode": _labelled}, "signature_not_base64",
                          "签名不是有效的 Base64 文本", "The signature is not valid Base64 text.", openssl_accepts=True),
    # GM/T 0015: the encryption half of the UKey's certificate pair.
    "encryption_certificate": Refusal({"leaf": "sm2_encryption"}, "encryption_certificate",
                                      "这是加密证书；请使用同一 UKey 中的签名证书登录。",
                                      "This is an encryption certificate; log in with the signing certificate",
                                      at_proof=False),
    # SPKI says SM2 but names P-256 and holds a P-256 point (GB/T 32918.1 §6.2).
    "mislabelled_curve": Refusal({"leaf": "sm2_curve_mislabel"}, "sm2_wrong_curve",
                                 "证书的 SM2 密钥或签名不在 SM2 曲线上。",
                                 "The certificate's SM2 key or signature is not on the SM2 curve.", at_proof=False),
    # RFC 5280 §6.3: on the SM2-signed CRL.
    "revoked": Refusal({"leaf": "sm2_revoked"}, "revoked", "证书已被吊销。", "The certificate has been revoked.",
                       at_proof=False),
    # RFC 5280 §6.1.3 (a)(2).
    "expired": Refusal({"leaf": "sm2_expired"}, "expired", "证书已过期。", "The certificate has expired.",
                       at_proof=False),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_each_sm2_refusal_has_its_own_reason_page_and_audit_event(app, cas, gm_pki, case):
    refusal = REFUSALS[case]
    holder = GmHolder(gm_pki, **refusal.holder)
    for lang, text in ((None, refusal.zh), ("en", refusal.en)):
        browser = app.test_client()
        shown = _refused(certificate_login(browser, holder, lang=lang), text)
        # The general sentence comes first, in the same language, and only that language.
        general = (BAD_PROOF_ZH, BAD_PROOF_EN) if refusal.at_proof else (REJECTED_ZH, REJECTED_EN)
        assert shown.startswith(general[lang == "en"]) and general[lang != "en"] not in shown, shown
        event = _last_rejection()
        assert (event.reason, event.outcome, event.actor) == (refusal.reason, "denied", "anonymous")
        # Past path validation, the trail says which CA's certificate failed the proof.
        assert event.details == ({"ca_id": cas["sm2"]} if refusal.at_proof else {})
        # Nobody is logged in.
        assert browser.get("/company").headers["Location"] == "/login/certificate"
    assert len(certificate_rejections()) == 2
    if refusal.openssl_accepts is not None:
        assert openssl_accepts(holder) is refusal.openssl_accepts


@pytest.mark.parametrize("known_as", ["sm2_holder_signer_id", "sm2_signer_id"])
def test_signature_with_another_signer_id_is_refused_as_such(app, services, cas, gm_pki, known_as):
    """GM/T 0009 §10: Zhejiang's holders sign with the default ID. A signature made with
    another ID that a registered CA uses - Fujian's, named in its profile for its holders,
    or only for its own signatures - is named as a signer-ID mismatch, not as a wrong
    signature."""
    register(services, gm_pki, "sm2_other", **{known_as: OTHER_DISTID})
    holder = GmHolder(gm_pki, "sm2", distid=OTHER_DISTID)
    _refused(certificate_login(app.test_client(), holder), "签名使用了与该证书认证机构规定不同的 SM2 签名者标识")
    event = _last_rejection()
    assert (event.reason, event.details) == ("sm2_signer_id", {"ca_id": cas["sm2"]})
    _refused(certificate_login(app.test_client(), GmHolder(gm_pki, "sm2", distid=OTHER_DISTID), lang="en"),
             "another SM2 signer ID than the certificate authority specifies")
    # OpenSSL agrees: a good signature with the other ID, not with the default one.
    assert openssl_accepts(holder) and not openssl_accepts(holder, distid=DEFAULT_DISTID)


def test_ca_whose_holders_use_another_signer_id_accepts_that_id_only(app, services, gm_pki, portal):
    register(services, gm_pki, "sm2", sm2_holder_signer_id=OTHER_DISTID)
    holder = GmHolder(gm_pki, "sm2", distid=OTHER_DISTID)
    tokens = authorize_with_certificate(app.test_client(), portal, holder)
    assert decode_unverified(tokens["id_token"])["acr"] == "cn-l4"
    assert openssl_accepts(holder) and not openssl_accepts(holder, distid=DEFAULT_DISTID)
    # The GM/T 0009 default is now the wrong ID for this CA's holders.
    default = GmHolder(gm_pki, "sm2")
    _refused(certificate_login(app.test_client(), default), "SM2 签名者标识")
    assert _last_rejection().reason == "sm2_signer_id"
    assert openssl_accepts(default)


# -- mTLS header mode ----------------------------------------------------------------------------


def test_mtls_header_mode_with_an_sm2_client_certificate(app, cas, gm_pki, settings, store, clock,
                                                         password_hasher, tmp_path):
    """GB/T 38636 (TLCP) proxies forward the client certificate like TLS ones: leaf first,
    then its chain, URL-encoded PEM in the configured header."""
    mtls = mtls_app(settings, store, clock, password_hasher, tmp_path)

    def header(leaf: str) -> dict[str, str]:
        chain = gm_pki.leaves[leaf].cert_pem + gm_pki.sm2.intermediate_pem
        return {"X-SSL-Client-Cert": quote(chain.decode())}

    with mtls.app_context():
        client = mtls.test_client()
        ok = client.get("/login/certificate/mtls", headers=header("sm2"))
        assert (ok.status_code, ok.headers["Location"]) == (303, "/company")
        company = client.get("/company").get_data(as_text=True)
        assert USCC in company and html.escape(COMPANY) in company
        # The encryption certificate of the pair is refused with its own reason, in either language.
        for query, text in (("", "这是加密证书"), ("?lang=en", "This is an encryption certificate")):
            other = mtls.test_client()
            refused = other.get("/login/certificate/mtls" + query, headers=header("sm2_encryption"))
            _refused(refused, text)
            assert _last_rejection().reason == "encryption_certificate"
            assert other.get("/company").headers["Location"] == "/login/certificate"
    assert len(certificate_rejections()) == 2


# -- the page ------------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", [None, "en"])
def test_page_says_which_signature_format_it_expects(http, lang):
    page = http.get("/login/certificate", query_string={"lang": lang} if lang else None).get_data(as_text=True)
    assert 'aria-describedby="signature-format"' in page
    match = re.search(r'<p class="hint" id="signature-format">([^<]+)</p>', page)
    assert match is not None, page
    hint = html.unescape(match.group(1))
    for needle in ("SM2", "SM3", "DER", "SEQUENCE {r, s}", "r‖s", "64", DEFAULT_DISTID):
        assert needle in hint, (needle, hint)
    assert ("签名" in hint) == (lang is None), hint
