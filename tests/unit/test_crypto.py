"""Crypto helpers (common/crypto.py): field encryption with key ids and rotation,
context binding (AES-GCM associated data), keyed hashing with purpose labels."""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidTag

from common.crypto import FieldCipher, KeyedHasher, b64url, b64url_decode, constant_time_equals, random_token

K1 = b"1" * 32
K2 = b"2" * 32


def test_round_trip():
    cipher = FieldCipher({"k1": K1}, "k1")
    token = cipher.encrypt("张三", "idp_accounts.name")
    assert token.startswith("v1.k1.")
    assert "张三" not in token
    assert cipher.decrypt(token, "idp_accounts.name").decode() == "张三"
    assert cipher.decrypt(cipher.encrypt(b"\x00\xff", "c"), "c") == b"\x00\xff"


def test_random_nonce_per_encryption():
    # NIST SP 800-38D §8: a GCM nonce is never reused under one key; equal plaintexts
    # therefore give different ciphertexts (no equality leak).
    cipher = FieldCipher({"k1": K1}, "k1")
    assert cipher.encrypt("13800138000", "c") != cipher.encrypt("13800138000", "c")


def test_rotation_keeps_old_ciphertexts_readable():
    old = FieldCipher({"k1": K1}, "k1")
    token = old.encrypt("13800138000", "idp_accounts.phone")
    rotated = FieldCipher({"k1": K1, "k2": K2}, "k2")
    assert rotated.decrypt(token, "idp_accounts.phone") == b"13800138000"
    fresh = rotated.encrypt("13800138000", "idp_accounts.phone")
    assert rotated.key_id(fresh) == "k2" and rotated.key_id(token) == "k1"
    # A process that does not have the new key cannot read new data …
    with pytest.raises(ValueError):
        old.decrypt(fresh, "idp_accounts.phone")
    # … and once the old key is dropped, old data is unreadable too.
    with pytest.raises(ValueError):
        FieldCipher({"k2": K2}, "k2").decrypt(token, "idp_accounts.phone")


def test_context_binding():
    cipher = FieldCipher({"k1": K1}, "k1")
    token = cipher.encrypt("张三", "idp_accounts.name")
    # The column name is associated data: a value copied into another column fails.
    with pytest.raises(InvalidTag):
        cipher.decrypt(token, "idp_accounts.phone")


def test_tampering_is_detected():
    cipher = FieldCipher({"k1": K1}, "k1")
    version, kid, body = cipher.encrypt("value", "c").split(".")
    raw = bytearray(b64url_decode(body))
    raw[-1] ^= 1
    with pytest.raises(InvalidTag):
        cipher.decrypt(f"{version}.{kid}.{b64url(bytes(raw))}", "c")
    with pytest.raises(ValueError):
        cipher.decrypt(f"v2.{kid}.{body}", "c")


def test_same_key_under_another_id_does_not_help_wrong_key():
    token = FieldCipher({"k1": K1}, "k1").encrypt("v", "c")
    with pytest.raises(InvalidTag):
        FieldCipher({"k1": K2}, "k1").decrypt(token, "c")


@pytest.mark.parametrize("keys,active", [({"k1": K1}, "k2"), ({"k1": b"short"}, "k1"), ({"k.1": K1}, "k.1")])
def test_bad_cipher_configuration(keys, active):
    with pytest.raises(ValueError):
        FieldCipher(keys, active)


def test_keyed_hasher_labels_separate_digests():
    hasher = KeyedHasher(K1)
    # One key, several purposes: a client-secret hash must never equal a blind index.
    assert hasher.digest("client-secret", "abc") != hasher.digest("refresh", "abc")
    assert hasher.digest("phone", "13800138000") == hasher.digest("phone", "13800138000")
    # The separator keeps label and value apart: ("ab", "c") is not ("a", "bc").
    assert hasher.digest("ab", "c") != hasher.digest("a", "bc")


def test_keyed_hasher_depends_on_the_key():
    assert KeyedHasher(K1).digest("phone", "x") != KeyedHasher(K2).digest("phone", "x")


def test_keyed_hasher_verify():
    hasher = KeyedHasher(K1)
    digest = hasher.digest("client-secret", "s3cret")
    assert hasher.verify("client-secret", "s3cret", digest)
    assert not hasher.verify("client-secret", "s3cret!", digest)
    assert not hasher.verify("refresh", "s3cret", digest)
    assert hasher.digest("x", "v") == hasher.digest("x", b"v")


def test_keyed_hasher_refuses_short_key():
    with pytest.raises(ValueError):
        KeyedHasher(b"k" * 31)


def test_random_tokens():
    tokens = {random_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(len(t) >= 43 for t in tokens)  # 32 bytes, base64url
    assert len(random_token(16)) >= 21


def test_constant_time_equals():
    assert constant_time_equals("abc", b"abc")
    assert not constant_time_equals("abc", "abd")
    assert not constant_time_equals("abc", "abcd")


def test_client_ids_never_start_with_an_option_dash():
    from idp.clients import new_client_id

    ids = [new_client_id() for _ in range(2000)]
    assert all(i.isalnum() and len(i) == 24 for i in ids) and len(set(ids)) == 2000
