"""Errors of the administration operations (issue 6). Rendered as RFC 9457 problem
details by ``admin.api.errors``, as form errors by the console, as messages by the CLI."""

from __future__ import annotations

from common.errors import DomainError, NotFoundError, ValidationError


class AdminForbiddenError(DomainError):
    """The actor's roles do not grant the permission the operation needs."""

    code = "forbidden"
    public_message = "Your administrator roles do not allow this operation."
    status_code = 403

    def __init__(self, detail: str = "", *, permission: str = "", action: str = "") -> None:
        super().__init__(detail or f"missing permission {permission}")
        self.permission = permission
        self.action = action


class UnknownRoleError(ValidationError):
    code = "unknown_role"
    public_message = "No such administrator role."


class AdminNotFoundError(NotFoundError):
    code = "admin_not_found"
    public_message = "No such administrator or account."


class ConflictError(DomainError):
    """The operation does not fit the current state of the resource."""

    code = "conflict"
    public_message = "The resource is not in a state that allows this operation."
    status_code = 409


class LastSuperadminError(ConflictError):
    code = "last_superadmin"
    public_message = "The last superadmin cannot lose the role: nobody could grant roles any more."
