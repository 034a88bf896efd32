"""SMS send throttling (issue 17, Medium item 6; OWASP ASVS 5 §2.4 anti-automation, §6.6):
a resend interval and a daily limit per destination phone across every purpose and
attempt, an hourly limit per client IP, and the per-target limits as before — on the real
Redis store and the injected clock, with phone numbers and IPs only as keyed hashes."""

from __future__ import annotations

import pytest

from common.crypto import KeyedHasher
from realname.otp import RESEND_INTERVAL, OneTimeCodeService, OtpThrottledError

HASHER = KeyedHasher(b"k" * 32)
PHONE = "13800138000"
PER_PHONE_DAY = 10
PER_IP_HOUR = 5


@pytest.fixture
def otp(store, clock):
    return OneTimeCodeService(store=store, clock=clock, hasher=HASHER, max_per_phone_day=PER_PHONE_DAY,
                              max_per_ip_hour=PER_IP_HOUR)


def test_resend_interval_is_per_phone_across_attempts_and_purposes(otp, clock):
    otp.issue("register", "attempt-1", phone=PHONE, client_ip="10.0.0.1")
    # A new registration attempt (new target) or another purpose, same phone: refused.
    with pytest.raises(OtpThrottledError):
        otp.issue("register", "attempt-2", phone=PHONE, client_ip="10.0.0.2")
    with pytest.raises(OtpThrottledError):
        otp.issue("login", "acct:1", phone=PHONE, client_ip="10.0.0.3")
    otp.issue("register", "attempt-3", phone="13900000000", client_ip="10.0.0.1")  # another phone
    clock.advance(RESEND_INTERVAL)
    otp.issue("login", "acct:1", phone=PHONE, client_ip="10.0.0.3")


def test_daily_limit_is_per_phone_across_attempts_and_purposes(otp, clock):
    purposes = ("register", "login", "phone-verify")
    for i in range(PER_PHONE_DAY):
        otp.issue(purposes[i % 3], f"target-{i}", phone=PHONE, client_ip=f"10.0.1.{i}")
        clock.advance(RESEND_INTERVAL)
    with pytest.raises(OtpThrottledError):
        otp.issue("register", "target-new", phone=PHONE, client_ip="10.0.2.1")
    clock.advance(86400)
    otp.issue("register", "target-next-day", phone=PHONE, client_ip="10.0.2.1")


def test_hourly_limit_per_ip(otp, clock):
    for i in range(PER_IP_HOUR):
        otp.issue("register", f"attempt-{i}", phone=f"1380000000{i}", client_ip="10.0.0.9")
    with pytest.raises(OtpThrottledError):
        otp.issue("register", "attempt-x", phone="13900000009", client_ip="10.0.0.9")
    otp.issue("register", "attempt-y", phone="13900000008", client_ip="10.0.0.8")  # another IP
    clock.advance(3600)
    otp.issue("register", "attempt-z", phone="13900000009", client_ip="10.0.0.9")


def test_refused_sends_do_not_use_up_the_daily_budget(otp, clock):
    otp.issue("login", "acct:1", phone=PHONE, client_ip="10.0.0.1")
    for _ in range(20):  # hammering inside the interval
        with pytest.raises(OtpThrottledError):
            otp.issue("login", "acct:1", phone=PHONE, client_ip="10.0.0.1")
    clock.advance(RESEND_INTERVAL)
    otp.issue("login", "acct:1", phone=PHONE, client_ip="10.0.0.1")


def test_per_target_limits_still_apply(otp, clock):
    # One target (an account), two phones (the number was changed): the target's own
    # interval still holds.
    otp.issue("login", "acct:7", phone=PHONE, client_ip="10.0.0.1")
    with pytest.raises(OtpThrottledError):
        otp.issue("login", "acct:7", phone="13900000000", client_ip="10.0.0.1")


def test_phone_numbers_ips_and_codes_are_not_in_the_store_in_clear(otp, store):
    code = otp.issue("register", "attempt-1", phone=PHONE, client_ip="10.9.8.7")
    keys = [k.decode() for k in store._redis.scan_iter(match=store._prefix + "*")]
    assert keys
    values = b"".join(v or b"" for v in store.get_many(*[k.removeprefix(store._prefix) for k in keys]))
    for secret in (PHONE, "10.9.8.7", code):
        assert all(secret not in k for k in keys)
        assert secret.encode() not in values
