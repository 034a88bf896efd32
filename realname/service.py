"""Real-name verification: binding a registry-confirmed identity to an account, the
phone carrier check (三要素), TOTP factors and recovery codes, and re-encryption after a
data-key rotation. Services flush, never commit."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from common.audit import AuditTrail
from common.clock import Clock
from common.crypto import FieldCipher, KeyedHasher
from common.db import insert_unique
from common.store import Store
from common.throttle import Throttle

from .errors import (
    DuplicateIdentityError,
    RealnameInputError,
    RegistrationThrottledError,
    RegistryUnavailableError,
    VerificationFailedError,
    VerificationThrottledError,
)
from .idnumbers import InvalidIdNumberError, ResidentId, parse_id_number
from .levels import account_level
from .models import Identity, RecoveryCode, TotpFactor
from .names import InvalidNameError, normalize_name
from .registry import Outcome, RegistryAdapter
from .settings import RealnameSettings
from .totp import TotpVerifier, hash_recovery_code, new_recovery_codes

log = logging.getLogger("yiwang.realname")

_NAME_MESSAGES = {
    "empty": "Please enter your name as on your ID card.",
    "too_long": "The name is too long.",
    "characters": "Enter the name in Chinese characters as on your ID card (use · in minority names).",
}
_ID_MESSAGES = {
    "format": "An ID number has 18 characters (17 digits and a digit or X).",
    "region": "This is not a valid ID number.",
    "birth_date": "The birth date in this ID number is not valid.",
    "checksum": "This ID number has a typing error (its check character does not match).",
}


def parse_identity_input(name: str, id_number: str, *, today: date) -> tuple[str, ResidentId]:
    """Normalise form input; raise ``RealnameInputError`` naming the field."""
    try:
        clean_name = normalize_name(name)
    except InvalidNameError as exc:
        raise RealnameInputError("name", exc.reason, _NAME_MESSAGES[exc.reason]) from None
    try:
        rid = parse_id_number(id_number, today=today)
    except InvalidIdNumberError as exc:
        raise RealnameInputError("id_number", exc.reason, _ID_MESSAGES[exc.reason]) from None
    return clean_name, rid


@dataclass(frozen=True)
class IdentityView:
    """What may be shown about an identity without an audited reveal."""

    proofing_level: str
    masked_name: str
    id_number_masked: str
    verified_at: str
    verified_by: str
    phone_bound: bool


class RealnameService:
    def __init__(
        self,
        session: Session,
        *,
        store: Store,
        clock: Clock,
        hasher: KeyedHasher,
        cipher: FieldCipher,
        registry: RegistryAdapter,
        settings: RealnameSettings,
        audit: AuditTrail | None = None,
    ) -> None:
        self._session = session
        self._store = store
        self._clock = clock
        self._hasher = hasher
        self._cipher = cipher
        self._registry = registry
        self._s = settings
        self._audit = audit
        self._limits = Throttle(store=store, clock=clock)

    # -- look-ups -----------------------------------------------------------------------

    def id_index(self, number: str) -> str:
        return self._hasher.digest("id-number", number)

    def identity_of(self, account_id: int) -> Identity | None:
        return self._session.scalars(select(Identity).where(Identity.account_id == account_id)).first()

    def account_for_id_number(self, number: str) -> int | None:
        row = self._session.scalars(select(Identity.account_id).where(Identity.id_index == self.id_index(number))).first()
        return int(row) if row is not None else None

    def name_of(self, identity: Identity) -> str:
        return self._cipher.decrypt(identity.name_enc, "realname_identities.name").decode()

    def id_number_of(self, identity: Identity) -> str:
        """The full number: only for derived claims computed in memory and audited
        reveals; never for display or logs."""
        return self.decrypt_id_number(identity.id_number_enc)

    def decrypt_id_number(self, id_number_enc: str) -> str:
        """``id_number_of`` for the stored ciphertext alone (a cached claim source)."""
        return self._cipher.decrypt(id_number_enc, "realname_identities.id_number").decode()

    def view(self, identity: Identity) -> IdentityView:
        from .names import mask_name

        return IdentityView(
            proofing_level=identity.proofing_level,
            masked_name=mask_name(self.name_of(identity)),
            id_number_masked=identity.id_number_masked,
            verified_at=identity.verified_at.isoformat(),
            verified_by=identity.verified_by,
            phone_bound=identity.phone_bound_at is not None,
        )

    def level_of(self, account_id: int) -> str:
        identity = self.identity_of(account_id)
        return account_level(
            proofing_level=identity.proofing_level if identity else None,
            has_totp=self.has_totp(account_id),
            phone_bound=bool(identity and identity.phone_bound_at),
        )

    # -- verification -------------------------------------------------------------------

    def _throttle(self, account_key: str, client_ip: str) -> None:
        for key, limit in (
            ("verify-rate:acct:" + self._hasher.digest("verify-acct", account_key), self._s.verify_max_per_account_hour),
            ("verify-rate:ip:" + self._hasher.digest("verify-ip", client_ip), self._s.verify_max_per_ip_hour),
        ):
            if self._limits.hit(key, 3600) > limit:
                raise VerificationThrottledError("rate limit")

    def throttle_registration(self, client_ip: str) -> None:
        """Count one registration attempt from ``client_ip`` (keyed hash); raises
        ``RegistrationThrottledError`` past ``register_max_per_ip_hour`` this hour.
        Issue 17 / OWASP ASVS 5 §2.4: called before the form is looked at, so no input
        (valid or not) gets an answer of any kind once the IP is over its limit."""
        key = "register-rate:ip:" + self._hasher.digest("register-ip", client_ip)
        if self._limits.hit(key, 3600) > self._s.register_max_per_ip_hour:
            log.info("registration throttled")
            raise RegistrationThrottledError("rate limit")

    def check_registry(
        self, name: str, rid: ResidentId, *, account_key: str, client_ip: str, client_id: str | None = None
    ) -> None:
        """Ask the registry (二要素). Raises ``VerificationThrottledError``,
        ``RegistryUnavailableError`` or ``VerificationFailedError``; returns on a match.
        Every call is rate-limited and logged with its result, never with the number."""
        # Audit: an account's own check is theirs; a registration has no account yet.
        actor = "account:" + account_key[5:] if account_key.startswith("acct:") else "anonymous"
        try:
            self._throttle(account_key, client_ip)
        except VerificationThrottledError:
            self._record("realname.verify", actor, "denied", "throttled", client_ip, client_id)
            raise
        outcome = self._registry.verify(name, rid.number)
        log.info("registry verification", extra={"result": outcome.value, "adapter": self._registry.name})
        result = "ok" if outcome is Outcome.MATCH else "error" if outcome is Outcome.UNAVAILABLE else "denied"
        self._record("realname.verify", actor, result, outcome.value, client_ip, client_id)
        if outcome is Outcome.UNAVAILABLE:
            raise RegistryUnavailableError("registry unavailable")
        if outcome is not Outcome.MATCH:
            raise VerificationFailedError(outcome.value)

    def _record(
        self, action: str, actor: str, outcome: str, reason: str, client_ip: str, client_id: str | None = None
    ) -> None:
        # client_id: the portal whose login led here (the per-client verification-volume alert).
        if self._audit is not None:
            self._audit.record(action, actor=actor, outcome=outcome, reason=reason, ip=client_ip, client_id=client_id,
                               details={"adapter": self._registry.name})

    def bind_identity(self, account_id: int, name: str, rid: ResidentId) -> Identity:
        """Record a registry-confirmed identity for the account (cn-l1). Raises
        ``DuplicateIdentityError`` when the number is bound to another account, or this
        account already has an identity. Flushes."""
        if self.identity_of(account_id) is not None:
            raise DuplicateIdentityError("account already verified")
        now = self._clock.now()
        identity = Identity(
            account_id=account_id,
            id_index=self.id_index(rid.number),
            id_number_enc=self._cipher.encrypt(rid.number, "realname_identities.id_number"),
            name_enc=self._cipher.encrypt(name, "realname_identities.name"),
            id_number_masked=rid.masked,
            proofing_level="cn-l1",
            verified_at=now,
            verified_by=self._registry.name,
            created_at=now,
            updated_at=now,
        )
        insert_unique(self._session, identity, DuplicateIdentityError("id number bound elsewhere"))
        return identity

    def recheck(self, identity: Identity, *, client_ip: str) -> None:
        """Ask the registry again about a verified identity (the citizen's "re-run
        verification"); a match refreshes ``verified_at``. Raises like
        ``check_registry``."""
        name = self.name_of(identity)
        rid = parse_id_number(self.id_number_of(identity), today=self._clock.now().date())
        self.check_registry(name, rid, account_key=f"acct:{identity.account_id}", client_ip=client_ip)
        identity.verified_at = identity.updated_at = self._clock.now()
        identity.verified_by = self._registry.name

    def bind_phone(self, identity: Identity, phone: str, *, client_ip: str) -> bool:
        """三要素: ask the registry/carrier whether ``phone`` belongs to the verified
        person; on a match the phone counts as a bound possession factor (cn-l2). Raises
        ``RegistryUnavailableError`` or ``VerificationThrottledError``."""
        self._throttle(f"acct:{identity.account_id}", client_ip)
        outcome = self._registry.verify_phone(self.name_of(identity), self.id_number_of(identity), phone)
        log.info("registry phone check", extra={"result": outcome.value, "adapter": self._registry.name})
        self._record("realname.phone_check", f"account:{identity.account_id}",
                     "ok" if outcome is Outcome.MATCH else "error" if outcome is Outcome.UNAVAILABLE else "denied",
                     outcome.value, client_ip)
        if outcome is Outcome.UNAVAILABLE:
            raise RegistryUnavailableError("registry unavailable")
        if outcome is Outcome.MATCH:
            identity.phone_bound_at = self._clock.now()
            identity.updated_at = identity.phone_bound_at
            return True
        return False

    # -- TOTP ---------------------------------------------------------------------------

    def has_totp(self, account_id: int) -> bool:
        return self._session.scalars(select(TotpFactor.id).where(TotpFactor.account_id == account_id)).first() is not None

    def start_totp_enrollment(self, account_id: int, secret: str) -> str:
        """Park a new secret (encrypted) for 10 minutes until the user proves it works."""
        key = f"totp-enroll:{account_id}"
        self._store.set(key, self._cipher.encrypt(secret, "totp-enroll").encode(), 600)
        return secret

    def pending_totp_secret(self, account_id: int) -> str | None:
        raw = self._store.get(f"totp-enroll:{account_id}")
        return self._cipher.decrypt(raw.decode(), "totp-enroll").decode() if raw else None

    def confirm_totp(self, account_id: int, code: str) -> list[str] | None:
        """Enroll the parked secret when ``code`` is right; returns the recovery codes
        (shown once), or None for a wrong code. Replaces an earlier authenticator."""
        secret = self.pending_totp_secret(account_id)
        if secret is None:
            return None
        verifier = TotpVerifier(store=self._store, clock=self._clock, hasher=self._hasher)
        if not verifier.verify(secret, code, replay_key=f"acct:{account_id}"):
            return None
        now = self._clock.now()
        for old in self._session.scalars(select(TotpFactor).where(TotpFactor.account_id == account_id)):
            self._session.delete(old)
        for old_code in self._session.scalars(select(RecoveryCode).where(RecoveryCode.account_id == account_id)):
            self._session.delete(old_code)
        self._session.flush()
        self._session.add(TotpFactor(
            account_id=account_id, secret_enc=self._cipher.encrypt(secret, "realname_totp_factors.secret"),
            created_at=now,
        ))
        codes = new_recovery_codes()
        for c in codes:
            self._session.add(RecoveryCode(account_id=account_id, code_hash=hash_recovery_code(self._hasher, str(account_id), c)))
        self._session.flush()
        self._store.delete(f"totp-enroll:{account_id}")
        return codes

    def verify_totp(self, account_id: int, code: str) -> bool:
        factor = self._session.scalars(select(TotpFactor).where(TotpFactor.account_id == account_id)).first()
        if factor is None:
            return False
        secret = self._cipher.decrypt(factor.secret_enc, "realname_totp_factors.secret").decode()
        verifier = TotpVerifier(store=self._store, clock=self._clock, hasher=self._hasher)
        if verifier.verify(secret, code, replay_key=f"acct:{account_id}"):
            factor.last_used_at = self._clock.now()
            return True
        return False

    def use_recovery_code(self, account_id: int, code: str) -> bool:
        digest = hash_recovery_code(self._hasher, str(account_id), code)
        row = self._session.scalars(
            select(RecoveryCode).where(RecoveryCode.code_hash == digest, RecoveryCode.account_id == account_id)
        ).first()
        if row is None or row.used_at is not None:
            return False
        row.used_at = self._clock.now()
        return True

    def reset_factors(self, account_id: int) -> None:
        for model in (TotpFactor, RecoveryCode):
            for row in self._session.scalars(select(model).where(model.account_id == account_id)):
                self._session.delete(row)
        self._session.flush()

    # -- key rotation -------------------------------------------------------------------

    def reencrypt_batch(self, limit: int = 1000) -> int:
        """Re-encrypt up to ``limit`` rows still under an old data key (identities and
        TOTP secrets). Returns how many changed; call until 0 (batches keep
        transactions short, so the service keeps running)."""
        changed = 0
        current = f"v1.{self._cipher.active}.%"
        stale = select(Identity).where(
            or_(Identity.id_number_enc.not_like(current), Identity.name_enc.not_like(current))
        ).order_by(Identity.id).limit(limit)
        for identity in self._session.scalars(stale):
            for f, ctx in (("id_number_enc", "realname_identities.id_number"), ("name_enc", "realname_identities.name")):
                setattr(identity, f, self._cipher.encrypt(self._cipher.decrypt(getattr(identity, f), ctx), ctx))
            changed += 1
        ctx = "realname_totp_factors.secret"
        stale_factors = select(TotpFactor).where(TotpFactor.secret_enc.not_like(current)).order_by(TotpFactor.id)
        for factor in self._session.scalars(stale_factors.limit(max(0, limit - changed))):
            factor.secret_enc = self._cipher.encrypt(self._cipher.decrypt(factor.secret_enc, ctx), ctx)
            changed += 1
        self._session.flush()
        return changed
