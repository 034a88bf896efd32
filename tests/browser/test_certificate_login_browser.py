"""Legal-person certificate login in a real browser (issue 4): a company's certificates
from three provincial CAs, registered through the operator CLI, each log it in through
the challenge-response page with scripts/sign_challenge.py as the signer — in Debian's
chromium against a gunicorn-served IdP, with pyoidc (an independent RP) validating the ID
token (OIDC Core §3.1.3.7) and fetching userinfo. The same legal person gets one `sub`
whatever the CA ("一证通用"), also when one certificate is RSA and the other SM2 (issue 10,
signed by the tool with an SM2 PKCS#8 key and an SM2 PKCS#12); a revoked certificate is
refused with its reason."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from playwright.sync_api import BrowserContext, Page

from certificates.mapping import DEFAULT_PROFILE
from certificates.proof import signed_bytes
from tests.live import ROOT
from tests.support import gm_pki as gm
from tests.support.pki import Leaf, Province, make_crl, three_provinces

from .conftest import PageLog
from .pages import Traffic, arrive, land_on_rp
from .relying_party import RelyingParty

pytestmark = [pytest.mark.browser, pytest.mark.live]

USCC = "91350100M000100Y43"  # GB 32100-2015, check character valid
COMPANY = "示例科技有限公司"  # the organisation name tests.support.pki puts in every leaf
SCOPE = "openid legal_person"
SCREENSHOT = Path("/tmp/yiwang-cert.png")  # noqa: S108 - a fixed path the reviewer looks at
SIGNER = ROOT / "scripts" / "sign_challenge.py"
P12_PASSWORD = "ukey-pin-1234"  # noqa: S105 - a throwaway test PKCS#12 password

MakeContext = Callable[..., BrowserContext]
MakeRp = Callable[..., RelyingParty]


# -- the operator's side: CAs, CRLs, the portal --------------------------------------------


def pem(cert: Any) -> bytes:
    return bytes(cert.public_bytes(serialization.Encoding.PEM))


def certificate_pem(leaf: Leaf | gm.GmLeaf) -> bytes:
    return leaf.cert_pem if isinstance(leaf, gm.GmLeaf) else pem(leaf.cert)


@pytest.fixture
def provinces() -> list[Province]:
    return three_provinces()


@pytest.fixture
def ca_ids(live_idp: Any, provinces: list[Province], tmp_path: Path) -> list[int]:
    """Each provincial CA registered as an operator would: its root + intermediate bundle,
    the custom mapping profile where it needs one, and an empty CRL (RFC 5280 §5)."""
    ids = []
    for n, p in enumerate(provinces):
        bundle = tmp_path / f"ca-{n}.pem"
        bundle.write_bytes(pem(p.root.cert) + pem(p.intermediate.cert))
        args = ["certificates", "ca", "add", "--name", p.name, "--province", p.province, "--pem", str(bundle)]
        if p.profile is not DEFAULT_PROFILE:  # Beijing: the identifier is in a CA-private extension
            profile = tmp_path / f"ca-{n}.profile.json"
            profile.write_text(p.profile.to_json(), encoding="utf-8")
            args += ["--profile", str(profile)]
        added = live_idp.cli(*args)
        assert (added["name"], added["province"], added["enabled"]) == (p.name, p.province, True), added
        assert len(added["roots"]) == 1 and len(added["intermediates"]) == 1, added
        loaded = load_crl(live_idp, tmp_path, added["id"], make_crl(p.intermediate))
        assert (loaded["crl_number"], loaded["entries"]) == (1, 0), loaded
        ids.append(added["id"])
    return ids


def load_crl(idp: Any, tmp_path: Path, ca_id: int, der: bytes) -> Any:
    path = tmp_path / f"crl-{ca_id}-{len(list(tmp_path.glob('crl-*')))}.der"
    path.write_bytes(der)
    return idp.cli("certificates", "crl", "load", "--ca", str(ca_id), str(path))


@pytest.fixture
def portal(relying_party: MakeRp) -> RelyingParty:
    return relying_party("企业服务门户", scopes=("openid", "legal_person"))


# -- the holder's side: the signer tool ----------------------------------------------------


def sign_with_tool(leaf: Leaf | gm.GmLeaf, challenge: str, tmp_path: Path, *, p12: bool = False) -> str:
    """Run scripts/sign_challenge.py as the holder would, with the key as a PKCS#8 PEM file
    or, like a UKey export, inside a password-protected PKCS#12 (RFC 7292). A gm_pki leaf
    brings its own files, written by OpenSSL's CLI (SM2 keys included)."""
    env = {"PATH": "/usr/bin:/bin"}
    if isinstance(leaf, gm.GmLeaf):
        keyfile, password = (leaf.p12_path, gm.P12_PASSWORD) if p12 else (leaf.key_path, "")
        assert keyfile is not None, f"{leaf.name} has no PKCS#12 file"
    elif p12:
        keyfile, password = tmp_path / "company.p12", P12_PASSWORD
        keyfile.write_bytes(
            pkcs12.serialize_key_and_certificates(
                b"company", leaf.key, leaf.cert, None, serialization.BestAvailableEncryption(P12_PASSWORD.encode())
            )
        )
    else:
        keyfile, password = tmp_path / "company-key.pem", ""
        keyfile.write_bytes(
            leaf.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    if p12:
        env["UKEY_PIN"] = password
        args = ["--p12", str(keyfile), "--password-env", "UKEY_PIN"]
    else:
        args = ["--key", str(keyfile)]
    out = subprocess.run(
        [sys.executable, str(SIGNER), *args, challenge],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


# -- the browser ---------------------------------------------------------------------------





def open_certificate_page(page: Page, idp: Any, rp: RelyingParty, log: PageLog) -> str:
    """From the portal to Yiwang's login page, then to certificate login; the challenge."""
    page.goto(rp.login_url(scope=SCOPE))
    arrive(page, idp.issuer, "/login", log)
    page.click("#certificate-link")
    arrive(page, idp.issuer, "/login/certificate", log)
    return read_challenge(page)


def read_challenge(page: Page) -> str:
    challenge = page.inner_text("#challenge").strip()
    assert challenge and challenge == page.input_value("input[name=challenge]"), challenge
    # The holder passes it to the signer on a command line: it must not look like an option.
    assert not challenge.startswith("-"), challenge
    return challenge


def submit_certificate(page: Page, leaf: Leaf | gm.GmLeaf, signature: str, screenshot: Path | None = None) -> None:
    """Paste the certificate and the signature as the holder would, and submit."""
    page.fill("#certificate", certificate_pem(leaf).decode())
    page.fill("#signature", signature)
    if screenshot is not None:
        page.screenshot(path=str(screenshot), full_page=True)
    page.click("#certificate-submit")


def certificate_login(
    page: Page,
    idp: Any,
    rp: RelyingParty,
    leaf: Leaf | gm.GmLeaf,
    log: PageLog,
    tmp_path: Path,
    *,
    p12: bool = False,
    screenshot: Path | None = None,
) -> tuple[str, str]:
    """Certificate login that must be accepted: on to the consent page or the portal.
    Returns the challenge and the signature the tool made of it."""
    challenge = open_certificate_page(page, idp, rp, log)
    signature = sign_with_tool(leaf, challenge, tmp_path, p12=p12)
    submit_certificate(page, leaf, signature, screenshot)
    # Fail with the page's reason, not a timeout, when the certificate is refused.
    page.wait_for_selector("#form-error, #consent-allow, #rp")
    refused = page.locator("#form-error")
    assert refused.count() == 0, f"certificate refused: {refused.inner_text()}"
    return challenge, signature


# -- tests ---------------------------------------------------------------------------------


def test_same_company_through_three_provincial_cas_is_one_legal_person(
    live_idp: Any,
    ca_ids: list[int],
    provinces: list[Province],
    portal: RelyingParty,
    new_context: MakeContext,
    page_log: PageLog,
    tmp_path: Path,
) -> None:
    subs = []
    for n, province in enumerate(provinces):
        # A fresh browser (no Yiwang session) each time: the company's UKey from this CA.
        context = new_context(locale="zh-CN")
        traffic = Traffic(context)
        page = context.new_page()
        leaf = province.issue(USCC)
        certificate_login(
            page, live_idp, portal, leaf, page_log, tmp_path, p12=(n == 2), screenshot=SCREENSHOT if n == 0 else None
        )
        if n == 0:
            # First time this legal person meets this portal: consent to the legal_person scope.
            arrive(page, live_idp.issuer, "/consent", page_log)
            assert "统一社会信用代码" in page.inner_text("ul.scopes"), page.inner_text("ul.scopes")
            page.click("#consent-allow")
        login = land_on_rp(page, portal, page_log)

        visited = traffic.paths(live_idp.issuer)
        for path in ("/authorize", "/login", "/login/certificate"):
            assert path in visited, (path, visited)
        # The consent given with the first CA's certificate belongs to the legal person, so
        # certificates from the other CAs are recognised as the same one: no second consent.
        assert ("/consent" in visited) == (n == 0), visited
        sent = traffic.authorization_request(live_idp.issuer)
        assert sent["scope"] == [SCOPE]
        # RFC 6749 §4.1.2: state echoed; RFC 9207 §2: the response names its issuer.
        assert login.params["state"] == sent["state"][0]
        assert login.params["iss"] == live_idp.issuer
        idt = login.id_token
        assert idt is not None
        # OIDC Core §3.1.3.7 (pyoidc checked the signature, iss, aud, exp and nonce too).
        assert idt["iss"] == live_idp.issuer and idt["aud"] == [portal.client.client_id]
        assert idt["nonce"] == sent["nonce"][0]
        # OIDC Core §2 acr, DESIGN.md §5: a certificate-based hardware key is cn-l4.
        assert idt["acr"] == "cn-l4"
        # RFC 8176 §2: "hwk", proof of possession of a hardware-secured key.
        assert idt["amr"] == ["hwk"]
        info = login.userinfo
        assert info is not None
        # OIDC Core §5.3.2: the userinfo sub is the ID token's sub.
        assert info["sub"] == idt["sub"]
        # Issue 4: the legal_person scope's claims — the company, and the CA that vouched.
        assert info["uscc"] == USCC
        assert info["legal_person_name"] == COMPANY
        assert info["cert_issuer"] == {"name": province.name, "province": province.province}
        subs.append(idt["sub"])

    # Issue 4 "一证通用", OIDC Core §8.1: one legal person, one (pairwise) sub at the portal.
    assert len(subs) == 3 and len(set(subs)) == 1, subs
    page_log.assert_clean()


def test_revoked_certificate_is_refused_with_its_reason(
    live_idp: Any,
    ca_ids: list[int],
    provinces: list[Province],
    portal: RelyingParty,
    new_context: MakeContext,
    page_log: PageLog,
    tmp_path: Path,
) -> None:
    guangdong, ca_id = provinces[1], ca_ids[1]
    revoked = guangdong.issue(USCC)
    # The CA publishes a newer CRL listing the certificate (RFC 5280 §5.2.3 CRL number).
    loaded = load_crl(
        live_idp, tmp_path, ca_id, make_crl(guangdong.intermediate, revoked=[revoked.cert.serial_number], number=2)
    )
    assert (loaded["crl_number"], loaded["entries"]) == (2, 1), loaded

    context = new_context(locale="zh-CN")
    traffic = Traffic(context)
    page = context.new_page()
    challenge = open_certificate_page(page, live_idp, portal, page_log)
    with page.expect_console_message(lambda msg: msg.type == "error"):
        submit_certificate(page, revoked, sign_with_tool(revoked, challenge, tmp_path))
    # RFC 5280 §6.3: a certificate on the issuer's current CRL is not accepted; issue 4:
    # the user sees the specific reason.
    arrive(page, live_idp.issuer, "/login/certificate", page_log)
    error = page.locator("#form-error")
    error.wait_for(state="visible")
    # Shown as "证书未通过验证。 The certificate has been revoked." (the reason is English only).
    assert re.search(r"has been revoked|已被?吊销", error.inner_text()), error.inner_text()
    # The refusal is a 403 page, which chromium reports on the console: that one message,
    # and nothing else, is expected here.
    refused = f"status of 403 (FORBIDDEN) ({live_idp.issuer}/login/certificate)"
    assert [e for e in page_log.console_errors if not e.endswith(refused)] == [], page_log.console_errors
    assert len(page_log.console_errors) == 1
    page_log.console_errors.clear()
    # Nothing reached the portal: no redirect to its callback, no login delivered.
    assert not any(r.url.startswith(portal.base_url + "/callback") for r in traffic.requests)
    assert portal.logins.empty()
    assert "/consent" not in traffic.paths(live_idp.issuer)
    # The refused page offers a fresh challenge (the old one was single use).
    assert read_challenge(page) != challenge
    page_log.assert_clean()


# -- SM2 (issue 10) --------------------------------------------------------------------------


@pytest.fixture
def gm_ca_ids(live_idp: Any, gm_pki: gm.GmPki, tmp_path: Path) -> dict[str, int]:
    """Guangdong RSA and Zhejiang SM2 from the PKI made by OpenSSL's CLI, registered as an
    operator would, each with its current CRL (Zhejiang's is SM2-signed)."""
    ids = {}
    for key, algorithms in (("rsa", {("RSA-2048", "sha256WithRSAEncryption")}), ("sm2", {("SM2", "SM2-with-SM3")})):
        ca = gm_pki.cas[key]
        added = live_idp.cli("certificates", "ca", "add", "--name", ca.name, "--province", ca.province,
                             "--pem", str(ca.bundle_path))
        assert {(a["key"], a["signature"]) for a in added["algorithms"]} == algorithms, added
        loaded = load_crl(live_idp, tmp_path, added["id"], gm_pki.crl(key))
        assert loaded["entries"] == len(gm_pki.default_revoked(key)), loaded
        ids[key] = added["id"]
    return ids


def test_same_company_with_an_rsa_and_an_sm2_certificate_is_one_legal_person(
    live_idp: Any,
    gm_pki: gm.GmPki,
    gm_ca_ids: dict[str, int],
    portal: RelyingParty,
    new_context: MakeContext,
    page_log: PageLog,
    tmp_path: Path,
) -> None:
    subs = []
    # The SM2 UKey's key as the tool reads it: PKCS#8 PEM, then the PKCS#12 export.
    for n, (key, p12) in enumerate((("rsa", False), ("sm2", False), ("sm2", True))):
        context = new_context(locale="zh-CN")
        traffic = Traffic(context)
        page = context.new_page()
        leaf = gm_pki.leaves[key]
        challenge, signature = certificate_login(page, live_idp, portal, leaf, page_log, tmp_path, p12=p12)
        if leaf.key_algorithm == "sm2":
            # GB/T 32918.2 / GM/T 0009: the signature the IdP accepted is also OpenSSL's
            # SM2 with SM3 over the Z value of the default signer ID, DER SEQUENCE {r, s}.
            der = base64.b64decode(signature)
            assert der[0] == 0x30, signature
            assert gm.openssl_verify(leaf.cert_pem, der, signed_bytes(challenge), distid=gm.DEFAULT_DISTID)
        if n == 0:
            arrive(page, live_idp.issuer, "/consent", page_log)
            page.click("#consent-allow")
        login = land_on_rp(page, portal, page_log)
        # The consent given with the RSA certificate is the legal person's: none with SM2.
        assert ("/consent" in traffic.paths(live_idp.issuer)) == (n == 0)
        idt, info = login.id_token, login.userinfo
        assert idt is not None and info is not None
        # DESIGN.md §5, RFC 8176 §2; OIDC Core §5.3.2.
        assert (idt["acr"], idt["amr"], info["sub"]) == ("cn-l4", ["hwk"], idt["sub"])
        assert (info["uscc"], info["legal_person_name"]) == (gm.USCC, gm.COMPANY)
        ca = gm_pki.cas[key]
        assert info["cert_issuer"] == {"name": ca.name, "province": ca.province}
        subs.append(idt["sub"])
    # Issue 10: whatever the algorithm of the certificate, one legal person, one pairwise sub.
    assert len(set(subs)) == 1, subs
    page_log.assert_clean()
