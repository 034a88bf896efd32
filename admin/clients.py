"""Administration of relying parties (portals): search, registration, changes, secret
rotation, disabling, deletion, and how much each portal receives (issue 6). Every
operation checks its permission and is audited; the per-process client cache entry is
dropped after every change (``idp.clients.ClientCache`` policy)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from common.audit import AuditTrail
from common.clock import Clock
from common.errors import ValidationError
from idp.clients import ADMIN_SCOPE, ClientCache, ClientService
from idp.models import Client, Consent, Disclosure

from .actor import Actor, AuditedOperations
from .errors import FirstPartyClientError, SystemClientError
from .roles import Permission, Role

MAX_PAGE = 200
# The console's own registration, maintained by its login (admin/console/login.py).
CONSOLE_CLIENT_ID = "yiwang-console"
SYSTEM_CLIENT_IDS = frozenset({CONSOLE_CLIENT_ID})


@dataclass(frozen=True)
class ClientPage:
    """One page of a keyset-paginated listing. ``next_cursor`` is opaque to callers and
    None on the last page."""

    items: list[Client]
    next_cursor: str | None


@dataclass(frozen=True)
class ClientUsage:
    """How much one portal receives: consents by state and disclosures (claim releases)
    by legal basis. Counts only: no account ids, no claim values."""

    consents_active: int
    consents_withdrawn: int
    consents_expired: int
    disclosures_total: int
    disclosures_by_basis: dict[str, int]
    last_disclosure_at: datetime | None


def _cursor_value(cursor: str | None) -> int:
    if cursor is None or cursor == "":
        return 0
    if not cursor.isdigit() or len(cursor) > 18:
        raise ValidationError("cursor", public_message="The cursor is not valid.")
    return int(cursor)


def _like_pattern(query: str) -> str:
    escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class ClientAdminService(AuditedOperations):
    area = "clients"

    def __init__(self, session: Session, *, clients: ClientService, cache: ClientCache, audit: AuditTrail,
                 clock: Clock) -> None:
        super().__init__(audit)
        self._session = session
        self._clients = clients
        self._cache = cache
        self._clock = clock

    def search(self, actor: Actor, *, query: str | None = None, limit: int = 50, cursor: str | None = None) -> ClientPage:
        """Clients in registration order whose name contains ``query`` (any case) or whose
        client_id equals it; ``limit`` 1-200; keyset pagination (stable under inserts).
        Needs ``clients.read``. Raises ``ValidationError`` for a bad cursor or limit."""
        self._authorize(actor, Permission.CLIENTS_READ, "search")
        if not 1 <= limit <= MAX_PAGE:
            raise ValidationError("limit", public_message=f"The limit is between 1 and {MAX_PAGE}.")
        stmt = select(Client).where(Client.id > _cursor_value(cursor))
        if query:
            q = query.strip()[:200]
            stmt = stmt.where(or_(Client.name.ilike(_like_pattern(q), escape="\\"), Client.client_id == q))
        rows = list(self._session.scalars(stmt.order_by(Client.id).limit(limit + 1)))
        more = len(rows) > limit
        items = rows[:limit]
        return ClientPage(items, str(items[-1].id) if more and items else None)

    def get(self, actor: Actor, client_id: str) -> Client:
        """Needs ``clients.read``. Raises ``ClientNotFoundError``."""
        self._authorize(actor, Permission.CLIENTS_READ, "get")
        return self._clients.get(client_id)

    def create(self, actor: Actor, **fields: Any) -> tuple[Client, str | None]:
        """Register a client (``ClientService.create`` fields). Returns the row and the
        secret, shown once. Needs ``clients.write``. Audit: ``admin.clients.create``."""
        self._authorize(actor, Permission.CLIENTS_WRITE, "create")
        self._check_first_party(actor, "create", fields.get("first_party", False), fields.get("scopes") or ())
        # A client without redirect URIs is valid (client_credentials only).
        row, secret = self._clients.create(**{"redirect_uris": [], **fields})
        self._record(actor, "create", target=f"client:{row.client_id}", client_id=row.client_id,
                     details={"fields": sorted(k for k, v in fields.items() if v not in (None, [], {}))})
        return row, secret

    def update(self, actor: Actor, client_id: str, **changes: Any) -> tuple[Client, str | None]:
        """Change fields of a registration (``idp.clients.UPDATABLE_FIELDS``); returns the
        row and a new secret when the change needs one. Needs ``clients.write``. Raises
        ``ClientNotFoundError``, ``InvalidClientMetadataError``. Audit:
        ``admin.clients.update`` with the names of the changed fields."""
        self._authorize(actor, Permission.CLIENTS_WRITE, "update")
        current = self._guarded(actor, "update", client_id)
        self._check_first_party(actor, "update", changes.get("first_party", current.first_party),
                                changes.get("scopes", ()))
        row, secret = self._clients.update(client_id, **changes)
        self._cache.invalidate(client_id)
        self._record(actor, "update", target=f"client:{client_id}", client_id=client_id,
                     details={"fields": sorted(changes), "new_credential": secret is not None})
        return row, secret

    def rotate_secret(self, actor: Actor, client_id: str) -> str:
        """A new secret (the old one stops working at once); returned once, stored as a
        keyed hash. Needs ``clients.write``. Audit: ``admin.clients.rotate_secret``."""
        self._authorize(actor, Permission.CLIENTS_WRITE, "rotate_secret")
        self._guarded(actor, "rotate_secret", client_id)
        secret = self._clients.rotate_secret(client_id)
        self._cache.invalidate(client_id)
        self._record(actor, "rotate_secret", target=f"client:{client_id}", client_id=client_id)
        return secret

    def set_enabled(self, actor: Actor, client_id: str, enabled: bool) -> Client:
        """Disable (no logins, no tokens, no introspection for it) or enable a client.
        Needs ``clients.write``. Audit: ``admin.clients.disable`` / ``.enable``."""
        verb = "enable" if enabled else "disable"
        self._authorize(actor, Permission.CLIENTS_WRITE, verb)
        self._guarded(actor, verb, client_id)
        row = self._clients.set_enabled(client_id, enabled)
        self._cache.invalidate(client_id)
        self._record(actor, verb, target=f"client:{client_id}", client_id=client_id)
        return row

    def delete(self, actor: Actor, client_id: str) -> None:
        """Remove a registration. Consents and disclosure records stay (the citizens'
        history of what was released). Needs ``clients.write``. Audit:
        ``admin.clients.delete``."""
        self._authorize(actor, Permission.CLIENTS_WRITE, "delete")
        self._guarded(actor, "delete", client_id)
        self._clients.delete(client_id)
        self._cache.invalidate(client_id)
        self._record(actor, "delete", target=f"client:{client_id}", client_id=client_id)

    def _guarded(self, actor: Actor, verb: str, client_id: str) -> Client:
        """The client a change is about, after the issue 17 rules: a system client is
        changed by nobody; a first-party client by a superadmin only. Raises
        ``ClientNotFoundError``, ``SystemClientError``, ``FirstPartyClientError``."""
        row = self._clients.get(client_id)
        if row.client_id in SYSTEM_CLIENT_IDS:
            raise SystemClientError(f"{verb} of system client {client_id}")
        if row.first_party and Role.SUPERADMIN.value not in actor.roles:
            raise FirstPartyClientError(permission=Role.SUPERADMIN.value, action=self._action(verb))
        return row

    def _check_first_party(self, actor: Actor, verb: str, first_party: bool, scopes: Any) -> None:
        """Issue 17: making a client first-party, or asking for the admin scope, is a
        superadmin's decision (the scope itself needs the flag: ``idp.clients``)."""
        if (first_party or ADMIN_SCOPE in scopes) and Role.SUPERADMIN.value not in actor.roles:
            raise FirstPartyClientError(permission=Role.SUPERADMIN.value, action=self._action(verb))

    def usage(self, actor: Actor, client_id: str) -> ClientUsage:
        """Consent and disclosure counts of one client. Needs ``clients.read``. Raises
        ``ClientNotFoundError``."""
        self._authorize(actor, Permission.CLIENTS_READ, "usage")
        self._clients.get(client_id)
        now = self._clock.now()
        consents = self._session.execute(
            select(
                func.count().filter(Consent.withdrawn_at.is_(None), Consent.expires_at > now),
                func.count().filter(Consent.withdrawn_at.is_not(None)),
                func.count().filter(Consent.withdrawn_at.is_(None), Consent.expires_at <= now),
            ).where(Consent.client_id == client_id)
        ).one()
        by_basis = {
            basis: int(n)
            for basis, n in self._session.execute(
                select(Disclosure.legal_basis, func.count()).where(Disclosure.client_id == client_id)
                .group_by(Disclosure.legal_basis)
            )
        }
        last = self._session.scalar(select(func.max(Disclosure.created_at)).where(Disclosure.client_id == client_id))
        return ClientUsage(
            consents_active=int(consents[0]),
            consents_withdrawn=int(consents[1]),
            consents_expired=int(consents[2]),
            disclosures_total=sum(by_basis.values()),
            disclosures_by_basis=by_basis,
            last_disclosure_at=last,
        )
