"""Crypto helpers: random tokens, keyed hashing (blind indexes, secret hashes), field
encryption with AES-GCM and key ids (rotation), constant-time comparison."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def random_token(nbytes: int = 32) -> str:
    """A URL-safe random token with ``nbytes`` bytes of entropy."""
    return secrets.token_urlsafe(nbytes)


def constant_time_equals(a: str | bytes, b: str | bytes) -> bool:
    if isinstance(a, str):
        a = a.encode()
    if isinstance(b, str):
        b = b.encode()
    return hmac.compare_digest(a, b)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class KeyedHasher:
    """HMAC-SHA-256 under a server key, with a label per purpose so one key never
    produces the same digest for two kinds of data (a client secret and a blind index)."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("keyed hashing needs a key of at least 32 bytes")
        self._key = key

    def digest(self, label: str, value: str | bytes) -> str:
        if isinstance(value, str):
            value = value.encode()
        mac = hmac.new(self._key, label.encode() + b"\x00" + value, hashlib.sha256)
        return b64url(mac.digest())

    def verify(self, label: str, value: str | bytes, expected: str) -> bool:
        return constant_time_equals(self.digest(label, value), expected)


class FieldCipher:
    """AES-256-GCM per field. Ciphertext format: ``v1.<key id>.<nonce+ct base64url>``; the
    key id lets old ciphertexts decrypt after the active key changes (rotation). The
    associated data binds a ciphertext to its column so values cannot be swapped."""

    def __init__(self, keys: Mapping[str, bytes], active: str) -> None:
        if active not in keys:
            raise ValueError("the active data key is not among the configured keys")
        for kid, key in keys.items():
            if len(key) != 32:
                raise ValueError(f"data key {kid!r} must be 32 bytes")
            if "." in kid:
                raise ValueError("a data key id cannot contain '.'")
        self._keys = {kid: AESGCM(key) for kid, key in keys.items()}
        self.active = active

    def encrypt(self, plaintext: bytes | str, context: str) -> str:
        if isinstance(plaintext, str):
            plaintext = plaintext.encode()
        nonce = os.urandom(12)
        ct = self._keys[self.active].encrypt(nonce, plaintext, context.encode())
        return f"v1.{self.active}.{b64url(nonce + ct)}"

    def decrypt(self, token: str, context: str) -> bytes:
        version, kid, body = token.split(".", 2)
        if version != "v1" or kid not in self._keys:
            raise ValueError("unknown ciphertext version or key id")
        raw = b64url_decode(body)
        return self._keys[kid].decrypt(raw[:12], raw[12:], context.encode())

    def key_id(self, token: str) -> str:
        return token.split(".", 2)[1]
