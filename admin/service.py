"""The administration operations bound to one transaction: what the console, the JSON
API and the command line call (issue 6). Built from the identity provider's
``Services`` of the same database session."""

from __future__ import annotations

from typing import Any

from idp.provider import Services

from .accounts import AccountAdminService
from .admins import AdminService
from .audit import AlertThresholds, AuditAdminService
from .audit_ops import AuditTrailOperations
from .cas import CaAdminService
from .clients import ClientAdminService
from .keys import KeyAdminService
from .legal import LegalAdminService
from .realname import RealnameAdminService
from .sessions import SessionAdminService


class AdminServices:
    def __init__(self, services: Services, *, alert_thresholds: AlertThresholds | None = None) -> None:
        self.services = services
        # From ``config.Settings.alert_thresholds`` (the console and API pass them).
        self.alert_thresholds = alert_thresholds or AlertThresholds()
        self._cache: dict[str, Any] = {}

    @property
    def admins(self) -> AdminService:
        if "admins" not in self._cache:
            s = self.services
            self._cache["admins"] = AdminService(s.session, clock=s.p.clock, audit=s.audit)
        value: AdminService = self._cache["admins"]
        return value

    @property
    def clients(self) -> ClientAdminService:
        if "clients" not in self._cache:
            s = self.services
            self._cache["clients"] = ClientAdminService(
                s.session, clients=s.clients, cache=s.p.client_cache, audit=s.audit, clock=s.p.clock
            )
        value: ClientAdminService = self._cache["clients"]
        return value

    @property
    def keys(self) -> KeyAdminService:
        if "keys" not in self._cache:
            s = self.services
            self._cache["keys"] = KeyAdminService(s.keys, cache=s.p.key_cache, audit=s.audit)
        value: KeyAdminService = self._cache["keys"]
        return value

    @property
    def audit(self) -> AuditTrailOperations:
        if "audit" not in self._cache:
            s = self.services
            trail = AuditAdminService(s.session, clock=s.p.clock, thresholds=self.alert_thresholds)
            self._cache["audit"] = AuditTrailOperations(trail, keys=s.keys, issuer=s.p.settings.issuer, audit=s.audit,
                                                        session=s.session, clock=s.p.clock, sign=s.tokens.sign_jwt)
        value: AuditTrailOperations = self._cache["audit"]
        return value

    @property
    def sessions(self) -> SessionAdminService:
        """Citizens' SSO sessions (issue 6 "Sessions")."""
        if "sessions" not in self._cache:
            s = self.services
            self._cache["sessions"] = SessionAdminService(
                accounts=s.accounts, sessions=s.sessions, logout=s.logout, roles_of=self.admins.roles_of,
                audit=s.audit,
            )
        value: SessionAdminService = self._cache["sessions"]
        return value

    @property
    def accounts(self) -> AccountAdminService:
        """Citizens' and organisations' accounts (issue 6 "Accounts")."""
        if "accounts" not in self._cache:
            s = self.services
            self._cache["accounts"] = AccountAdminService(
                s.session, accounts=s.accounts, realname=s.realname, sessions=self.sessions,
                reidentification=s.reidentification, roles_of=self.admins.roles_of, hasher=s.p.hasher,
                clock=s.p.clock, audit=s.audit,
            )
        value: AccountAdminService = self._cache["accounts"]
        return value

    @property
    def cas(self) -> CaAdminService:
        """Certificate authorities and mapping profiles (issue 6 "Certificate authorities")."""
        if "cas" not in self._cache:
            s = self.services
            self._cache["cas"] = CaAdminService(s.cas, clock=s.p.clock, audit=s.audit)
        value: CaAdminService = self._cache["cas"]
        return value

    @property
    def legal(self) -> LegalAdminService:
        """Legal persons, their certificates and mandates (issue 6 "Legal persons")."""
        if "legal" not in self._cache:
            s = self.services
            self._cache["legal"] = LegalAdminService(s.session, legal=s.legal, audit=s.audit, clock=s.p.clock)
        value: LegalAdminService = self._cache["legal"]
        return value

    @property
    def realname(self) -> RealnameAdminService:
        """The local registry and data-key rotation (issue 11 defect 2)."""
        if "realname" not in self._cache:
            s = self.services
            self._cache["realname"] = RealnameAdminService(
                s.session, realname=s.realname, accounts=s.accounts, keys=s.keys, hasher=s.p.hasher,
                cipher=s.p.cipher, clock=s.p.clock, audit=s.audit,
            )
        value: RealnameAdminService = self._cache["realname"]
        return value
