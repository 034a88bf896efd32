"""certificates.sm2 (issue 10): SM2 signature decoding refuses each malformation with its
own reason, never crashes (Hypothesis), and verification agrees with OpenSSL 3's command
line (an independent SM2 implementation) in both directions, for the default and another
signer ID."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certificates import sm2
from certificates.sm2 import Sm2Error, Sm2Failure
from tests.support.gm_pki import DEFAULT_DISTID, OTHER_DISTID, has_openssl_sm2, openssl_verify

pytestmark = pytest.mark.skipif(not has_openssl_sm2(), reason="this machine's openssl cannot make SM2 keys")

R = 0x1F2E3D4C5B6A79880123456789ABCDEF0123456789ABCDEF0123456789ABCDEF
S = 0x7A6B5C4D3E2F10FEDCBA9876543210FEDCBA9876543210FEDCBA98765432100F


def _failure(sig: bytes, *, allow_raw: bool = False) -> Sm2Failure:
    with pytest.raises(Sm2Error) as info:
        sm2.decode_signature(sig, allow_raw=allow_raw)
    return info.value.failure


def test_der_and_raw_forms_decode_to_the_same_numbers():
    der = sm2.encode_der(R, S)
    assert sm2.decode_signature(der) == (R, S)
    assert sm2.decode_signature(sm2.encode_raw(R, S), allow_raw=True) == (R, S)
    # The raw form is only accepted where the caller allows it (UKey login, not certificates).
    assert _failure(sm2.encode_raw(R, S)) is Sm2Failure.MALFORMED


def test_truncated_signatures_are_truncated():
    der = sm2.encode_der(R, S)
    for cut in (1, 2, 10, len(der) - 3, len(der) - 1):
        assert _failure(der[:cut]) is Sm2Failure.TRUNCATED, cut
    assert _failure(b"") is Sm2Failure.TRUNCATED
    assert _failure(sm2.encode_raw(R, S)[:63], allow_raw=True) is Sm2Failure.TRUNCATED


def test_ber_encodings_are_not_canonical():
    inner = sm2.encode_der(R, S)[2:]
    # Long-form SEQUENCE length (X.690 §10.1).
    assert _failure(b"\x30\x81" + bytes([len(inner)]) + inner) is Sm2Failure.NOT_CANONICAL
    # A superfluous leading zero on r.
    r = b"\x02\x21\x00" + R.to_bytes(32, "big")
    s = b"\x02\x21\x00" + S.to_bytes(32, "big")
    assert _failure(b"\x30" + bytes([len(r + s)]) + r + s) is Sm2Failure.NOT_CANONICAL
    # A negative r (the high bit set without the 0x00 pad).
    high = (1 << 255) | R
    r = b"\x02\x20" + high.to_bytes(32, "big")
    s = sm2.encode_der(R, S)[2 + 2 + 32:]
    assert _failure(b"\x30" + bytes([len(r + s)]) + r + s) is Sm2Failure.NOT_CANONICAL
    # Octets after the SEQUENCE.
    assert _failure(sm2.encode_der(R, S) + b"\x00") is Sm2Failure.NOT_CANONICAL


def test_padding_a_component_with_its_high_bit_set_is_not_canonical_either():
    # Regression: r ≥ 2^255 is 33 octets in DER (0x00 + 32); padded once more it is 34
    # octets of BER for the same value, and was reported MALFORMED - so the reason for a
    # padded INTEGER depended on the random r (about half of real signatures).
    high = (1 << 255) | R
    assert high < sm2.N
    r = b"\x02\x22\x00\x00" + high.to_bytes(32, "big")
    s = sm2.encode_der(high, S)[2 + 2 + 33:]
    assert _failure(b"\x30" + bytes([len(r + s)]) + r + s) is Sm2Failure.NOT_CANONICAL
    # An over-long INTEGER that is not padding stays malformed, cut short or not.
    r = b"\x02\x22\x01" + bytes(33)
    assert _failure(b"\x30" + bytes([len(r + s)]) + r + s) is Sm2Failure.MALFORMED
    assert _failure(b"\x30\x04\x02\x22\x00\x00") is Sm2Failure.MALFORMED


def test_out_of_range_components_are_malformed():
    # GB/T 32918.2 §7.1 B1-B2: r, s in [1, n-1].
    for r, s in ((0, S), (R, 0), (sm2.N, S), (R, sm2.N + 5)):
        assert _failure(sm2.encode_der(r, s)) is Sm2Failure.MALFORMED
    assert _failure(b"\x04\x40" + bytes(64)) is Sm2Failure.MALFORMED


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=80), st.booleans())
def test_decoding_arbitrary_bytes_never_crashes(data, allow_raw):
    try:
        r, s = sm2.decode_signature(data, allow_raw=allow_raw)
    except Sm2Error as exc:
        assert isinstance(exc.failure, Sm2Failure)
    else:
        assert 1 <= r < sm2.N and 1 <= s < sm2.N


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=71), st.integers(min_value=0, max_value=255), st.booleans())
def test_mutated_real_signatures_never_crash_and_never_verify(sm2_signature, position, value, allow_raw):
    spki, data, signature = sm2_signature
    mutated = bytearray(signature)
    if position < len(mutated):
        if mutated[position] == value:
            return
        mutated[position] = value
    else:
        mutated.append(value)
    with pytest.raises(Sm2Error) as info:
        sm2.verify(spki, bytes(mutated), data, DEFAULT_DISTID, allow_raw=allow_raw)
    assert isinstance(info.value.failure, Sm2Failure)


def test_openssl_signature_verifies_here_with_its_signer_id_only(gm_pki):
    leaf = gm_pki.leaves["sm2"]
    data = b"yiwang-certificate-login:abc"
    for distid in (DEFAULT_DISTID, OTHER_DISTID):
        signature = gm_pki.sign("sm2", data, distid=distid)
        spki = _spki(leaf.cert_der)
        sm2.verify(spki, signature, data, distid)
        wrong = OTHER_DISTID if distid == DEFAULT_DISTID else DEFAULT_DISTID
        with pytest.raises(Sm2Error) as info:
            sm2.verify(spki, signature, data, wrong)
        assert info.value.failure is Sm2Failure.BAD_SIGNATURE
        with pytest.raises(Sm2Error):
            sm2.verify(spki, signature, data + b"x", distid)
        # The raw form of the same signature verifies too.
        sm2.verify(spki, gm_pki.sign("sm2", data, distid=distid, raw=True), data, distid, allow_raw=True)


def test_signature_made_here_verifies_with_openssl(gm_pki):
    key = sm2.load_private_key(gm_pki.leaves["sm2"].key_pem)
    data = b"any message"
    for distid in (DEFAULT_DISTID, OTHER_DISTID):
        signature = sm2.sign(key, data, distid)
        assert openssl_verify(gm_pki.leaves["sm2"].cert_pem, signature, data, distid=distid)
        assert not openssl_verify(gm_pki.leaves["sm2"].cert_pem, signature, data + b"!", distid=distid)
        raw = sm2.sign(key, data, distid, raw=True)
        assert len(raw) == 64
        assert openssl_verify(gm_pki.leaves["sm2"].cert_pem, sm2.encode_der(*sm2.decode_signature(raw, allow_raw=True)),
                              data, distid=distid)


def test_pkcs12_and_pkcs8_keys_load(gm_pki):
    leaf = gm_pki.leaves["sm2"]
    spki = _spki(leaf.cert_der)
    assert sm2.public_spki(sm2.load_private_key(leaf.key_pem)) == spki
    if leaf.p12_path is not None:
        key = sm2.load_private_key(leaf.p12_path.read_bytes(), b"yiwang", pkcs12=True)
        assert sm2.public_spki(key) == spki
        with pytest.raises(ValueError, match="PKCS#12"):
            sm2.load_private_key(leaf.p12_path.read_bytes(), b"wrong", pkcs12=True)
    rsa = gm_pki.leaves["rsa"]
    with pytest.raises(ValueError, match="not an SM2 key"):
        sm2.load_private_key(rsa.key_pem)


def test_keys_not_on_the_sm2_curve_are_refused(gm_pki):
    from cryptography import x509

    from certificates.signatures import public_key_info

    for name in ("ecdsa", "rsa"):
        cert = x509.load_der_x509_certificate(gm_pki.leaves[name].cert_der)
        with pytest.raises(Sm2Error) as info:
            sm2.verify_key(public_key_info(cert).der)
        assert info.value.failure is Sm2Failure.NOT_SM2_KEY
    # The SM2 algorithm OID used as the SPKI algorithm (some CAs) is an SM2 key.
    cert = x509.load_der_x509_certificate(gm_pki.leaves["sm2_alg_oid_spki"].cert_der)
    sm2.verify_key(public_key_info(cert).der)


def _spki(cert_der: bytes) -> bytes:
    from cryptography import x509

    from certificates.signatures import public_key_info

    return public_key_info(x509.load_der_x509_certificate(cert_der)).der


@pytest.fixture(scope="module")
def sm2_signature(gm_pki):
    data = b"yiwang-certificate-login:fuzz"
    return _spki(gm_pki.leaves["sm2"].cert_der), data, gm_pki.sign("sm2", data)


def test_der_signature_cut_to_64_octets_is_reported_truncated(gm_pki):
    from cryptography import x509

    from certificates.proof import ProofFailure, check_possession, signed_bytes

    cert = x509.load_der_x509_certificate(gm_pki.leaves["sm2"].cert_der)
    # Find a DER signature longer than 64 octets (almost all are 70-72) and cut it to 64.
    for n in range(20):
        challenge = f"cut-{n}"
        der = gm_pki.sign("sm2", signed_bytes(challenge))
        if len(der) > 64:
            break
    import base64

    cut = base64.b64encode(der[:64]).decode()
    assert check_possession(cert, challenge, cut) is ProofFailure.TRUNCATED
    assert check_possession(cert, challenge, base64.b64encode(der).decode()) is None
