"""Who performs an administration operation, and the check-then-audit step every
operation starts and ends with (issue 6: every admin action authorised per role on the
server and recorded with who, what, when, from where)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from common.audit import AuditTrail

from .errors import AdminForbiddenError
from .roles import Permission, Role, permissions_of

CLI_ACTOR_ID = "admin:cli"


@dataclass(frozen=True)
class Actor:
    """An administrator acting now. ``roles`` are read from the database for every
    request (never from a token or a cookie), so a revoked role stops working at once.
    ``account_id`` is None only for the operator's command line."""

    account_id: int | None
    roles: frozenset[str]
    ip: str | None = None
    # Who the trail names when no account acts: "admin:cli" (operator commands) or
    # "system" (the server itself, e.g. creating the first signing keys at start).
    label: str = CLI_ACTOR_ID

    @classmethod
    def cli(cls) -> Actor:
        """Policy: whoever runs ``flask`` commands on the server already holds the
        database and the keys; the command line acts as superadmin, audited as
        ``admin:cli``."""
        return cls(account_id=None, roles=frozenset({Role.SUPERADMIN.value}))

    @classmethod
    def system(cls) -> Actor:
        """The server acting on its own at start (issue 11: the first start creates the
        signing keys), audited as ``system``."""
        return cls(account_id=None, roles=frozenset({Role.SUPERADMIN.value}), label="system")

    @property
    def audit_id(self) -> str:
        return self.label if self.account_id is None else f"account:{self.account_id}"

    @property
    def permissions(self) -> frozenset[Permission]:
        return permissions_of(self.roles)

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions


class AuditedOperations:
    """Base of the admin operation services: the permission check and the audit event,
    both in the caller's transaction (services flush, never commit)."""

    area = ""

    def __init__(self, audit: AuditTrail) -> None:
        self._audit = audit

    def _authorize(self, actor: Actor, permission: Permission, verb: str) -> None:
        """Raise ``AdminForbiddenError`` unless the actor's roles grant ``permission``."""
        if not actor.can(permission):
            raise AdminForbiddenError(permission=permission.value, action=self._action(verb))

    def _action(self, verb: str) -> str:
        return f"admin.{self.area}.{verb}"

    def _record(self, actor: Actor, verb: str, *, target: str | None = None, client_id: str | None = None,
                details: Mapping[str, Any] | None = None) -> None:
        """One audit event for a completed operation. ``details`` name what changed
        (field names, roles, key ids), never values that are personal data or secrets."""
        self._audit.record(self._action(verb), actor=actor.audit_id, target=target, client_id=client_id,
                           ip=actor.ip, details=details)


def record_denied(audit: AuditTrail, actor: Actor, error: AdminForbiddenError) -> None:
    """Audit a refused operation. The caller rolls its transaction back first (nothing of
    the refused operation may persist) and commits this event on its own."""
    audit.record(error.action or "admin.denied", actor=actor.audit_id, outcome="denied", reason="forbidden",
                 ip=actor.ip, details={"permission": error.permission})
