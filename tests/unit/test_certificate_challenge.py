"""The certificate-login challenge (certificates.service): single use, short-lived, and
only for the browser it was shown to — a signature captured on one browser must not log
in on another."""

from __future__ import annotations

from certificates.service import CertificateLoginService
from certificates.settings import CertificateSettings
from common.clock import FrozenClock
from common.store import MemoryStore


def _service(clock: FrozenClock, ttl: int = 300) -> CertificateLoginService:
    # Only the challenge rules are exercised: they use the store and the settings alone.
    return CertificateLoginService(None, None, None, MemoryStore(clock), CertificateSettings(challenge_ttl=ttl))  # type: ignore[arg-type]


def test_a_challenge_is_used_once_by_its_own_browser():
    svc = _service(FrozenClock())
    challenge = svc.new_challenge("browser-a")
    assert len(challenge) == 48 and all(c in "0123456789abcdef" for c in challenge)
    assert svc.consume_challenge(challenge, "browser-a")
    assert not svc.consume_challenge(challenge, "browser-a")


def test_another_browser_cannot_use_it_and_burns_it():
    svc = _service(FrozenClock())
    challenge = svc.new_challenge("browser-a")
    assert not svc.consume_challenge(challenge, "browser-b")
    # Consumed by the attempt: the captured challenge is gone for everyone.
    assert not svc.consume_challenge(challenge, "browser-a")


def test_it_expires_after_the_configured_time():
    clock = FrozenClock()
    svc = _service(clock, ttl=60)
    challenge = svc.new_challenge("browser-a")
    clock.advance(61)
    assert not svc.consume_challenge(challenge, "browser-a")


def test_empty_oversized_or_ownerless_attempts_are_refused():
    svc = _service(FrozenClock())
    challenge = svc.new_challenge("browser-a")
    assert not svc.consume_challenge("", "browser-a")
    assert not svc.consume_challenge("a" * 65, "browser-a")
    assert not svc.consume_challenge(challenge, "")


def test_mtls_header_is_trusted_only_from_configured_proxies():
    off = CertificateSettings()
    assert not off.mtls_enabled and not off.trusts_header_from("127.0.0.1")
    on = CertificateSettings(client_cert_header="X-SSL-Client-Cert", client_cert_proxies=("10.0.0.5",))
    assert on.mtls_enabled
    assert on.trusts_header_from("10.0.0.5")
    assert not on.trusts_header_from("10.0.0.6")
