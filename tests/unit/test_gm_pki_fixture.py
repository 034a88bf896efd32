"""The SM2/SM3 test PKI (tests/support/gm_pki.py) checked with the OpenSSL CLI alone, so that tests
of certificates/ compare against artefacts known to be right: chains (RFC 5280 §6.1), GM/T 0009
signer IDs, GM/T 0015 USCC extension, CRLs (RFC 5280 §5) and OCSP (RFC 6960)."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from certificates.uscc import check_uscc
from tests.support.gm_pki import (
    COMPANY,
    COMPANY2,
    DEFAULT_DISTID,
    OID_GMT0015_ORG_CODE,
    OTHER_DISTID,
    P12_PASSWORD,
    USCC,
    USCC2,
    GmCa,
    GmLeaf,
    GmPki,
    build_gm_pki,
    has_openssl_sm2,
    openssl_verify,
    openssl_verify_certificate,
    openssl_verify_crl,
    openssl_verify_ocsp_response,
    pem_to_der,
)

pytestmark = pytest.mark.skipif(not has_openssl_sm2(), reason="this openssl has no SM2/SM3 with distid")

SM2_CAS = ("sm2", "sm2_other", "mixed_sm2_root")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GmPki:
    return build_gm_pki(tmp_path_factory.mktemp("gm-pki"))


def openssl(*args: str | Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["openssl", *(str(a) for a in args)], input=stdin, capture_output=True, check=False)


def text(cert: GmLeaf | Path) -> str:
    path = cert.cert_path if isinstance(cert, GmLeaf) else cert
    proc = openssl("x509", "-in", path, "-noout", "-text")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.decode()


def verify_link(cert: Path, issuer: Path, distid: str | None, *extra: str) -> subprocess.CompletedProcess[bytes]:
    """One chain link with ``openssl verify``: OpenSSL 3.0 applies -vfyopt distid to the target only."""
    vfy = ["-vfyopt", f"distid:{distid}"] if distid else []
    return openssl("verify", *vfy, "-partial_chain", "-x509_strict", *extra, "-CAfile", issuer, cert)


def test_build_is_fast(tmp_path: Path) -> None:
    started = time.perf_counter()
    build_gm_pki(tmp_path / "again")
    # Budget from the brief: the whole fixture in under 5 s on 2 cores.
    assert time.perf_counter() - started < 5


def test_company_identifiers_are_valid_gb32100() -> None:
    assert check_uscc(USCC) and check_uscc(USCC2) and USCC != USCC2


@pytest.mark.parametrize("ca_key", ["rsa", "ecdsa"])
def test_classic_chains_verify_in_one_call(pki: GmPki, ca_key: str) -> None:
    ca = pki.cas[ca_key]
    leaf = pki.leaves[ca_key]
    proc = openssl("verify", "-x509_strict", "-purpose", "sslclient", "-CAfile", ca.root_cert_path,
                   "-untrusted", ca.intermediate_cert_path, leaf.cert_path)
    assert proc.returncode == 0, proc.stderr
    assert openssl_verify_certificate(ca.root_der, ca.root_pem)


def test_rsa_root_over_sm2_intermediate_verifies_in_one_call(pki: GmPki) -> None:
    # Only the leaf link is SM2 here, and the target is the one that gets the distid.
    ca = pki.mixed_rsa_root
    leaf = pki.leaves["mixed_sm2_leaf"]
    args: list[str | Path] = ["-x509_strict", "-CAfile", ca.root_cert_path, "-untrusted", ca.intermediate_cert_path, leaf.cert_path]
    assert openssl("verify", "-vfyopt", f"distid:{DEFAULT_DISTID}", *args).returncode == 0
    assert openssl("verify", "-vfyopt", f"distid:{OTHER_DISTID}", *args).returncode != 0
    assert "Signature Algorithm: sha256WithRSAEncryption" in text(ca.intermediate_cert_path)
    assert "ASN1 OID: SM2" in text(ca.intermediate_cert_path)


@pytest.mark.parametrize(("ca_key", "leaf_name"), [("sm2", "sm2"), ("sm2_other", "sm2_other_id"),
                                                   ("mixed_sm2_root", "mixed_rsa_leaf")])
def test_sm2_chains_verify_link_by_link_with_their_id_only(pki: GmPki, ca_key: str, leaf_name: str) -> None:
    ca, leaf = pki.cas[ca_key], pki.leaves[leaf_name]
    wrong = OTHER_DISTID if ca.distid == DEFAULT_DISTID else DEFAULT_DISTID
    for cert, issuer in [(leaf.cert_path, ca.intermediate_cert_path), (ca.intermediate_cert_path, ca.root_cert_path)]:
        good = verify_link(cert, issuer, ca.distid)
        assert good.returncode == 0, good.stderr
        assert verify_link(cert, issuer, wrong).returncode != 0
        assert verify_link(cert, issuer, None).returncode != 0
    assert openssl_verify_certificate(ca.root_der, ca.root_pem, ca.distid)
    assert not openssl_verify_certificate(ca.root_der, ca.root_pem, wrong)
    assert leaf.distid == ca.distid


def test_mixed_sm2_root_issues_an_rsa_key_with_an_sm2_signature(pki: GmPki) -> None:
    out = text(pki.leaves["mixed_rsa_leaf"])
    assert "Public Key Algorithm: rsaEncryption" in out
    assert "Signature Algorithm: SM2-with-SM3" in out


@pytest.mark.parametrize("ca_key", ["rsa", "ecdsa", "sm2", "sm2_other", "mixed_rsa_root", "mixed_sm2_root"])
def test_ca_certificates_have_the_ca_profile(pki: GmPki, ca_key: str) -> None:
    ca: GmCa = pki.cas[ca_key]
    assert ca.bundle_pem == ca.root_pem + ca.intermediate_pem
    for path, suffix in [(ca.root_cert_path, "Root"), (ca.intermediate_cert_path, "Issuing CA")]:
        out = text(path)
        assert re.search(r"X509v3 Basic Constraints: critical\n\s+CA:TRUE\n", out)
        assert re.search(r"X509v3 Key Usage: critical\n\s+Certificate Sign, CRL Sign\n", out)
        assert "X509v3 Subject Key Identifier" in out and "X509v3 Authority Key Identifier" in out
        assert f"Subject: C = CN, ST = {ca.province}, O = {ca.name}, CN = {ca.name} {suffix}\n" in out


@pytest.mark.parametrize(("ca_key", "signature"), [
    ("rsa", "sha256WithRSAEncryption"), ("ecdsa", "ecdsa-with-SHA256"), ("sm2", "SM2-with-SM3"),
])
def test_root_algorithms(pki: GmPki, ca_key: str, signature: str) -> None:
    assert f"Signature Algorithm: {signature}" in text(pki.cas[ca_key].root_cert_path)


def _uscc_extension(leaf: GmLeaf) -> bytes:
    """The extnValue of the GM/T 0015 extension, read from ``openssl asn1parse``."""
    lines = openssl("asn1parse", "-inform", "DER", stdin=leaf.cert_der).stdout.decode().splitlines()
    at = next(i for i, line in enumerate(lines) if f":{OID_GMT0015_ORG_CODE}" in line)
    assert "BOOLEAN" not in lines[at + 1]  # non-critical: no critical flag at all
    return bytes.fromhex(lines[at + 1].split("[HEX DUMP]:")[1])


@pytest.mark.parametrize(("leaf_name", "tag"), [("rsa", 0x13), ("ecdsa", 0x0C), ("sm2", 0x13)])
def test_company_leaves_carry_the_uscc_and_the_signing_profile(pki: GmPki, leaf_name: str, tag: int) -> None:
    leaf = pki.leaves[leaf_name]
    assert _uscc_extension(leaf) == bytes([tag, len(USCC)]) + USCC.encode()
    out = text(leaf)
    assert f'O = "{COMPANY}", CN = "{COMPANY}"' in out
    assert re.search(r"X509v3 Key Usage: critical\n\s+Digital Signature, Non Repudiation\n", out)
    assert re.search(r"X509v3 Extended Key Usage: \n\s+TLS Web Client Authentication\n", out)


def test_other_company_has_its_own_uscc(pki: GmPki) -> None:
    leaf = pki.leaves["sm2_other_company"]
    assert _uscc_extension(leaf) == bytes([0x13, len(USCC2)]) + USCC2.encode()
    assert f'O = "{COMPANY2}"' in text(leaf)


def test_encryption_half_of_the_dual_pair(pki: GmPki) -> None:
    signing, encryption = pki.leaves["sm2"], pki.leaves["sm2_encryption"]
    out = text(encryption)
    assert re.search(r"X509v3 Key Usage: critical\n\s+Key Encipherment, Data Encipherment\n", out)
    assert "Extended Key Usage" not in out
    subject = openssl("x509", "-in", signing.cert_path, "-noout", "-subject").stdout
    assert openssl("x509", "-in", encryption.cert_path, "-noout", "-subject").stdout == subject
    pubkey = openssl("x509", "-in", signing.cert_path, "-noout", "-pubkey").stdout
    assert openssl("x509", "-in", encryption.cert_path, "-noout", "-pubkey").stdout != pubkey


def test_no_digital_signature_leaf(pki: GmPki) -> None:
    assert re.search(r"X509v3 Key Usage: critical\n\s+Non Repudiation\n", text(pki.leaves["sm2_no_digital_signature"]))


def test_expired_and_not_yet_valid_fail_only_on_time(pki: GmPki) -> None:
    issuer = pki.sm2.intermediate_cert_path
    expired = verify_link(pki.leaves["sm2_expired"].cert_path, issuer, DEFAULT_DISTID)
    assert b"certificate has expired" in expired.stdout + expired.stderr
    early = verify_link(pki.leaves["sm2_not_yet_valid"].cert_path, issuer, DEFAULT_DISTID)
    assert b"certificate is not yet valid" in early.stdout + early.stderr
    within = str(int(pki.created_at.timestamp()) - 100 * 86400)
    assert verify_link(pki.leaves["sm2_expired"].cert_path, issuer, DEFAULT_DISTID, "-attime", within).returncode == 0


def test_wrong_id_leaf_is_signed_with_the_other_id(pki: GmPki) -> None:
    leaf = pki.leaves["sm2_wrong_id"]
    issuer = pki.sm2.intermediate_cert_path
    assert "Issuer: C = CN, ST = Zhejiang" in text(leaf)
    assert verify_link(leaf.cert_path, issuer, DEFAULT_DISTID).returncode != 0
    assert verify_link(leaf.cert_path, issuer, OTHER_DISTID).returncode == 0
    assert not openssl_verify_certificate(leaf.cert_der, pki.sm2.intermediate_pem, DEFAULT_DISTID)


def _asn1(der: bytes) -> str:
    return openssl("asn1parse", "-inform", "DER", stdin=der).stdout.decode()


def test_sm2_algorithm_oid_in_spki(pki: GmPki) -> None:
    leaf = pki.leaves["sm2_alg_oid_spki"]
    # SPKI: SEQUENCE { SEQUENCE { OID sm2 }, BIT STRING } with no curve parameter.
    parsed = _asn1(leaf.cert_der)
    assert re.search(r"cons: SEQUENCE\s*\n[^\n]*prim: OBJECT\s+:sm2\s*\n[^\n]*prim: BIT STRING", parsed)
    assert "id-ecPublicKey" not in parsed
    assert openssl_verify_certificate(leaf.cert_der, pki.sm2.intermediate_pem)
    # Same key bits as an ordinary SM2 key: the leaf's own key signs what its SPKI verifies.
    public = openssl("pkey", "-in", leaf.key_path, "-pubout", "-outform", "DER").stdout
    assert public[-65:] in leaf.cert_der


def test_p256_key_under_sm2_signature(pki: GmPki) -> None:
    leaf = pki.leaves["sm2_wrong_curve"]
    out = text(leaf)
    assert "ASN1 OID: prime256v1" in out and "Signature Algorithm: SM2-with-SM3" in out
    assert verify_link(leaf.cert_path, pki.sm2.intermediate_cert_path, DEFAULT_DISTID).returncode == 0


def test_sm2_label_on_a_p256_point(pki: GmPki) -> None:
    leaf = pki.leaves["sm2_curve_mislabel"]
    assert re.search(r"prim: OBJECT\s+:sm2\s*\n[^\n]*prim: OBJECT\s+:prime256v1\s*\n[^\n]*prim: BIT STRING",
                     _asn1(leaf.cert_der))
    assert openssl_verify_certificate(leaf.cert_der, pki.sm2.intermediate_pem)
    public = openssl("pkey", "-in", leaf.key_path, "-pubout", "-outform", "DER").stdout
    assert "prime256v1" in _asn1(public) and public[-65:] in leaf.cert_der


def test_serials_are_distinct_and_match_the_certificates(pki: GmPki) -> None:
    serials = [leaf.serial for leaf in pki.leaves.values()]
    assert len(set(serials)) == len(serials)
    for leaf in pki.leaves.values():
        out = openssl("x509", "-inform", "DER", "-noout", "-serial", stdin=leaf.cert_der).stdout.decode()
        assert int(out.strip().split("=")[1], 16) == leaf.serial
        assert pem_to_der(leaf.cert_pem) == leaf.cert_der
        assert leaf.key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")


def _crl_text(crl: bytes) -> str:
    proc = openssl("crl", "-inform", "DER", "-noout", "-text", stdin=crl)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.decode()


def _serial_text(serial: int) -> str:
    return f"Serial Number: {serial:X}"


def test_sm2_crl_lists_the_revoked_leaf_and_is_signed_with_the_default_id(pki: GmPki) -> None:
    crl = pki.crl("sm2")
    out = _crl_text(crl)
    assert _serial_text(pki.leaves["sm2_revoked"].serial) in out
    assert _serial_text(pki.leaves["sm2"].serial) not in out
    assert "Signature Algorithm: SM2-with-SM3" in out and "Issuer: C = CN, ST = Zhejiang" in out
    assert openssl_verify_crl(crl, pki.sm2.intermediate_pem, DEFAULT_DISTID)
    assert not openssl_verify_crl(crl, pki.sm2.intermediate_pem, OTHER_DISTID)


def test_crl_number_and_explicit_revocations(pki: GmPki) -> None:
    serial = pki.leaves["sm2_other_id"].serial
    crl = pki.crl("sm2_other", [serial], number=42, next_update_days=2)
    out = _crl_text(crl)
    assert _serial_text(serial) in out
    assert re.search(r"X509v3 CRL Number: \n\s+42\n", out)
    assert openssl_verify_crl(crl, pki.sm2_other.intermediate_pem, OTHER_DISTID)
    assert not openssl_verify_crl(crl, pki.sm2_other.intermediate_pem, DEFAULT_DISTID)
    assert "No Revoked Certificates." in _crl_text(pki.crl("sm2", []))


def test_rsa_crl_verifies_with_openssl_crl(pki: GmPki) -> None:
    crl = pki.crl("rsa", [pki.leaves["rsa"].serial])
    proc = openssl("crl", "-inform", "DER", "-noout", "-CAfile", pki.rsa.intermediate_cert_path, stdin=crl)
    assert b"verify OK" in proc.stdout + proc.stderr
    proc = openssl("crl", "-inform", "DER", "-noout", "-CAfile", pki.ecdsa.intermediate_cert_path, stdin=crl)
    assert b"verify OK" not in proc.stdout + proc.stderr


def test_root_crl_is_signed_by_the_root(pki: GmPki) -> None:
    crl = pki.root_crl("sm2")
    assert "Issuer: C = CN, ST = Zhejiang, O = Zhejiang SM2, CN = Zhejiang SM2 Root" in _crl_text(crl)
    assert openssl_verify_crl(crl, pki.sm2.root_pem)
    assert not openssl_verify_crl(crl, pki.sm2.intermediate_pem)


def _ocsp_text(response: bytes, tmp_path: Path) -> str:
    path = tmp_path / "response.der"
    path.write_bytes(response)
    proc = openssl("ocsp", "-respin", path, "-resp_text", "-noverify")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.decode()


@pytest.mark.parametrize(("leaf_name", "status"), [("sm2", "good"), ("sm2_revoked", "revoked")])
def test_sm2_ocsp_default_status_and_signature(pki: GmPki, tmp_path: Path, leaf_name: str, status: str) -> None:
    response = pki.ocsp_response("sm2", leaf_name)
    out = _ocsp_text(response, tmp_path)
    assert f"Cert Status: {status}" in out
    assert _serial_text(pki.leaves[leaf_name].serial) in out
    assert "Responder Id: C = CN, ST = Zhejiang, O = Zhejiang SM2, CN = Zhejiang SM2 Issuing CA" in out
    assert "Signature Algorithm: SM2-with-SM3" in out
    assert openssl_verify_ocsp_response(response, pki.sm2.intermediate_pem, DEFAULT_DISTID)
    assert not openssl_verify_ocsp_response(response, pki.sm2.intermediate_pem, OTHER_DISTID)


def test_ocsp_explicit_status_and_other_id(pki: GmPki, tmp_path: Path) -> None:
    response = pki.ocsp_response("sm2_other", "sm2_other_id", status="revoked")
    assert "Cert Status: revoked" in _ocsp_text(response, tmp_path)
    assert openssl_verify_ocsp_response(response, pki.sm2_other.intermediate_pem, OTHER_DISTID)
    assert not openssl_verify_ocsp_response(response, pki.sm2_other.intermediate_pem, DEFAULT_DISTID)
    assert "Cert Status: unknown" in _ocsp_text(pki.ocsp_response("sm2", "sm2", status="unknown"), tmp_path)


def test_rsa_ocsp_verifies_with_openssl_ocsp(pki: GmPki, tmp_path: Path) -> None:
    response, request = tmp_path / "resp.der", tmp_path / "req.der"
    request.write_bytes(pki.ocsp_request("rsa", "rsa", nonce=True))
    response.write_bytes(pki.ocsp_response("rsa", "rsa", request=request.read_bytes()))
    # -reqin checks the echoed nonce; -no_intern makes the VAfile the only acceptable signer.
    ok = openssl("ocsp", "-respin", response, "-reqin", request, "-no_intern", "-VAfile", pki.rsa.intermediate_cert_path)
    assert ok.returncode == 0 and b"Response verify OK" in ok.stderr, ok.stderr
    bad = openssl("ocsp", "-respin", response, "-reqin", request, "-no_intern", "-VAfile", pki.ecdsa.intermediate_cert_path)
    assert bad.returncode != 0
    assert "Cert Status: good" in _ocsp_text(response.read_bytes(), tmp_path)


def test_sm2_signatures_verify_only_with_their_id(pki: GmPki) -> None:
    leaf = pki.leaves["sm2"]
    data = b"yiwang login challenge"
    signature = pki.sign("sm2", data)
    assert openssl_verify(leaf.cert_pem, signature, data)
    assert not openssl_verify(leaf.cert_pem, signature, data, distid=OTHER_DISTID)
    assert not openssl_verify(leaf.cert_pem, signature, data + b"!")
    assert not openssl_verify(pki.leaves["sm2_revoked"].cert_pem, signature, data)
    other = pki.sign("sm2", data, distid=OTHER_DISTID)
    assert openssl_verify(leaf.cert_pem, other, data, distid=OTHER_DISTID)
    assert not openssl_verify(leaf.cert_pem, other, data)
    raw = pki.sign("sm2", data, raw=True)
    assert len(raw) == 64 and openssl_verify(leaf.cert_pem, raw, data, raw=True)
    public = openssl("x509", "-in", leaf.cert_path, "-noout", "-pubkey").stdout
    assert openssl_verify(public, signature, data)


@pytest.mark.parametrize("leaf_name", ["rsa", "ecdsa", "mixed_rsa_leaf"])
def test_classic_signatures_are_sha256(pki: GmPki, tmp_path: Path, leaf_name: str) -> None:
    leaf = pki.leaves[leaf_name]
    data, sig, public = b"challenge", tmp_path / "sig", tmp_path / "pub.pem"
    sig.write_bytes(pki.sign(leaf_name, data))
    public.write_bytes(openssl("x509", "-in", leaf.cert_path, "-noout", "-pubkey").stdout)
    assert openssl("dgst", "-sha256", "-verify", public, "-signature", sig, stdin=data).returncode == 0
    assert openssl("dgst", "-sha256", "-verify", public, "-signature", sig, stdin=b"other").returncode != 0
    assert openssl_verify(leaf.cert_pem, sig.read_bytes(), data, digest="sha256")


@pytest.mark.parametrize("leaf_name", ["rsa", "sm2"])
def test_pkcs12_holds_key_and_certificate(pki: GmPki, leaf_name: str) -> None:
    leaf = pki.leaves[leaf_name]
    assert leaf.p12_path is not None
    proc = openssl("pkcs12", "-in", leaf.p12_path, "-passin", f"pass:{P12_PASSWORD}", "-nodes")
    assert proc.returncode == 0, proc.stderr
    assert b"-----BEGIN PRIVATE KEY-----" in proc.stdout
    assert leaf.cert_pem.strip() in proc.stdout
    assert openssl("pkcs12", "-in", leaf.p12_path, "-passin", "pass:wrong", "-nodes").returncode != 0


def test_every_sm2_signed_leaf_records_its_issuer_id(pki: GmPki) -> None:
    for leaf in pki.leaves.values():
        ca = pki.cas[leaf.ca]
        assert openssl_verify_certificate(leaf.cert_der, ca.intermediate_pem, leaf.distid), leaf.name
        if leaf.distid is not None:
            wrong = OTHER_DISTID if leaf.distid == DEFAULT_DISTID else DEFAULT_DISTID
            assert not openssl_verify_certificate(leaf.cert_der, ca.intermediate_pem, wrong), leaf.name
    assert {n for n, leaf in pki.leaves.items() if leaf.distid is None} == {"rsa", "ecdsa"}
