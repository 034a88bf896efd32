"""SM2/SM3 certificates end to end below the web layer (issue 10), on a PKI made by OpenSSL 3's
command line (tests/support/gm_pki.py): registering SM2 and mixed CAs, RFC 5280 path
validation with SM2-with-SM3 signatures, SM2-signed CRLs and OCSP responses, signer IDs,
and every refusal with its own reason. Every SM2 signature the project accepts here is
also verified by `openssl` in the same test (a wrong Z value cannot pass unnoticed)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certificates.mapping import DEFAULT_PROFILE, MappingProfile
from certificates.registry import CaService, InvalidCaBundleError, InvalidCrlError
from certificates.revocation import RevocationChecker
from certificates.signatures import describe_key
from certificates.trust import CertificateRejectedError, RejectionReason
from certificates.validation import CertificateValidator
from tests.support.gm_pki import (
    DEFAULT_DISTID,
    OTHER_DISTID,
    USCC,
    has_openssl_sm2,
    openssl_verify_certificate,
    openssl_verify_crl,
    openssl_verify_ocsp_response,
)

pytestmark = pytest.mark.skipif(not has_openssl_sm2(), reason="this machine's openssl cannot make SM2 keys")
R = RejectionReason


def _profile(**overrides: object) -> MappingProfile:
    return MappingProfile.from_dict({**json.loads(DEFAULT_PROFILE.to_json()), **overrides})


@pytest.fixture
def cas(services, clock) -> CaService:
    return CaService(services.session, clock=clock)


def _register(cas: CaService, pki, key: str, *, crl: bool = True, **kwargs):
    ca = pki.cas[key]
    profile = _profile(sm2_signer_id=ca.distid) if ca.distid and ca.distid != DEFAULT_DISTID else None
    row = cas.add(name=ca.name, province=ca.province, pem_bundle=ca.bundle_pem, profile=profile, **kwargs)
    if crl:
        cas.load_crl(row.id, pki.crl(key))
    return row


def _validate(cas: CaService, clock, der: bytes, *, chain=(), checker=None):
    return CertificateValidator(clock, checker).validate(der, list(chain), cas.trusted(), production=False,
                                                         disabled_cas=cas.disabled())


def _rejected(cas: CaService, clock, der: bytes, **kwargs) -> CertificateRejectedError:
    with pytest.raises(CertificateRejectedError) as info:
        _validate(cas, clock, der, **kwargs)
    return info.value


def _openssl_agrees_on_path(pki, leaf_name: str) -> None:
    """OpenSSL verifies each link the project accepted: leaf by the issuing CA, the issuing
    CA by the root, the root by itself."""
    leaf = pki.leaves[leaf_name]
    ca = pki.cas[leaf.ca]
    distid = ca.distid or DEFAULT_DISTID
    assert openssl_verify_certificate(leaf.cert_der, ca.intermediate_pem, distid)
    assert openssl_verify_certificate(ca.intermediate_der, ca.root_pem, distid)
    assert openssl_verify_certificate(ca.root_der, ca.root_pem, distid)


# -- the trust registry -------------------------------------------------------------------


def test_sm2_root_and_intermediate_register_with_their_signatures_checked(cas, gm_pki):
    row = _register(cas, gm_pki, "sm2", crl=False)
    overview = cas.trusted_by_id(row.id)
    assert [describe_key(c) for c in (*overview.roots, *overview.intermediates)] == ["SM2", "SM2"]
    _openssl_agrees_on_path(gm_pki, "sm2")


def test_bundle_signed_with_another_signer_id_needs_the_profile_setting(cas, gm_pki):
    other = gm_pki.sm2_other
    # Registered as if the GM/T 0009 default applied: the self-signature does not verify,
    # and the operator is told it verifies with another signer ID.
    with pytest.raises(InvalidCaBundleError) as info:
        cas.add(name=other.name, province=other.province, pem_bundle=other.bundle_pem)
    assert "signer ID" in info.value.public_message
    assert cas.all() == []
    row = cas.add(name=other.name, province=other.province, pem_bundle=other.bundle_pem,
                  profile=_profile(sm2_signer_id=OTHER_DISTID))
    assert cas.trusted_by_id(row.id).profile.sm2_signer_id == OTHER_DISTID
    assert openssl_verify_certificate(other.root_der, other.root_pem, OTHER_DISTID)
    assert not openssl_verify_certificate(other.root_der, other.root_pem, DEFAULT_DISTID)


def test_changing_the_signer_id_to_a_wrong_one_is_refused(cas, gm_pki):
    from certificates.registry import InvalidProfileError

    row = _register(cas, gm_pki, "sm2", crl=False)
    with pytest.raises(InvalidProfileError):
        cas.set_profile(row.id, _profile(sm2_signer_id=OTHER_DISTID))
    assert cas.trusted_by_id(row.id).profile.sm2_signer_id == DEFAULT_DISTID


@pytest.mark.parametrize("key", ["mixed_rsa_root", "mixed_sm2_root"])
def test_mixed_bundles_verify_every_link_whatever_its_algorithm(cas, gm_pki, key):
    ca = gm_pki.cas[key]
    row = _register(cas, gm_pki, key, crl=False)
    trusted = cas.trusted_by_id(row.id)
    assert {describe_key(trusted.roots[0]), describe_key(trusted.intermediates[0])} == (
        {"SM2", f"RSA-{trusted.roots[0].public_key().key_size}"} if key == "mixed_rsa_root" else {"SM2"})
    # A tampered intermediate (one signature octet changed) is refused whatever the algorithm.
    der = bytearray(ca.intermediate_der)
    der[-5] ^= 0x01
    tampered = x509.load_der_x509_certificate(bytes(der)).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(InvalidCaBundleError):
        cas.add(name="Tampered", province="X", pem_bundle=ca.root_pem + tampered)


# -- path validation ------------------------------------------------------------------------


def test_sm2_root_intermediate_leaf_path_validates_and_maps(cas, gm_pki, clock):
    _register(cas, gm_pki, "sm2")
    validated = _validate(cas, clock, gm_pki.leaves["sm2"].cert_der)
    assert validated.mapping.identifier is not None and validated.mapping.identifier.value == USCC
    assert validated.ca.province == gm_pki.sm2.province
    _openssl_agrees_on_path(gm_pki, "sm2")


def test_leaf_with_the_sm2_oid_as_key_algorithm_validates(cas, gm_pki, clock):
    _register(cas, gm_pki, "sm2")
    assert _validate(cas, clock, gm_pki.leaves["sm2_alg_oid_spki"].cert_der).mapping.identifier.value == USCC
    _openssl_agrees_on_path(gm_pki, "sm2_alg_oid_spki")


@pytest.mark.parametrize(("ca_key", "leaf"), [("mixed_rsa_root", "mixed_sm2_leaf"), ("mixed_sm2_root", "mixed_rsa_leaf")])
def test_mixed_paths_validate(cas, gm_pki, clock, ca_key, leaf):
    _register(cas, gm_pki, ca_key)
    assert _validate(cas, clock, gm_pki.leaves[leaf].cert_der).mapping.identifier.value == USCC
    _openssl_agrees_on_path(gm_pki, leaf)


def test_path_with_another_signer_id_validates_under_the_ca_that_names_it(cas, gm_pki, clock):
    _register(cas, gm_pki, "sm2_other")
    assert _validate(cas, clock, gm_pki.leaves["sm2_other_id"].cert_der).ca.name == gm_pki.sm2_other.name
    _openssl_agrees_on_path(gm_pki, "sm2_other_id")


def test_leaf_signed_with_another_signer_id_is_refused_with_that_reason(cas, gm_pki, clock):
    _register(cas, gm_pki, "sm2")
    _register(cas, gm_pki, "sm2_other")
    err = _rejected(cas, clock, gm_pki.leaves["sm2_wrong_id"].cert_der)
    assert err.reason is R.SM2_SIGNER_ID and OTHER_DISTID in err.detail
    # OpenSSL agrees: it verifies with the other ID and not with the CA's default.
    leaf = gm_pki.leaves["sm2_wrong_id"]
    assert openssl_verify_certificate(leaf.cert_der, gm_pki.sm2.intermediate_pem, OTHER_DISTID)
    assert not openssl_verify_certificate(leaf.cert_der, gm_pki.sm2.intermediate_pem, DEFAULT_DISTID)


def test_tampered_sm2_leaf_is_a_bad_signature(cas, gm_pki, clock):
    _register(cas, gm_pki, "sm2")
    der = bytearray(gm_pki.leaves["sm2"].cert_der)
    # Flip one octet of the subject's organisation name inside the TBSCertificate.
    at = bytes(der).index(b"Yiwang")
    der[at] ^= 0x20
    assert _rejected(cas, clock, bytes(der)).reason is R.BAD_SIGNATURE


@pytest.mark.parametrize(("leaf", "reason"), [
    ("sm2_revoked", R.REVOKED),
    ("sm2_expired", R.EXPIRED),
    ("sm2_no_digital_signature", R.KEY_USAGE),
    ("sm2_encryption", R.ENCRYPTION_CERTIFICATE),
    ("sm2_curve_mislabel", R.SM2_WRONG_CURVE),
])
def test_sm2_refusals_have_their_own_reason(cas, gm_pki, clock, leaf, reason):
    _register(cas, gm_pki, "sm2")
    err = _rejected(cas, clock, gm_pki.leaves[leaf].cert_der)
    assert err.reason is reason, err.detail


def test_encryption_certificate_shares_the_subject_of_the_signing_one(gm_pki):
    signing = x509.load_der_x509_certificate(gm_pki.leaves["sm2"].cert_der)
    encryption = x509.load_der_x509_certificate(gm_pki.leaves["sm2_encryption"].cert_der)
    assert signing.subject == encryption.subject


def test_sm2_ca_with_disabled_registration_is_ca_disabled(cas, gm_pki, clock):
    row = _register(cas, gm_pki, "sm2")
    cas.disable(row.id)
    assert _rejected(cas, clock, gm_pki.leaves["sm2"].cert_der).reason is R.CA_DISABLED


# -- CRLs and OCSP -----------------------------------------------------------------------------


def test_sm2_crl_loads_and_is_verified_by_openssl_too(cas, gm_pki):
    row = _register(cas, gm_pki, "sm2", crl=False)
    crl = gm_pki.crl("sm2")
    state = cas.load_crl(row.id, crl)
    assert state.entries == 1
    assert openssl_verify_crl(crl, gm_pki.sm2.intermediate_pem, DEFAULT_DISTID)


def test_sm2_crl_from_another_ca_or_signer_id_is_refused(cas, gm_pki):
    row = _register(cas, gm_pki, "sm2", crl=False)
    with pytest.raises(InvalidCrlError):
        cas.load_crl(row.id, gm_pki.crl("sm2_other"))
    # A CRL whose bytes were altered after signing.
    crl = bytearray(gm_pki.crl("sm2"))
    crl[-3] ^= 0x01
    with pytest.raises(InvalidCrlError):
        cas.load_crl(row.id, bytes(crl))
    assert cas.get(row.id).crl_der is None


def test_sm2_crl_signed_with_another_signer_id_is_named(cas, gm_pki):
    other = gm_pki.sm2_other
    row = cas.add(name=other.name, province=other.province, pem_bundle=other.bundle_pem,
                  profile=_profile(sm2_signer_id=OTHER_DISTID))
    cas.load_crl(row.id, gm_pki.crl("sm2_other"))  # the right ID: loads
    # A registration with the wrong ID cannot be saved (set_profile re-verifies the bundle);
    # checked against the default ID, the CRL is refused and the ID it verifies with named.
    from certificates.revocation import CrlError, parse_crl

    wrong = replace(cas.trusted_by_id(row.id), profile=_profile())
    with pytest.raises(CrlError) as info:
        parse_crl(gm_pki.crl("sm2_other"), wrong, other_ids=(OTHER_DISTID,))
    assert info.value.code == "sm2_signer_id" and OTHER_DISTID in str(info.value)
    with pytest.raises(CrlError) as info:
        parse_crl(gm_pki.crl("sm2_other"), wrong)
    assert info.value.code == "invalid_crl"


def test_crl_refresh_fetches_an_sm2_crl(cas, gm_pki, clock):
    row = _register(cas, gm_pki, "sm2", crl=False, crl_urls=["http://crl.example.test/sm2.crl"])
    crl = gm_pki.crl("sm2")
    checker = RevocationChecker(clock, fetcher=lambda url, **_: crl)
    der, parsed = checker.refresh(cas.trusted_by_id(row.id), production=False)
    assert der == crl and gm_pki.leaves["sm2_revoked"].serial in parsed.revoked
    err = _rejected(cas, clock, gm_pki.leaves["sm2_revoked"].cert_der, checker=checker)
    assert err.reason is R.REVOKED


@pytest.mark.parametrize(("leaf", "expected"), [("sm2", None), ("sm2_revoked", R.REVOKED)])
def test_sm2_signed_ocsp_answers_when_there_is_no_crl(cas, gm_pki, clock, leaf, expected):
    _register(cas, gm_pki, "sm2", crl=False, ocsp_url="http://ocsp.example.test/")
    answers = []

    def responder(url, *, body=None, **_):
        response = gm_pki.ocsp_response("sm2", leaf, request=body)
        answers.append(response)
        return response

    checker = RevocationChecker(clock, fetcher=responder)
    if expected is None:
        assert _validate(cas, clock, gm_pki.leaves[leaf].cert_der, checker=checker).mapping.identifier.value == USCC
    else:
        assert _rejected(cas, clock, gm_pki.leaves[leaf].cert_der, checker=checker).reason is expected
    assert answers and openssl_verify_ocsp_response(answers[0], gm_pki.sm2.intermediate_pem, DEFAULT_DISTID)


def test_ocsp_response_from_another_sm2_ca_is_no_answer_and_fails_closed(cas, gm_pki, clock):
    _register(cas, gm_pki, "sm2", crl=False, ocsp_url="http://ocsp.example.test/")
    checker = RevocationChecker(clock, fetcher=lambda url, body=None, **_: gm_pki.ocsp_response(
        "sm2_other", "sm2", request=body))
    err = _rejected(cas, clock, gm_pki.leaves["sm2"].cert_der, checker=checker)
    assert err.reason is R.REVOCATION_UNKNOWN
