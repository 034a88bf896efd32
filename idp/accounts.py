"""Accounts: creation, password login with throttling and lockout, lock/unlock.

Personal data (name, phone) is encrypted per field; the phone is found through a keyed
blind index. Throttling counters live in the shared store so every instance sees them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from common.clock import Clock
from common.crypto import FieldCipher, KeyedHasher, random_token
from common.db import insert_unique
from common.errors import ValidationError
from common.store import Store
from common.throttle import Throttle
from realname.idnumbers import InvalidIdNumberError, parse_id_number
from realname.models import Identity

from .errors import (
    AccountDisabledError,
    AccountNotFoundError,
    DuplicateAccountError,
    InvalidCredentialsError,
    LoginThrottledError,
    SecondFactorLockedError,
)
from .models import Account
from .passwords import PasswordHasher, validate_password
from .settings import IdpSettings

_USERNAME = re.compile(r"^[a-z][a-z0-9_.-]{2,63}$")
_PHONE = re.compile(r"^1[3-9]\d{9}$")


def normalize_username(value: str) -> str:
    return value.strip().lower()


def check_username(value: str) -> bool:
    """True for a username (normalised) that account creation accepts."""
    return bool(_USERNAME.match(normalize_username(value)))


def normalize_phone(value: str) -> str | None:
    """Normalise a mainland mobile number (optional +86/0086 prefix, spaces, hyphens);
    None when it is not one."""
    digits = re.sub(r"[\s-]", "", value.strip())
    for prefix in ("+86", "0086"):
        if digits.startswith(prefix):
            digits = digits[len(prefix) :]
    return digits if _PHONE.match(digits) else None


class EncryptedContact(Protocol):
    """An account row or a cached ``ClaimSource``: the encrypted name and phone."""

    @property
    def name_enc(self) -> str | None: ...

    @property
    def phone_enc(self) -> str | None: ...


@dataclass(frozen=True)
class AuthenticatedAccount:
    account_id: int
    subject_seed: str
    amr: tuple[str, ...]


class AccountService:
    def __init__(
        self,
        session: Session,
        *,
        store: Store,
        clock: Clock,
        hasher: KeyedHasher,
        cipher: FieldCipher,
        passwords: PasswordHasher,
        settings: IdpSettings,
    ) -> None:
        self._session = session
        self._store = store
        self._clock = clock
        self._hasher = hasher
        self._cipher = cipher
        self._passwords = passwords
        self._settings = settings
        self._limits = Throttle(store=store, clock=clock)

    # -- creation ---------------------------------------------------------------------

    def create(
        self,
        *,
        username: str | None,
        password: str | None,
        name: str | None = None,
        phone: str | None = None,
        kind: str = "person",
        password_hash: str | None = None,
    ) -> Account:
        """Create an active account. Raises ``ValidationError`` (bad username/phone),
        ``WeakPasswordError``, ``DuplicateAccountError``. Flushes, never commits.
        ``password_hash`` instead of ``password``: a hash made (and the password checked
        against the policy) earlier in the same registration, so the plain password is
        never parked anywhere."""
        uname = normalize_username(username) if username else None
        if uname is not None and not _USERNAME.match(uname):
            raise ValidationError(
                "bad username",
                public_message="A username has 3-64 characters: letters, digits, '_', '.', '-', starting with a letter.",
            )
        norm_phone = None
        if phone:
            norm_phone = normalize_phone(phone)
            if norm_phone is None:
                raise ValidationError("bad phone", public_message="The phone number is not a valid mobile number.")
        if uname is None and norm_phone is None:
            raise ValidationError("no identifier", public_message="A username or a phone number is required.")
        if name is not None and not (1 <= len(name.strip()) <= 100):
            raise ValidationError("bad name", public_message="A name has 1-100 characters.")
        if password_hash is None:
            if password is None:
                raise ValidationError("no password", public_message="A password is required.")
            validate_password(password, context=tuple(x for x in (uname, norm_phone) if x))
        now = self._clock.now()
        account = Account(
            subject_seed=random_token(32),
            kind=kind,
            username=uname,
            phone_index=self._hasher.digest("phone", norm_phone) if norm_phone else None,
            phone_enc=self._cipher.encrypt(norm_phone, "idp_accounts.phone") if norm_phone else None,
            name_enc=self._cipher.encrypt(name.strip(), "idp_accounts.name") if name else None,
            password_hash=password_hash or self._passwords.hash(password or ""),
            status="active",
            created_at=now,
            updated_at=now,
            password_changed_at=now,
        )
        insert_unique(self._session, account, DuplicateAccountError("unique constraint"))
        return account

    def create_organization(self) -> Account:
        """The account of a legal person: no password, no username; it logs in with a
        certificate, and its subject seed gives it pairwise ``sub`` values like anyone.
        Flushes."""
        now = self._clock.now()
        account = Account(subject_seed=random_token(32), kind="organization", status="active",
                          created_at=now, updated_at=now)
        self._session.add(account)
        self._session.flush()
        return account

    # -- look-ups ---------------------------------------------------------------------

    def _id_number(self, identifier: str) -> str | None:
        text = identifier.strip()
        if len(text) not in (15, 18):
            return None
        try:
            return parse_id_number(text, today=self._clock.now().date()).number
        except InvalidIdNumberError:
            return None

    def find_by_identifier(self, identifier: str) -> Account | None:
        """An account by username, mainland mobile number or (verified) ID number."""
        phone = normalize_phone(identifier)
        number = None if phone else self._id_number(identifier)
        if phone is not None:
            stmt = select(Account).where(Account.phone_index == self._hasher.digest("phone", phone))
        elif number is not None:
            stmt = (
                select(Account)
                .join(Identity, Identity.account_id == Account.id)
                .where(Identity.id_index == self._hasher.digest("id-number", number))
            )
        else:
            stmt = select(Account).where(Account.username == normalize_username(identifier))
        return self._session.scalars(stmt).first()

    def get(self, account_id: int) -> Account:
        account = self._session.get(Account, account_id)
        if account is None:
            raise AccountNotFoundError(f"account {account_id}")
        return account

    def get_by_username(self, username: str) -> Account:
        account = self.find_by_identifier(username)
        if account is None:
            raise AccountNotFoundError("unknown identifier")
        return account

    def name_of(self, account: EncryptedContact) -> str | None:
        if not account.name_enc:
            return None
        return self._cipher.decrypt(account.name_enc, "idp_accounts.name").decode()

    def phone_of(self, account: EncryptedContact) -> str | None:
        if not account.phone_enc:
            return None
        return self._cipher.decrypt(account.phone_enc, "idp_accounts.phone").decode()

    def list(self, *, offset: int = 0, limit: int = 100) -> list[Account]:
        return list(self._session.scalars(select(Account).order_by(Account.id).offset(offset).limit(limit)))

    # -- password login ---------------------------------------------------------------

    def authenticate_password(self, identifier: str, password: str, *, client_ip: str) -> AuthenticatedAccount:
        """Check a password login.

        Throttling (OWASP ASVS 5 §6.3.1, well under 100 failures an hour): after
        ``login_max_failures`` failures for one identifier within the lockout window the
        identifier is refused for that window; after ``ip_max_failures_per_hour`` failures
        from one IP that IP is refused for the hour. Unknown identifiers are counted and
        hashed exactly like known ones, so neither the message, the lockout nor the timing
        tells whether an account exists. Raises ``InvalidCredentialsError`` (or a subclass).
        """
        # Every spelling of one phone number or username is one identifier, or the
        # per-identifier limit could be bypassed by cycling spellings.
        canonical = normalize_phone(identifier) or self._id_number(identifier) or normalize_username(identifier)
        ident_key = "login-fail:id:" + self._hasher.digest("login-ident", canonical)
        ip_key = "login-fail:ip:" + self._hasher.digest("login-ip", client_ip)
        s = self._settings
        if (
            self._limits.count(ident_key, s.login_lockout_seconds) >= s.login_max_failures
            or self._limits.count(ip_key, 3600) >= s.ip_max_failures_per_hour
        ):
            # Still hash, so a throttled answer costs the same time as any other.
            self._passwords.verify(None, password)
            raise LoginThrottledError("throttled")

        account = self.find_by_identifier(identifier)
        # Issue 17: the limit holds per account too, whichever identifier names it (username,
        # phone, ID number), so cycling identifiers does not multiply the guesses.
        acct_key = "login-fail:acct:" + self._hasher.digest("login-acct", str(account.id)) if account else None
        if acct_key and self._limits.count(acct_key, s.login_lockout_seconds) >= s.login_max_failures:
            self._passwords.verify(None, password)
            throttled = LoginThrottledError("account throttled")
            throttled.account_id = account.id if account else None
            raise throttled
        ok = self._passwords.verify(account.password_hash if account else None, password)
        if not ok or account is None:
            self._limits.hit(ident_key, s.login_lockout_seconds)
            self._limits.hit(ip_key, 3600)
            if acct_key:
                self._limits.hit(acct_key, s.login_lockout_seconds)
            failure = InvalidCredentialsError("bad password or unknown identifier")
            failure.account_id = account.id if account else None
            raise failure
        if account.status != "active":
            disabled = AccountDisabledError(f"account status {account.status}")
            disabled.account_id = account.id
            raise disabled
        self._limits.clear(ident_key)
        if acct_key:
            self._limits.clear(acct_key)
        if account.password_hash and self._passwords.needs_rehash(account.password_hash):
            account.password_hash = self._passwords.hash(password)
        return AuthenticatedAccount(account.id, account.subject_seed, ("pwd",))

    # -- second-factor attempts (issue 17) -------------------------------------------

    def _mfa_key(self, account_id: int) -> str:
        return "mfa-fail:acct:" + self._hasher.digest("mfa-acct", str(account_id))

    def check_second_factor_allowed(self, account_id: int) -> None:
        """Raise ``SecondFactorLockedError`` while the account is past
        ``mfa_max_failures`` wrong one-time codes in the window (OWASP ASVS 5 §6.3.1:
        TOTP, recovery and SMS codes counted together, per account; a correct password
        does not reset the count, so a pending login cannot be restarted to get more
        guesses)."""
        s = self._settings
        if self._limits.count(self._mfa_key(account_id), s.mfa_lockout_seconds) >= s.mfa_max_failures:
            raise SecondFactorLockedError(f"account {account_id}")

    def count_second_factor_failure(self, account_id: int) -> bool:
        """Count one wrong code; True when the account is now locked out of second
        factors for the window."""
        s = self._settings
        return self._limits.hit(self._mfa_key(account_id), s.mfa_lockout_seconds) >= s.mfa_max_failures

    def clear_second_factor_failures(self, account_id: int) -> None:
        self._limits.clear(self._mfa_key(account_id))

    def set_verified_name(self, account: Account, name: str) -> None:
        """The name the authoritative registry confirmed becomes the account's ``name``
        claim (issue 11: registered citizens' names were never released)."""
        account.name_enc = self._cipher.encrypt(name.strip(), "idp_accounts.name")
        account.updated_at = self._clock.now()

    def mark_phone_verified(self, account: Account) -> None:
        account.phone_verified_at = self._clock.now()
        account.updated_at = account.phone_verified_at

    def change_password(self, account: Account, current: str, new: str) -> None:
        """Raises ``InvalidCredentialsError`` for a wrong current password and
        ``WeakPasswordError`` for a weak new one."""
        if not self._passwords.verify(account.password_hash, current):
            raise InvalidCredentialsError("wrong current password")
        validate_password(new, context=tuple(x for x in (account.username,) if x))
        account.password_hash = self._passwords.hash(new)
        account.password_changed_at = account.updated_at = self._clock.now()

    def reencrypt_batch(self, limit: int = 1000) -> int:
        """Re-encrypt name and phone of up to ``limit`` accounts still under an old data
        key. Returns how many changed."""
        current = f"v1.{self._cipher.active}.%"
        stale = (
            select(Account)
            .where(or_(Account.name_enc.not_like(current), Account.phone_enc.not_like(current)))
            .order_by(Account.id)
            .limit(limit)
        )
        changed = 0
        for account in self._session.scalars(stale):
            for attr, ctx in (("name_enc", "idp_accounts.name"), ("phone_enc", "idp_accounts.phone")):
                value = getattr(account, attr)
                if value and self._cipher.key_id(value) != self._cipher.active:
                    setattr(account, attr, self._cipher.encrypt(self._cipher.decrypt(value, ctx), ctx))
            changed += 1
        self._session.flush()
        return changed

    # -- administration ---------------------------------------------------------------

    def set_status(self, account: Account, status: str) -> None:
        if status not in ("active", "locked", "disabled"):
            raise ValidationError(f"status {status}")
        account.status = status
        account.updated_at = self._clock.now()

    def touch(self, account: Account, when: datetime) -> None:
        account.updated_at = when
