"""Administrator roles and what each may do (issue 6). Pure: no Flask, no database.

Every console page and API operation names one permission; the server checks it for
every request (never only by hiding a button). Roles are additive: an administrator
with two roles has the union of their permissions.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    SUPERADMIN = "superadmin"
    CLIENT_ADMIN = "client-admin"
    CA_ADMIN = "ca-admin"
    USER_ADMIN = "user-admin"
    AUDITOR = "auditor"


class Permission(StrEnum):
    CLIENTS_READ = "clients.read"
    CLIENTS_WRITE = "clients.write"
    CAS_READ = "cas.read"
    CAS_WRITE = "cas.write"
    LEGAL_READ = "legal.read"
    LEGAL_WRITE = "legal.write"
    ACCOUNTS_READ = "accounts.read"
    ACCOUNTS_WRITE = "accounts.write"
    # Revealing a full ID number or re-identifying a pairwise sub: needs a reason, audited.
    ACCOUNTS_REVEAL = "accounts.reveal"
    SESSIONS_READ = "sessions.read"
    SESSIONS_WRITE = "sessions.write"
    KEYS_READ = "keys.read"
    KEYS_WRITE = "keys.write"
    AUDIT_READ = "audit.read"
    # Who holds which administrator role (auditors review it; only superadmins change it).
    ADMINS_READ = "admins.read"
    ADMINS_WRITE = "admins.write"


_READ = frozenset(p for p in Permission if p.value.endswith(".read"))

GRANTS: dict[Role, frozenset[Permission]] = {
    Role.SUPERADMIN: frozenset(Permission),
    Role.CLIENT_ADMIN: frozenset({Permission.CLIENTS_READ, Permission.CLIENTS_WRITE}),
    Role.CA_ADMIN: frozenset({Permission.CAS_READ, Permission.CAS_WRITE, Permission.LEGAL_READ,
                              Permission.LEGAL_WRITE}),
    Role.USER_ADMIN: frozenset({Permission.ACCOUNTS_READ, Permission.ACCOUNTS_WRITE, Permission.ACCOUNTS_REVEAL,
                                Permission.SESSIONS_READ, Permission.SESSIONS_WRITE}),
    # Read-only, including the audit trail; revealing personal data is not reading.
    Role.AUDITOR: _READ,
}


def permissions_of(roles: set[str] | frozenset[str] | list[str]) -> frozenset[Permission]:
    """The union of the permissions of ``roles``; unknown role names grant nothing."""
    out: set[Permission] = set()
    for name in roles:
        try:
            out |= GRANTS[Role(name)]
        except ValueError:
            continue
    return frozenset(out)


def check_permission(roles: set[str] | frozenset[str] | list[str], permission: Permission) -> bool:
    return permission in permissions_of(roles)
