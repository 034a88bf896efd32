"""SMS one-time codes and TOTP: single use, short-lived, attempt-limited (OWASP ASVS 5
§6.6), on the real Redis store and the injected clock."""

from __future__ import annotations

import pyotp
import pytest

from common.crypto import KeyedHasher
from realname.otp import CODE_TTL, MAX_ATTEMPTS, OneTimeCodeService, OtpThrottledError
from realname.totp import (
    TotpVerifier,
    hash_recovery_code,
    new_recovery_codes,
    new_secret,
    provisioning_uri,
    qr_svg,
)

HASHER = KeyedHasher(b"k" * 32)


@pytest.fixture
def otp(store, clock):
    return OneTimeCodeService(store=store, clock=clock, hasher=HASHER)


def test_code_is_single_use(otp):
    code = otp.issue("phone", "13800138000", phone="13800138000", client_ip="10.0.0.1")
    assert len(code) == 6 and code.isdigit()
    assert otp.verify("phone", "13800138000", code)
    assert not otp.verify("phone", "13800138000", code)


def test_code_is_bound_to_purpose_and_target(otp):
    code = otp.issue("phone", "13800138000", phone="13800138000", client_ip="10.0.0.1")
    assert not otp.verify("login", "13800138000", code)
    assert not otp.verify("phone", "13900000000", code)
    assert otp.verify("phone", "13800138000", code)


def test_code_expires_by_the_clock(otp, clock):
    code = otp.issue("phone", "13800138000", phone="13800138000", client_ip="10.0.0.1")
    clock.advance(CODE_TTL)
    assert not otp.verify("phone", "13800138000", code)


def test_wrong_attempts_kill_the_code(otp):
    code = otp.issue("phone", "13800138000", phone="13800138000", client_ip="10.0.0.1")
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for _ in range(MAX_ATTEMPTS):
        assert not otp.verify("phone", "13800138000", wrong)
    assert not otp.verify("phone", "13800138000", code)


def test_resend_is_throttled(otp):
    otp.issue("phone", "13800138000", phone="13800138000", client_ip="10.0.0.1")
    with pytest.raises(OtpThrottledError):
        otp.issue("phone", "13800138000", phone="13800138000", client_ip="10.0.0.1")
    otp.issue("phone", "13900000000", phone="13900000000", client_ip="10.0.0.1")  # another target is independent


def test_codes_are_not_stored_in_clear(otp, store):
    code = otp.issue("phone", "13800138000", phone="13800138000", client_ip="10.0.0.1")
    raw = b"".join(v or b"" for v in store.get_many(*[k.decode().removeprefix(store._prefix) for k in
                                                      store._redis.scan_iter(match=store._prefix + "*")]))
    assert code.encode() not in raw and b"13800138000" not in raw


def test_totp_accepts_current_code_once(store, clock):
    secret = new_secret()
    verifier = TotpVerifier(store=store, clock=clock, hasher=HASHER)
    code = pyotp.TOTP(secret).at(clock.timestamp())
    assert verifier.verify(secret, code, replay_key="acct-1")
    assert not verifier.verify(secret, code, replay_key="acct-1")  # replay in the same step


def test_totp_window_is_one_step(store, clock):
    secret = new_secret()
    verifier = TotpVerifier(store=store, clock=clock, hasher=HASHER)
    totp = pyotp.TOTP(secret)
    now = clock.timestamp()
    assert verifier.verify(secret, totp.at(now - 30), replay_key="a")  # previous step: drift
    assert not verifier.verify(secret, totp.at(now - 90), replay_key="a")
    assert not verifier.verify(secret, "12345", replay_key="a")
    assert not verifier.verify(secret, "abcdef", replay_key="a")


def test_enrollment_material():
    secret = new_secret()
    uri = provisioning_uri(secret, "alice")
    assert uri.startswith("otpauth://totp/Yiwang:alice?") and f"secret={secret}" in uri
    svg = qr_svg(uri)
    assert svg.startswith("<svg") and "<script" not in svg
    codes = new_recovery_codes()
    assert len(codes) == len(set(codes)) == 10
    assert hash_recovery_code(HASHER, "a", codes[0]) == hash_recovery_code(HASHER, "a", codes[0].upper() + " ")
    assert hash_recovery_code(HASHER, "a", codes[0]) != hash_recovery_code(HASHER, "b", codes[0])
