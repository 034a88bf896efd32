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


class RoleNotHeldError(ConflictError):
    """Revoking a role the account does not hold: likely a wrong username or role, so the
    command line says so instead of succeeding silently (issue 11 defect 7)."""

    code = "role_not_held"
    public_message = "The account does not hold this role."


class LastSuperadminError(ConflictError):
    code = "last_superadmin"
    public_message = "The last superadmin cannot lose the role: nobody could grant roles any more."


class SelfAdministrationError(ConflictError):
    """Policy: an administrator does not lock their own account or reset their own second
    factor through the console or API (a slip would lock them out; a factor reset of
    one's own account is self-service at /account, with re-authentication)."""

    code = "own_account"
    public_message = "Administrators cannot lock their own account or reset their own second factor here."


class ProtectedAccountError(AdminForbiddenError):
    """Policy: the account holds an administrator role; only a superadmin may lock it,
    reset its second factor or end its sessions (a user-admin could otherwise lock out
    the superadmins, or reset a superadmin's factor and take the account over)."""

    code = "forbidden"
    public_message = "Only a superadmin may change the account of an administrator."


class RevealReasonError(ValidationError):
    """Revealing personal data needs a stated reason (PIPL Art. 6 purpose limitation)."""

    code = "reason_required"
    public_message = "A reason of 10-500 characters is required."


class SessionNotFoundError(NotFoundError):
    code = "session_not_found"
    public_message = "No such live session for this account."


class IdentityNotFoundError(NotFoundError):
    code = "identity_not_found"
    public_message = "This account has no verified identity."


class SystemClientError(ConflictError):
    """Policy (issue 17): a client Yiwang maintains itself (the console's registration) is
    changed by nobody through the console, the API or the CLI; the console's login
    repairs it. Changing it could redirect administrators' codes elsewhere."""

    code = "system_client"
    public_message = "This client is maintained by Yiwang itself and cannot be changed."


class FirstPartyClientError(AdminForbiddenError):
    """Policy (issue 17): first-party clients (the only ones that may obtain the admin
    scope) are registered, changed and removed by superadmins only."""

    code = "forbidden"
    public_message = "Only a superadmin may register or change a first-party administration client."
