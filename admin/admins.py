"""Administrator role assignments: grant, revoke, list, and the roles an account holds
(issue 6). Roles are rows of ``admin_roles``; an account without a row is no
administrator."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from common.audit import AuditTrail
from common.clock import Clock
from idp.accounts import normalize_username
from idp.models import Account

from .actor import Actor, AuditedOperations
from .errors import AdminNotFoundError, LastSuperadminError, UnknownRoleError
from .models import AdminRole
from .roles import Permission, Role


@dataclass(frozen=True)
class RoleGrant:
    role: str
    granted_by: str
    granted_at: datetime


@dataclass(frozen=True)
class Administrator:
    """An account holding at least one role. ``username`` is the login name chosen by
    the administrator (an identifier, not personal data such as a name)."""

    account_id: int
    username: str | None
    grants: tuple[RoleGrant, ...]

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(g.role for g in self.grants)


def validate_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise UnknownRoleError(role, public_message=f"Unknown role {role!r}; roles: "
                               + ", ".join(r.value for r in Role) + ".") from None


def holds_any_role(session: Session, account_id: int) -> bool:
    """Whether the account holds an administrator role now (the identity provider asks,
    through ``Provider.is_administrator``, to refuse SMS as their second factor)."""
    return session.scalars(select(AdminRole.id).where(AdminRole.account_id == account_id).limit(1)).first() is not None


class AdminService(AuditedOperations):
    area = "admins"

    def __init__(self, session: Session, *, clock: Clock, audit: AuditTrail) -> None:
        super().__init__(audit)
        self._session = session
        self._clock = clock

    def roles_of(self, account_id: int) -> frozenset[str]:
        """The roles the account holds now (empty: not an administrator). No permission
        check: this is what authentication of an administrator reads."""
        return frozenset(self._session.scalars(select(AdminRole.role).where(AdminRole.account_id == account_id)))

    def actor(self, account_id: int, ip: str | None) -> Actor:
        return Actor(account_id=account_id, roles=self.roles_of(account_id), ip=ip)

    def account_by_username(self, username: str) -> Account:
        """A person's account by its username. Raises ``AdminNotFoundError``."""
        account = self._session.scalars(
            select(Account).where(Account.username == normalize_username(username))
        ).first()
        if account is None or account.kind != "person":
            raise AdminNotFoundError("unknown username", public_message="No person account with this username.")
        return account

    def _person(self, account_id: int) -> Account:
        account = self._session.get(Account, account_id)
        if account is None or account.kind != "person":
            # Policy: organisations (legal persons) log in with certificates on behalf of
            # a company; administration is always done by a named natural person.
            raise AdminNotFoundError(f"account {account_id}", public_message="No person account with this id.")
        return account

    def grant(self, actor: Actor, account_id: int, role: str) -> bool:
        """Give ``role`` to a person's account. Returns False when it already held it
        (nothing written, nothing audited). Needs ``admins.write``. Raises
        ``AdminForbiddenError``, ``UnknownRoleError``, ``AdminNotFoundError``. Audit:
        ``admin.admins.grant``. Flushes."""
        self._authorize(actor, Permission.ADMINS_WRITE, "grant")
        valid = validate_role(role)
        self._person(account_id)
        if valid.value in self.roles_of(account_id):
            return False
        self._session.add(AdminRole(account_id=account_id, role=valid.value, granted_by=actor.audit_id,
                                    granted_at=self._clock.now()))
        self._session.flush()
        self._record(actor, "grant", target=f"account:{account_id}", details={"role": valid.value})
        return True

    def revoke(self, actor: Actor, account_id: int, role: str) -> bool:
        """Take ``role`` away. Returns False when the account did not hold it. Refuses to
        remove the last superadmin (``LastSuperadminError``): nobody could grant roles
        afterwards except from the server's command line. Needs ``admins.write``. Audit:
        ``admin.admins.revoke``. Flushes."""
        self._authorize(actor, Permission.ADMINS_WRITE, "revoke")
        valid = validate_role(role)
        self._person(account_id)
        if valid.value not in self.roles_of(account_id):
            return False
        if valid is Role.SUPERADMIN and actor.account_id is not None and self._superadmins() <= 1:
            raise LastSuperadminError(f"account {account_id}")
        self._session.execute(delete(AdminRole).where(AdminRole.account_id == account_id,
                                                      AdminRole.role == valid.value))
        self._session.flush()
        self._record(actor, "revoke", target=f"account:{account_id}", details={"role": valid.value})
        return True

    def _superadmins(self) -> int:
        return int(self._session.scalar(
            select(func.count()).select_from(AdminRole).where(AdminRole.role == Role.SUPERADMIN.value)
        ) or 0)

    def all(self, actor: Actor) -> list[Administrator]:
        """Every administrator with their grants, by account id. Needs ``admins.read``."""
        self._authorize(actor, Permission.ADMINS_READ, "list")
        rows = self._session.execute(
            select(AdminRole, Account.username).join(Account, Account.id == AdminRole.account_id)
            .order_by(AdminRole.account_id, AdminRole.role)
        ).all()
        out: dict[int, Administrator] = {}
        for grant, username in rows:
            entry = out.get(grant.account_id) or Administrator(grant.account_id, username, ())
            out[grant.account_id] = Administrator(
                entry.account_id, entry.username,
                (*entry.grants, RoleGrant(grant.role, grant.granted_by, grant.granted_at)),
            )
        return list(out.values())
