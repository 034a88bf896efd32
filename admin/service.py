"""The administration operations bound to one transaction: what the console, the JSON
API and the command line call (issue 6). Built from the identity provider's
``Services`` of the same database session."""

from __future__ import annotations

from typing import Any

from idp.provider import Services

from .admins import AdminService
from .clients import ClientAdminService
from .keys import KeyAdminService


class AdminServices:
    def __init__(self, services: Services) -> None:
        self.services = services
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
