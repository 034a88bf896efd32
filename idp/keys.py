"""Signing keys: generation, encrypted storage, rotation with overlap, JWKS.

Lifecycle per algorithm (RFC 7517; OIDC Core §10.1.1 rotation): a ``next`` key is
published in the JWKS before it signs anything, so relying parties that cache the JWKS
already know it when it becomes ``active``; a ``retired`` key stays published until every
token it signed has expired. ES256 is the default; RS256 is always available because
OIDC Core §15.1 requires it.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from cryptography.exceptions import InvalidTag
from joserfc.jwk import ECKey, RSAKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from common.clock import Clock
from common.crypto import FieldCipher

from .errors import KeyAlreadyRetiredError, KeyNotFoundError, SigningKeyUnavailableError
from .models import SigningKey

ALGORITHMS = ("ES256", "RS256")
_CONTEXT = "idp_signing_keys.private_jwk"


@dataclass(frozen=True)
class ActiveKey:
    kid: str
    alg: str
    key: ECKey | RSAKey


def _generate(alg: str) -> ECKey | RSAKey:
    params: Any = {"alg": alg, "use": "sig"}
    key: ECKey | RSAKey
    if alg == "ES256":
        key = ECKey.generate_key("P-256", parameters=params, private=True)
    elif alg == "RS256":
        key = RSAKey.generate_key(2048, parameters=params, private=True)
    else:  # pragma: no cover - guarded by ALGORITHMS
        raise ValueError(alg)
    # The RFC 7638 thumbprint is a stable kid that reveals nothing.
    key.ensure_kid()
    return key


class KeyService:
    def __init__(self, session: Session, *, clock: Clock, cipher: FieldCipher, max_token_lifetime: int) -> None:
        self._session = session
        self._clock = clock
        self._cipher = cipher
        # A retired key must verify tokens for this long after its last signature,
        # plus the per-process cache delay before every instance stops signing with it.
        self._overlap = timedelta(seconds=max_token_lifetime + KeyCache.TTL + 60)

    def _new_row(self, alg: str, state: str) -> SigningKey:
        key = _generate(alg)
        now = self._clock.now()
        row = SigningKey(
            kid=key.kid,
            alg=alg,
            state=state,
            private_jwk_enc=self._cipher.encrypt(json.dumps(key.as_dict(private=True)), _CONTEXT),
            public_jwk=key.as_dict(private=False),
            created_at=now,
            activated_at=now if state == "active" else None,
        )
        self._session.add(row)
        return row

    def ensure_keys(self) -> bool:
        """Make sure every algorithm has an active and a next key. Returns True when it
        created any. Flushes."""
        created = False
        for alg in ALGORITHMS:
            states = set(
                self._session.scalars(
                    select(SigningKey.state).where(SigningKey.alg == alg, SigningKey.state.in_(("active", "next")))
                )
            )
            if "active" not in states:
                self._new_row(alg, "active")
                created = True
            if "next" not in states:
                self._new_row(alg, "next")
                created = True
        self._session.flush()
        return created

    def rotate(self, alg: str | None = None) -> list[SigningKey]:
        """Retire the active key, promote the published next key, create a new next key.
        Returns the newly active keys. Flushes."""
        self.ensure_keys()
        now = self._clock.now()
        promoted = []
        for a in [alg] if alg else list(ALGORITHMS):
            if a not in ALGORITHMS:
                raise KeyNotFoundError(a, public_message=f"Unknown algorithm {a}.")
            rows = {
                r.state: r
                for r in self._session.scalars(
                    select(SigningKey).where(SigningKey.alg == a, SigningKey.state.in_(("active", "next")))
                )
            }
            old, nxt = rows["active"], rows["next"]
            # One state change per flush, so the one-live-key-per-state index holds
            # after every statement.
            old.state = "retired"
            old.retired_at = now
            old.unpublish_after = now + self._overlap
            self._session.flush()
            nxt.state = "active"
            nxt.activated_at = now
            self._session.flush()
            promoted.append(nxt)
            self._new_row(a, "next")
        self._session.flush()
        return promoted

    def retire(self, kid: str, *, unpublish: bool = False) -> SigningKey:
        """Take one key out of use ahead of schedule (a suspected compromise, a
        decommissioned algorithm). An active key is rotated (the published next key takes
        over); a next key, which never signed, is retired and replaced. ``unpublish``
        also removes the key from the JWKS now, so tokens it signed stop verifying
        (RFC 7517 §5: a verifier only trusts published keys); otherwise it stays
        published for the usual overlap. Raises ``KeyNotFoundError``, or
        ``KeyAlreadyRetiredError`` for a retired key that is already unpublished (or
        when ``unpublish`` is not asked). Flushes."""
        row = self._session.scalars(select(SigningKey).where(SigningKey.kid == kid)).first()
        if row is None:
            raise KeyNotFoundError(kid, public_message="No such signing key.")
        now = self._clock.now()
        if row.state == "active":
            self.rotate(row.alg)
        elif row.state == "next":
            row.state = "retired"
            row.retired_at = now
            # Never used to sign: nothing to verify, it may leave the JWKS at once.
            row.unpublish_after = now
            self._session.flush()
            self._new_row(row.alg, "next")
        elif not unpublish or (row.unpublish_after is not None and row.unpublish_after <= now):
            raise KeyAlreadyRetiredError(kid)
        if unpublish:
            row.unpublish_after = now
        self._session.flush()
        return row

    def rotate_if_due(self, max_age_days: int) -> list[SigningKey]:
        now = self._clock.now()
        due = [
            r.alg
            for r in self._session.scalars(select(SigningKey).where(SigningKey.state == "active"))
            if r.activated_at and now - r.activated_at >= timedelta(days=max_age_days)
        ]
        out: list[SigningKey] = []
        for alg in due:
            out.extend(self.rotate(alg))
        return out

    def all(self) -> list[SigningKey]:
        return list(self._session.scalars(select(SigningKey).order_by(SigningKey.id)))

    def published(self) -> list[SigningKey]:
        """Keys in the JWKS: next, active, and retired keys whose tokens may be live."""
        now = self._clock.now()
        rows = self._session.scalars(select(SigningKey).order_by(SigningKey.id))
        return [r for r in rows if r.state != "retired" or (r.unpublish_after and r.unpublish_after > now)]

    def jwks(self) -> dict[str, Any]:
        return {"keys": [dict(r.public_jwk) for r in self.published()]}

    def active_kids(self) -> dict[str, str]:
        """alg → kid of the active keys (cheap: no decryption)."""
        rows = self._session.execute(select(SigningKey.alg, SigningKey.kid).where(SigningKey.state == "active"))
        return {alg: kid for alg, kid in rows}

    def active(self) -> dict[str, ActiveKey]:
        out = {}
        for row in self._session.scalars(select(SigningKey).where(SigningKey.state == "active")):
            data = json.loads(self._cipher.decrypt(row.private_jwk_enc, _CONTEXT))
            key = ECKey.import_key(data) if row.alg == "ES256" else RSAKey.import_key(data)
            out[row.alg] = ActiveKey(row.kid, row.alg, key)
        return out

    def key_for_verification(self, kid: str) -> ECKey | RSAKey | None:
        """One of our keys by kid, in any state, rebuilt from its encrypted private part, so
        a row whose public key was swapped in the database does not verify (signed audit
        checkpoints outlive the JWKS). None when unknown or undecryptable."""
        row = self._session.scalars(select(SigningKey).where(SigningKey.kid == kid)).first()
        if row is None:
            return None
        try:
            data = json.loads(self._cipher.decrypt(row.private_jwk_enc, _CONTEXT))
        except (ValueError, KeyError, InvalidTag):
            return None
        return ECKey.import_key(data) if row.alg == "ES256" else RSAKey.import_key(data)

    def reencrypt(self) -> int:
        """Re-encrypt private keys under the active data key (after a data-key rotation)."""
        n = 0
        for row in self._session.scalars(select(SigningKey)):
            if self._cipher.key_id(row.private_jwk_enc) != self._cipher.active:
                plain = self._cipher.decrypt(row.private_jwk_enc, _CONTEXT)
                row.private_jwk_enc = self._cipher.encrypt(plain, _CONTEXT)
                n += 1
        self._session.flush()
        return n


class KeyCache:
    """Per-process cache of the active signing keys and the public key set.

    Policy: refreshed every ``TTL`` seconds; rotation publishes the next key long before
    (``KeyService``), so an instance signing with a just-retired key for up to ``TTL``
    seconds produces tokens every verifier still accepts.
    """

    TTL = 30.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._expires = 0.0
        self._active: dict[str, ActiveKey] = {}
        self._jwks: dict[str, Any] = {"keys": []}
        self._verify: dict[str, ECKey | RSAKey] = {}
        self._last_forced = 0.0

    def _refresh(self, service: KeyService, *, force: bool = False) -> None:
        # Once loaded, a refresh never makes requests wait: the thread that gets the lock
        # reloads, the others keep signing with the current keys (still valid: see the
        # class policy).
        loaded = bool(self._active)
        if not self._lock.acquire(blocking=not loaded or force):
            return
        try:
            if self._expires > time.monotonic() and not force:
                return
            kids = service.active_kids()
            # Decrypt and parse private keys only when the active set changed.
            if {a: k.kid for a, k in self._active.items()} != kids:
                active = service.active()
            else:
                active = self._active
            jwks = service.jwks()
            verify: dict[str, ECKey | RSAKey] = {}
            for jwk in jwks["keys"]:
                known = self._verify.get(jwk["kid"])
                verify[jwk["kid"]] = known or (
                    ECKey.import_key(jwk) if jwk["kty"] == "EC" else RSAKey.import_key(jwk)
                )
            self._active, self._jwks, self._verify = active, jwks, verify
            self._expires = time.monotonic() + self.TTL
        finally:
            self._lock.release()

    def signing_key(self, service: KeyService, alg: str) -> ActiveKey:
        if self._expires <= time.monotonic():
            self._refresh(service)
        if alg not in self._active:
            self._refresh(service, force=True)
        try:
            return self._active[alg]
        except KeyError:
            raise SigningKeyUnavailableError(f"no active {alg} signing key") from None

    def jwks(self, service: KeyService) -> dict[str, Any]:
        if self._expires <= time.monotonic():
            self._refresh(service)
        return self._jwks

    def verification_key(self, service: KeyService, kid: str) -> ECKey | RSAKey | None:
        if self._expires <= time.monotonic():
            self._refresh(service)
        key = self._verify.get(kid)
        now = time.monotonic()
        if key is None and now - self._last_forced > 1.0:
            # A key rotated in by another instance since the last refresh. At most one
            # forced reload a second, so tokens with made-up kids cannot flood the database.
            self._last_forced = now
            self._refresh(service, force=True)
            key = self._verify.get(kid)
        return key

    def invalidate(self) -> None:
        self._expires = 0.0
