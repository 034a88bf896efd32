"""The identity provider's long-lived collaborators (built once per process by the
composition root) and the per-transaction services built from them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.orm import Session

from certificates.legal import LegalPersonService
from certificates.registry import CaService, TrustedCaCache
from certificates.service import CertificateLoginService
from certificates.settings import CertificateSettings
from certificates.validation import CertificateValidator
from common.audit import AuditTrail
from common.clock import Clock
from common.crypto import FieldCipher, KeyedHasher
from common.db import current_session
from common.http import http_fetch
from common.store import Store
from common.versions import VersionedCache, Versions
from realname.levels import session_level
from realname.otp import OneTimeCodeService
from realname.registry import HttpRegistry, HttpRegistryConfig, LocalRegistry, RegistryAdapter
from realname.service import RealnameService
from realname.settings import RealnameSettings
from realname.sms import ConsoleSender, HttpSmsSender, SmsSender

from .accounts import AccountService
from .authorization import AuthorizationFlow
from .claim_sources import ClaimSource, claim_source_cache, read_claim_source
from .clients import ClientCache, ClientService, Fetcher, RegisteredClient
from .consent import ConsentService
from .disclosures import DisclosureService
from .issuance import IssuanceService
from .keys import KeyCache, KeyService
from .login import LoginCompletion
from .logout import FormPoster, LogoutService, http_post_form
from .models import Account, LogoutDelivery
from .passwords import PasswordHasher
from .reidentification import SubjectResolver
from .sessions import SessionService
from .settings import IdpSettings
from .subjects import subject_for
from .tokens import TokenService
from .userinfo import UserinfoService

# Issue 17: the owner hears of every credential change, on the phone they proved.
CHANGE_NOTICES = {
    "password": "【一网】您的统一身份认证账号密码已修改，其他设备上的登录已退出。如非本人操作，请立即联系客服。",
    "totp": "【一网】您的统一身份认证账号已更换身份验证器，其他设备上的登录已退出。如非本人操作，请立即联系客服。",
}


def _nobody(session: Session, account_id: int) -> bool:
    return False


class Metrics(Protocol):
    def login(self, ok: bool) -> None: ...

    def token_issued(self, grant_type: str) -> None: ...


class NullMetrics:
    def login(self, ok: bool) -> None:
        return None

    def token_issued(self, grant_type: str) -> None:
        return None


@dataclass
class Provider:
    settings: IdpSettings
    store: Store
    clock: Clock
    hasher: KeyedHasher
    cipher: FieldCipher
    passwords: PasswordHasher
    key_cache: KeyCache
    client_cache: ClientCache
    # Issue 12: what userinfo computes claims from, per account (idp.claim_sources).
    claim_cache: VersionedCache[int, ClaimSource | None] = field(default_factory=claim_source_cache)
    metrics: Metrics = field(default_factory=NullMetrics)
    http_post: FormPoster = http_post_form
    # Fetches sector identifier documents at client registration (common.http's guard).
    http_fetch: Fetcher = http_fetch
    realname_settings: RealnameSettings = field(default_factory=RealnameSettings)
    certificate_settings: CertificateSettings = field(default_factory=CertificateSettings)
    # Per-process: the http registry keeps its circuit breaker, the SMS sender its client.
    http_registry: HttpRegistry | None = None
    sms: SmsSender = field(default_factory=ConsoleSender)
    # Per-process: parsed CA snapshots, and the validator whose CRL cache must survive
    # between logins.
    trusted_ca_cache: TrustedCaCache = field(default_factory=TrustedCaCache)
    cert_validator: CertificateValidator | None = None
    # Whether an account holds an administrator role (wired by the composition root from
    # admin/, which idp may not import): such accounts never use SMS as a second factor.
    is_administrator: Callable[[Session, int], bool] = _nobody

    def validator(self) -> CertificateValidator:
        if self.cert_validator is None:
            self.cert_validator = CertificateValidator(self.clock)
        return self.cert_validator

    @classmethod
    def build_registry(cls, settings: RealnameSettings) -> HttpRegistry | None:
        if settings.registry_adapter != "http" or not settings.registry_url:
            return None
        return HttpRegistry(
            HttpRegistryConfig(
                url=settings.registry_url,
                key_id=settings.registry_key_id,
                key=settings.registry_key,
                timeout=settings.registry_timeout,
                retries=settings.registry_retries,
                ca_file=settings.registry_ca_file,
                client_cert=settings.registry_client_cert,
                client_key=settings.registry_client_key,
            )
        )

    @classmethod
    def build_sms(cls, settings: RealnameSettings) -> SmsSender:
        if settings.sms_sender == "http" and settings.sms_url:
            return HttpSmsSender(settings.sms_url, settings.sms_key)
        return ConsoleSender()

    def services(self, session: Session) -> Services:
        return Services(self, session)


class Services:
    """Services bound to one database session (one request or one CLI command)."""

    def __init__(self, provider: Provider, session: Session) -> None:
        self.p = provider
        self.session = session
        self._cache: dict[str, Any] = {}

    @property
    def accounts(self) -> AccountService:
        if "accounts" not in self._cache:
            p = self.p
            self._cache["accounts"] = AccountService(
                self.session,
                store=p.store,
                clock=p.clock,
                hasher=p.hasher,
                cipher=p.cipher,
                passwords=p.passwords,
                settings=p.settings,
            )
        return self._cache["accounts"]

    @property
    def audit(self) -> AuditTrail:
        if "audit" not in self._cache:
            self._cache["audit"] = AuditTrail(self.session, clock=self.p.clock, hasher=self.p.hasher)
        return self._cache["audit"]

    @property
    def clients(self) -> ClientService:
        if "clients" not in self._cache:
            self._cache["clients"] = ClientService(
                self.session, clock=self.p.clock, hasher=self.p.hasher, production=self.p.settings.production,
                fetch=self.p.http_fetch, grant_types=self.p.settings.features.grant_types(),
            )
        return self._cache["clients"]

    @property
    def keys(self) -> KeyService:
        if "keys" not in self._cache:
            s = self.p.settings
            self._cache["keys"] = KeyService(
                self.session,
                clock=self.p.clock,
                cipher=self.p.cipher,
                max_token_lifetime=max(s.access_token_ttl, s.id_token_ttl),
            )
        return self._cache["keys"]

    @property
    def tokens(self) -> TokenService:
        if "tokens" not in self._cache:
            p = self.p
            self._cache["tokens"] = TokenService(
                self.session,
                store=p.store,
                clock=p.clock,
                hasher=p.hasher,
                cipher=p.cipher,
                keys=self.keys,
                key_cache=p.key_cache,
                settings=p.settings,
                client_versions=p.client_cache,
                account_versions=p.claim_cache,
            )
        return self._cache["tokens"]

    @property
    def sessions(self) -> SessionService:
        if "sessions" not in self._cache:
            p = self.p
            self._cache["sessions"] = SessionService(store=p.store, clock=p.clock, hasher=p.hasher, settings=p.settings)
        return self._cache["sessions"]

    @property
    def disclosures(self) -> DisclosureService:
        if "disclosures" not in self._cache:
            self._cache["disclosures"] = DisclosureService(self.session, clock=self.p.clock)
        return self._cache["disclosures"]

    @property
    def consents(self) -> ConsentService:
        if "consents" not in self._cache:
            self._cache["consents"] = ConsentService(
                self.session, clock=self.p.clock, ttl_days=self.p.settings.consent_ttl_days
            )
        return self._cache["consents"]

    @property
    def authorization(self) -> AuthorizationFlow:
        if "authorization" not in self._cache:
            self._cache["authorization"] = AuthorizationFlow(self)
        return self._cache["authorization"]

    @property
    def issuance(self) -> IssuanceService:
        if "issuance" not in self._cache:
            self._cache["issuance"] = IssuanceService(self)
        return self._cache["issuance"]

    @property
    def userinfo(self) -> UserinfoService:
        if "userinfo" not in self._cache:
            self._cache["userinfo"] = UserinfoService(self)
        return self._cache["userinfo"]

    @property
    def logins(self) -> LoginCompletion:
        if "logins" not in self._cache:
            self._cache["logins"] = LoginCompletion(sessions=self.sessions, logout=self.logout, audit=self.audit,
                                                    metrics=self.p.metrics, acr_of=self.session_acr)
        return self._cache["logins"]

    @property
    def logout(self) -> LogoutService:
        if "logout" not in self._cache:
            s = self.p.settings
            self._cache["logout"] = LogoutService(
                self.session,
                clock=self.p.clock,
                tokens=self.tokens,
                issuer=s.issuer,
                client_lookup=self.client,
                subject_of=self.subject,
                timeout=s.backchannel_logout_timeout,
                production=s.production,
                post=self.p.http_post,
                audit=self.audit,
                frontchannel=s.features.frontchannel_logout,
                backchannel=s.features.backchannel_logout,
            )
        return self._cache["logout"]

    # -- shortcuts used by several endpoints ------------------------------------------

    def client(self, client_id: str | None, *, seen: Versions | None = None) -> RegisteredClient | None:
        """The enabled client ``client_id`` from the per-process cache, current on every
        instance (issue 12: ``seen`` are its versions when the caller fetched them already,
        as the access-token check does; otherwise they cost one store round trip)."""
        # No client id holds a control character; NUL would fail in PostgreSQL (a 500).
        if not client_id or len(client_id) > 64 or not client_id.isprintable():
            return None
        return self.p.client_cache.get(self.p.store, client_id, self.clients.snapshot, seen)

    def claim_source(self, account_id: int, *, seen: Versions | None = None) -> ClaimSource | None:
        """What the account's claims are computed from (idp.claim_sources): cached per
        process outside a transaction, read through the session inside one (so a
        transaction sees its own writes)."""
        if current_session(self.session).in_transaction():
            return read_claim_source(self.session, account_id)
        return self.p.claim_cache.get(self.p.store, account_id, lambda i: read_claim_source(self.session, i), seen)

    def subject(self, subject_seed: str, client: RegisteredClient) -> str:
        return subject_for(self.p.hasher, subject_seed, client.subject_type, client.sector_identifier)

    @property
    def reidentification(self) -> SubjectResolver:
        """Issue 5: audited re-identification of a ``sub`` (administrators only)."""
        if "reidentification" not in self._cache:
            self._cache["reidentification"] = SubjectResolver(
                self.session, find_client=self.clients.find, hasher=self.p.hasher,
                level_of=lambda account_id: self.realname.level_of(account_id), audit=self.audit,
            )
        return self._cache["reidentification"]

    @property
    def realname(self) -> RealnameService:
        if "realname" not in self._cache:
            p = self.p
            registry: RegistryAdapter = p.http_registry or LocalRegistry(self.session, p.hasher)
            self._cache["realname"] = RealnameService(
                self.session, store=p.store, clock=p.clock, hasher=p.hasher, cipher=p.cipher,
                registry=registry, settings=p.realname_settings, audit=self.audit,
            )
        return self._cache["realname"]

    @property
    def otp(self) -> OneTimeCodeService:
        if "otp" not in self._cache:
            s = self.p.realname_settings
            self._cache["otp"] = OneTimeCodeService(
                store=self.p.store, clock=self.p.clock, hasher=self.p.hasher,
                max_per_phone_day=s.sms_max_per_phone_day, max_per_ip_hour=s.sms_max_per_ip_hour,
            )
        return self._cache["otp"]

    @property
    def cas(self) -> CaService:
        if "cas" not in self._cache:
            self._cache["cas"] = CaService(self.session, clock=self.p.clock, cache=self.p.trusted_ca_cache)
        return self._cache["cas"]

    @property
    def certificate_login(self) -> CertificateLoginService:
        if "certificate_login" not in self._cache:
            self._cache["certificate_login"] = CertificateLoginService(
                self.cas, self.p.validator(), self.legal, self.p.store, self.p.certificate_settings)
        return self._cache["certificate_login"]

    @property
    def legal(self) -> LegalPersonService:
        if "legal" not in self._cache:
            self._cache["legal"] = LegalPersonService(
                self.session, clock=self.p.clock, create_account=lambda: self.accounts.create_organization().id
            )
        return self._cache["legal"]

    def sms_second_factor_allowed(self, account: Account) -> bool:
        """SMS as a second factor: a verified phone, and never for an administrator
        (issue 17; SIM swap, NIST SP 800-63B §5.1.3.3 restricted authenticator)."""
        return bool(account.phone_verified_at and account.phone_enc) and not self.p.is_administrator(
            self.session, account.id)

    def credentials_changed(self, account: Account, *, keep_sid: str | None, change: str,
                            client_ip: str) -> list[LogoutDelivery]:
        """After a password change or a replaced authenticator (issue 17): every other SSO
        session of the account ends (back-channel logout scheduled, returned for delivery
        after the commit), every refresh-token family is revoked, the owner is told by SMS
        on a verified phone, and one audit event ``account.credentials_changed`` records
        it. Flushes."""
        others = [s for s in self.sessions.of_account(account.id) if s.sid != keep_sid]
        ended = [e for e in (self.sessions.end_by_sid(s.sid) for s in others) if e is not None]
        deliveries = self.logout.ended(ended, keep_offline=False)
        grants = self.tokens.revoke_all_of_account(account.id)
        phone = self.accounts.phone_of(account) if account.phone_verified_at else None
        notified = False
        if phone:
            text = CHANGE_NOTICES.get(change, CHANGE_NOTICES["password"])
            notified = self.p.sms.send(phone, text)
        self.audit.record("account.credentials_changed", actor=f"account:{account.id}", target=f"account:{account.id}",
                          ip=client_ip, details={"change": change, "sessions_ended": len(ended),
                                                 "grants_revoked": grants, "owner_notified": notified})
        return deliveries

    def session_acr(self, account_id: int, amr: list[str]) -> str:
        """The level this login reached: identity proofing now, factors used at login."""
        identity = self.realname.identity_of(account_id)
        return session_level(
            proofing_level=identity.proofing_level if identity else None,
            amr=set(amr),
            phone_bound=bool(identity and identity.phone_bound_at),
        )

    def account_level(self, account: Account) -> str:
        """The highest level the account can reach in a login (account page)."""
        return self.realname.level_of(account.id)
