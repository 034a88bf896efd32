"""TOTP second factor (RFC 6238, via pyotp) and recovery codes.

Secrets are stored encrypted by the caller; a code is accepted once (the time step it
was used in is remembered in the shared store, so a shoulder-surfed code cannot be
replayed within its 30 s window); recovery codes are shown once and stored as keyed
hashes."""

from __future__ import annotations

import io
import secrets

import pyotp
import segno

from common.clock import Clock
from common.crypto import KeyedHasher, constant_time_equals
from common.store import Store

ISSUER_NAME = "Yiwang"
RECOVERY_CODES = 10


def new_secret() -> str:
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, account_label: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=account_label, issuer_name=ISSUER_NAME)


def qr_svg(uri: str) -> str:
    """The provisioning URI as an inline SVG QR code (no script, no external request)."""
    buf = io.BytesIO()
    # A viewBox (omitsize) rather than a fixed width/height: the page sizes the code with
    # CSS, and a fixed size larger than that box would clip modules and the quiet zone.
    segno.make(uri, error="m").save(buf, kind="svg", scale=5, border=2, xmldecl=False, svgns=True, omitsize=True)
    return buf.getvalue().decode()


def new_recovery_codes() -> list[str]:
    alphabet = "23456789abcdefghjkmnpqrstuvwxyz"
    return ["".join(secrets.choice(alphabet) for _ in range(10)) for _ in range(RECOVERY_CODES)]


def hash_recovery_code(hasher: KeyedHasher, account_key: str, code: str) -> str:
    normalised = code.strip().lower().replace("-", "").replace(" ", "")
    return hasher.digest("recovery-code", f"{account_key}\x00{normalised}")


class TotpVerifier:
    def __init__(self, *, store: Store, clock: Clock, hasher: KeyedHasher) -> None:
        self._store = store
        self._clock = clock
        self._hasher = hasher

    def verify(self, secret: str, code: str, *, replay_key: str) -> bool:
        """Accept the code of the current 30 s step or one step either side (clock
        drift, RFC 6238 §5.2), once."""
        code = code.strip().replace(" ", "")
        if len(code) != 6 or not code.isdigit():
            return False
        totp = pyotp.TOTP(secret)
        now = self._clock.timestamp()
        for offset in (0, -1, 1):
            step = now // 30 + offset
            if constant_time_equals(totp.at(step * 30), code):
                # Once per secret and step: replacing an authenticator takes a code of the old
                # one and of the new one, which may fall in the same step (issue 17).
                key = "totp-used:" + self._hasher.digest("totp-step", f"{replay_key}\x00{secret}\x00{step}")
                return self._store.set_if_absent(key, b"1", 120)
        return False
