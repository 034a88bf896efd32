"""Certificate path validation (RFC 5280 §6.1) against registered provincial CAs: every
refusal has its specific reason (issue 4), SM2 is recognised and refused, and nothing a
client sends makes validation crash."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import replace
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certificates.mapping import DEFAULT_PROFILE
from certificates.revocation import RevocationChecker
from certificates.trust import PUBLIC_MESSAGES, CertificateRejectedError, RejectionReason
from certificates.validation import CertificateValidator
from common.clock import FrozenClock
from tests.support.pki import (
    ENCRYPTION,
    issue_leaf,
    make_ca,
    make_crl,
    make_sub_ca,
    printable,
    sm2_variant,
    three_provinces,
)

USCC = "91350100M000100Y43"
R = RejectionReason


@pytest.fixture(scope="module")
def provinces():
    return three_provinces()


@pytest.fixture
def clock():
    return FrozenClock()


@pytest.fixture
def validator(clock):
    return CertificateValidator(clock, RevocationChecker(clock, allow_fetch=False))


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _trusted(p, ca_id=1, revoked=(), **kwargs):
    kwargs.setdefault("crl_der", make_crl(p.intermediate, list(revoked)))
    return p.trusted(ca_id, **kwargs)


def _rejected(validator, leaf, cas, chain=(), **kwargs) -> CertificateRejectedError:
    with pytest.raises(CertificateRejectedError) as info:
        validator.validate(leaf, list(chain), cas, production=False, **kwargs)
    return info.value


# ---- accepted paths


def test_same_company_through_three_provincial_cas_maps_to_one_uscc(provinces, validator):
    cas = [_trusted(p, i) for i, p in enumerate(provinces, start=1)]
    results = [validator.validate(p.issue(USCC).der, [], cas, production=False) for p in provinces]
    # 一证通用: each CA's placement and encoding yields the same legal-person identifier.
    assert {(r.mapping.identifier.kind, r.mapping.identifier.value) for r in results} == {("uscc", USCC)}
    assert [r.ca.ca_id for r in results] == [1, 2, 3]


def test_validated_certificate_carries_the_credential_keys(provinces, validator):
    p = provinces[0]
    leaf = p.issue(USCC)
    result = validator.validate(leaf.der, [], [_trusted(p)], production=False)
    assert result.certificate == leaf.cert
    assert result.issuer_serial == f"{p.intermediate.name.rfc4514_string()}|{leaf.cert.serial_number:x}"
    spki = leaf.key.public_key().public_bytes(serialization.Encoding.DER,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)
    assert result.spki_sha256 == base64.urlsafe_b64encode(hashlib.sha256(spki).digest()).rstrip(b"=").decode()
    assert (result.not_before, result.not_after) == (leaf.cert.not_valid_before_utc, leaf.cert.not_valid_after_utc)
    assert result.mapping.name == "示例科技有限公司"


def test_pem_input_and_intermediate_supplied_by_the_client(provinces, validator):
    p = provinces[1]
    leaf = p.issue(USCC)
    # RFC 5280 §6.1: the path may use intermediates the client sends; the anchor must be registered.
    ca = replace(_trusted(p), intermediates=())
    pem = leaf.cert.public_bytes(serialization.Encoding.PEM)
    assert validator.validate(pem, [_der(p.intermediate.cert)], [ca], production=False).ca is ca
    assert _rejected(validator, leaf.der, [ca]).reason == R.UNKNOWN_ISSUER


# ---- issuer and signature


def test_unknown_issuer(provinces, validator):
    leaf = provinces[0].issue(USCC)
    err = _rejected(validator, leaf.der, [_trusted(provinces[1]), _trusted(provinces[2])])
    assert err.reason == R.UNKNOWN_ISSUER
    assert err.code == "certificate_rejected"


def test_tampered_certificate_is_a_bad_signature(provinces, validator):
    p = provinces[0]
    der = bytearray(p.issue(USCC).der)
    der[-1] ^= 0x01  # the last octet of the ECDSA signature's s
    # RFC 5280 §6.1.3 (a)(1): the signature must verify with the issuer's public key.
    err = _rejected(validator, bytes(der), [_trusted(p)])
    assert err.reason == R.BAD_SIGNATURE


def test_same_issuer_name_other_key_is_not_our_ca(provinces, validator):
    p = provinces[0]
    impostor = replace(make_sub_ca(p.root, "x"), name=p.intermediate.name)
    forged = issue_leaf(impostor, extensions=[("1.2.156.10260.4.4", printable(USCC))])
    # RFC 5280 §4.2.1.1: the authority key identifier names another key; without it the
    # signature check refuses the name match.
    assert _rejected(validator, forged.der, [_trusted(p)]).reason == R.UNKNOWN_ISSUER
    no_aki = issue_leaf(impostor, extensions=[("1.2.156.10260.4.4", printable(USCC))])
    no_aki_der = _strip_aki(no_aki, impostor)
    assert _rejected(validator, no_aki_der, [_trusted(p)]).reason == R.BAD_SIGNATURE


def _strip_aki(leaf, issuer) -> bytes:
    """Re-issue ``leaf`` by ``issuer`` without the authority key identifier."""
    from cryptography.hazmat.primitives import hashes

    builder = (x509.CertificateBuilder().subject_name(leaf.cert.subject).issuer_name(issuer.name)
               .public_key(leaf.key.public_key()).serial_number(leaf.cert.serial_number)
               .not_valid_before(leaf.cert.not_valid_before_utc).not_valid_after(leaf.cert.not_valid_after_utc))
    for ext in leaf.cert.extensions:
        if not isinstance(ext.value, x509.AuthorityKeyIdentifier):
            builder = builder.add_extension(ext.value, ext.critical)
    return _der(builder.sign(issuer.key, hashes.SHA256()))


def test_disabled_ca_is_named_as_such(provinces, validator):
    leaf = provinces[0].issue(USCC)
    err = _rejected(validator, leaf.der, [_trusted(provinces[1])], disabled_cas=[_trusted(provinces[0])])
    assert err.reason == R.CA_DISABLED


# ---- validity windows (RFC 5280 §6.1.3 (a)(2))


def test_expired_and_not_yet_valid(provinces, validator, clock):
    p = provinces[0]
    now = clock.now()
    expired = p.issue(USCC, not_before=now - timedelta(days=30), not_after=now - timedelta(seconds=1))
    future = p.issue(USCC, not_before=now + timedelta(seconds=60))
    assert _rejected(validator, expired.der, [_trusted(p)]).reason == R.EXPIRED
    assert _rejected(validator, future.der, [_trusted(p)]).reason == R.NOT_YET_VALID


def test_a_valid_certificate_expires_when_time_passes(provinces, validator, clock):
    p = provinces[0]
    leaf = p.issue(USCC, not_after=clock.now() + timedelta(hours=1))
    ca = _trusted(p, crl_der=make_crl(p.intermediate, next_update=clock.now() + timedelta(days=30)))
    validator.validate(leaf.der, [], [ca], production=False)
    clock.advance(3601)
    assert _rejected(validator, leaf.der, [ca]).reason == R.EXPIRED


def test_expired_intermediate(provinces, validator, clock):
    p = provinces[0]
    now = clock.now()
    old = make_sub_ca(p.root, "Old Issuing CA", not_before=now - timedelta(days=900), not_after=now - timedelta(days=1))
    leaf = issue_leaf(old, extensions=[("1.2.156.10260.4.4", printable(USCC))])
    ca = replace(_trusted(p), intermediates=(old.cert,), crl_der=make_crl(old))
    err = _rejected(validator, leaf.der, [ca])
    assert err.reason == R.EXPIRED
    assert "CA certificate" in err.detail


# ---- CA certificates: basicConstraints, pathLen, keyCertSign (RFC 5280 §6.1.4 (k)-(n))


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [
        ({"ca": None}, "no basicConstraints"),
        ({"ca": False}, "cA=false"),
        ({"key_usage": ENCRYPTION}, "keyCertSign"),
    ],
)
def test_intermediate_must_be_a_ca(provinces, validator, kwargs, why):
    p = provinces[2]
    bad = make_sub_ca(p.root, "Not A CA", **kwargs)
    leaf = issue_leaf(bad)
    ca = replace(_trusted(p), intermediates=(bad.cert,), crl_der=make_crl(bad))
    err = _rejected(validator, leaf.der, [ca])
    assert err.reason == R.NOT_A_CA
    assert why in err.detail


def test_path_length_constraint(validator):
    root = make_ca("Hainan CA", "Hainan")
    level1 = make_sub_ca(root, "Hainan Policy CA", path_length=0)
    level2 = make_sub_ca(level1, "Hainan Issuing CA")
    leaf = issue_leaf(level2, extensions=[("1.2.156.10260.4.4", printable(USCC))])
    from certificates.trust import TrustedCa

    ca = TrustedCa(9, "Hainan CA", "Hainan", (root.cert,), (level1.cert, level2.cert), DEFAULT_PROFILE,
                   crl_der=make_crl(level2))
    # RFC 5280 §4.2.1.9: pathLen 0 allows no intermediate CA below it.
    err = _rejected(validator, leaf.der, [ca])
    assert err.reason == R.NOT_A_CA and "allows 0" in err.detail
    level1_ok = make_sub_ca(root, "Hainan Policy CA", path_length=1, key=level1.key)
    ca_ok = replace(ca, intermediates=(level1_ok.cert, level2.cert))
    assert validator.validate(leaf.der, [], [ca_ok], production=False).ca is ca_ok


# ---- end entity: keyUsage / extendedKeyUsage as the profile demands


def test_encryption_certificate_cannot_log_in(provinces, validator):
    p = provinces[0]
    # RFC 5280 §4.2.1.3: the encryption half of a dual-certificate UKey lacks digitalSignature.
    leaf = p.issue(USCC, key_usage=ENCRYPTION)
    assert _rejected(validator, leaf.der, [_trusted(p)]).reason == R.ENCRYPTION_CERTIFICATE
    lenient = replace(_trusted(p), profile=replace(p.profile, require_digital_signature=False))
    assert validator.validate(leaf.der, [], [lenient], production=False)


def test_absent_key_usage_places_no_restriction(provinces, validator):
    p = provinces[0]
    # RFC 5280 §4.2.1.3: without the extension the key may be used for any purpose.
    assert validator.validate(p.issue(USCC, key_usage=None).der, [], [_trusted(p)], production=False)


def test_ca_certificate_is_not_a_login_credential(provinces, validator):
    p = provinces[0]
    leaf = p.issue(USCC, ca_flag=True)
    assert _rejected(validator, leaf.der, [_trusted(p)]).reason == R.KEY_USAGE


def test_extended_key_usage_only_where_the_profile_demands_it(provinces, validator):
    p = provinces[0]
    strict = replace(_trusted(p), profile=replace(p.profile, required_ekus=(ExtendedKeyUsageOID.CLIENT_AUTH.dotted_string,)))
    no_eku = p.issue(USCC)
    email = p.issue(USCC, ekus=[ExtendedKeyUsageOID.EMAIL_PROTECTION])
    client = p.issue(USCC, ekus=[ExtendedKeyUsageOID.CLIENT_AUTH])
    # Chinese UKey certificates often carry no EKU: the default profile demands none.
    assert validator.validate(no_eku.der, [], [_trusted(p)], production=False)
    # RFC 5280 §4.2.1.12
    assert _rejected(validator, no_eku.der, [strict]).reason == R.EXTENDED_KEY_USAGE
    assert _rejected(validator, email.der, [strict]).reason == R.EXTENDED_KEY_USAGE
    assert validator.validate(client.der, [], [strict], production=False)


def test_unrecognised_critical_extension(provinces, validator):
    p = provinces[0]
    leaf = p.issue(USCC, extensions=[("1.2.156.10260.4.4", printable(USCC)), ("1.3.6.1.4.1.55555.99", printable("x"))],
                   critical_oids=("1.3.6.1.4.1.55555.99",))
    # RFC 5280 §6.1.4 (o): a critical extension we do not process makes the certificate unusable.
    assert _rejected(validator, leaf.der, [_trusted(p)]).reason == R.MALFORMED_CERTIFICATE
    # ...but an identifier extension the CA's profile reads is recognised even when critical.
    own = p.issue(USCC, critical_oids=("1.2.156.10260.4.4",))
    assert validator.validate(own.der, [], [_trusted(p)], production=False)


# ---- revocation (RFC 5280 §6.1.3 (a)(3), §6.3)


def test_revoked_by_crl(provinces, validator):
    p = provinces[1]
    leaf = p.issue(USCC)
    other = p.issue(USCC)
    ca = _trusted(p, revoked=[leaf.cert.serial_number, 42])
    assert _rejected(validator, leaf.der, [ca]).reason == R.REVOKED
    assert validator.validate(other.der, [], [ca], production=False)


def test_unknown_revocation_status_fails_closed_unless_the_profile_allows_it(provinces, validator):
    p = provinces[1]
    leaf = p.issue(USCC)
    no_crl = p.trusted(1)
    assert _rejected(validator, leaf.der, [no_crl]).reason == R.REVOCATION_UNKNOWN
    allowed = replace(no_crl, profile=replace(p.profile, revocation_unknown_allowed=True))
    assert validator.validate(leaf.der, [], [allowed], production=False)


def test_stale_crl_is_no_answer(provinces, validator, clock):
    p = provinces[1]
    leaf = p.issue(USCC)
    ca = _trusted(p, crl_der=make_crl(p.intermediate, next_update=clock.now() + timedelta(hours=1)))
    validator.validate(leaf.der, [], [ca], production=False)
    clock.advance(3601)
    # RFC 5280 §6.3.3 (a): a CRL past nextUpdate is not current.
    err = _rejected(validator, leaf.der, [ca])
    assert err.reason == R.REVOCATION_UNKNOWN and "nextUpdate" in err.detail


def test_crl_signed_by_another_key_is_ignored_not_trusted(provinces, validator):
    p = provinces[1]
    leaf = p.issue(USCC)
    forged = make_crl(p.intermediate, [], signer_key=make_ca("x", "y").key)
    # RFC 5280 §6.3.3 (f): the CRL must verify with the issuer's key.
    err = _rejected(validator, leaf.der, [_trusted(p, crl_der=forged)])
    assert err.reason == R.REVOCATION_UNKNOWN and "not signed" in err.detail


def test_revoked_intermediate(provinces, validator):
    p = provinces[2]
    sub = make_sub_ca(p.root, "Beijing CA Issuing CA 2")
    leaf = issue_leaf(sub)
    ca = replace(_trusted(p), intermediates=(sub.cert,), profile=replace(p.profile, revocation_unknown_allowed=True),
                 crl_der=make_crl(p.root, [sub.cert.serial_number]))
    err = _rejected(validator, leaf.der, [ca], require_identifier=False)
    assert err.reason == R.REVOKED and "CA certificate" in err.detail


# ---- SM2 / SM3 (GM/T 0003, 0004): P-256 certificates relabelled as SM2 (issue 10: an SM2
# certificate whose curve is not SM2 is refused with its own reason, never a crash). Real SM2
# paths made by OpenSSL are in test_sm2_paths.py.


@pytest.mark.parametrize(("signature", "key", "reason"), [
    # P-256 point labelled sm2p256v1: not a point of the SM2 curve.
    (True, True, R.SM2_WRONG_CURVE), (False, True, R.SM2_WRONG_CURVE),
    # SM2-with-SM3 signature label over an ECDSA signature by a P-256 issuer key.
    (True, False, R.SM2_WRONG_CURVE),
])
def test_sm2_relabelled_leaf_is_refused_with_its_own_reason(provinces, validator, signature, key, reason):
    p = provinces[0]
    der = sm2_variant(p.issue(USCC).cert, signature=signature, key=key)
    err = _rejected(validator, der, [_trusted(p)])
    assert err.reason == reason
    assert "SM2 curve" in err.public_message


def test_sm2_relabelled_ca_in_the_chain_is_refused(provinces, validator):
    p = provinces[0]
    leaf = p.issue(USCC)
    sm2_sub = x509.load_der_x509_certificate(sm2_variant(p.intermediate.cert))
    ca = replace(_trusted(p), intermediates=())
    assert _rejected(validator, leaf.der, [ca], chain=[_der(sm2_sub)]).reason == R.SM2_WRONG_CURVE
    # Registered by the CA itself (not sent by the client): refused by path building (the
    # relabelled key cannot verify anything), not a crash.
    assert _rejected(validator, leaf.der, [replace(ca, intermediates=(sm2_sub,))]).reason in (
        R.SM2_WRONG_CURVE, R.BAD_SIGNATURE)


# ---- identifiers


def test_no_identifier_and_malformed_identifier(provinces, validator):
    p = provinces[0]
    none = issue_leaf(p.intermediate)
    bad = p.issue("91350100M000100Y44")  # GB 32100-2015 check character wrong
    assert _rejected(validator, none.der, [_trusted(p)]).reason == R.NO_IDENTIFIER
    err = _rejected(validator, bad.der, [_trusted(p)])
    assert err.reason == R.MALFORMED_IDENTIFIER and "1.2.156.10260.4.4" in err.detail
    result = validator.validate(none.der, [], [_trusted(p)], production=False, require_identifier=False)
    assert result.mapping.identifier is None


# ---- malformed input


@pytest.mark.parametrize("data", [b"", b"\x00", b"not a certificate", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                                  b"\x30\x82\xff\xff" + b"\x00" * 10, b"\x30" * 70000])
def test_malformed_certificate(provinces, validator, data):
    assert _rejected(validator, data, [_trusted(provinces[0])]).reason == R.MALFORMED_CERTIFICATE


def test_truncated_and_garbage_chain(provinces, validator):
    p = provinces[0]
    leaf = p.issue(USCC)
    assert _rejected(validator, leaf.der[:-5], [_trusted(p)]).reason == R.MALFORMED_CERTIFICATE
    assert _rejected(validator, leaf.der, [_trusted(p)], chain=[b"junk"]).reason == R.MALFORMED_CERTIFICATE
    assert _rejected(validator, leaf.der, [_trusted(p)], chain=[leaf.der] * 9).reason == R.MALFORMED_CERTIFICATE


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_mutated_certificates_never_crash(provinces, validator, data):
    p = provinces[0]
    der = bytearray(_FUZZ_BASE.setdefault("der", p.issue(USCC).der))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(der) - 1))
        der[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(der)))
    try:
        validator.validate(bytes(der[:cut]), [], [_trusted(p)], production=False)
    except CertificateRejectedError as exc:
        assert exc.reason in set(RejectionReason)


_FUZZ_BASE: dict[str, bytes] = {}


# ---- the error contract


def test_every_reason_has_a_fixed_ascii_public_message():
    assert set(PUBLIC_MESSAGES) == set(RejectionReason)
    for reason in RejectionReason:
        err = CertificateRejectedError(reason, "detail with 示例 and serial 1f")
        assert err.public_message == PUBLIC_MESSAGES[reason]
        assert err.public_message.isascii() and "1f" not in err.public_message
        assert err.detail == "detail with 示例 and serial 1f"
        assert err.code == "certificate_rejected"
