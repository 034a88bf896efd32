"""Errors of the identity provider: the domain errors of accounts, clients and keys,
rendered as form errors, pages or CLI messages. Protocol errors are typed OAuth errors:
Authlib's at the authorization and token endpoints, ours (idp/oauth_errors.py) at the
protected resources and for server faults."""

from __future__ import annotations

from common.errors import DomainError, NotFoundError, ValidationError

from .oauth_errors import TemporarilyUnavailableError


class InvalidCredentialsError(DomainError):
    code = "invalid_credentials"
    # One message for unknown identifiers, wrong passwords and locked-out identifiers, so
    # the answer never tells whether an account exists (OWASP ASVS 5 §6.3).
    public_message = "The account or password is incorrect, or there were too many attempts. Try again later."
    status_code = 401
    # The account the identifier named, when there is one: for the audit trail only (the
    # per-account failed-login alert), never for the answer.
    account_id: int | None = None


class LoginThrottledError(InvalidCredentialsError):
    code = "login_throttled"


class AccountDisabledError(InvalidCredentialsError):
    code = "account_disabled"


class SecondFactorLockedError(DomainError):
    """Too many wrong one-time codes for the account in the window (issue 17)."""

    code = "too_many_attempts"
    public_message = "Too many wrong codes. Wait a while before trying again."
    status_code = 429


class CurrentFactorRequiredError(DomainError):
    """Replacing an authenticator needs a code from the current one, or a recovery code
    (issue 17); otherwise an administrator's audited reset."""

    code = "current_factor_required"
    public_message = "Enter a code from your current authenticator, or a recovery code, to replace it."
    status_code = 400


class DuplicateAccountError(ValidationError):
    code = "duplicate_account"
    public_message = "An account with this username or phone number already exists."


class AccountNotFoundError(NotFoundError):
    code = "account_not_found"
    public_message = "No such account."


class ClientNotFoundError(NotFoundError):
    code = "client_not_found"
    public_message = "No such client."


class InvalidClientMetadataError(ValidationError):
    code = "invalid_client_metadata"
    public_message = "The client registration is not valid."


class KeyNotFoundError(NotFoundError):
    code = "key_not_found"
    public_message = "No signing key is available."


class SigningKeyUnavailableError(TemporarilyUnavailableError):
    """No active signing key: a server fault (issue 11), answered 503 with Retry-After
    and logged with the command that fixes it."""

    public_message = "The service cannot sign tokens at the moment. Try again later."


class ReidentificationRequestError(ValidationError):
    """A re-identification request without a proper reason or requester, or with a
    ``sub`` this provider cannot have issued (issue 5)."""

    code = "invalid_reidentification_request"
    public_message = "The re-identification request is not valid."


class AmbiguousSubjectError(DomainError):
    """Two accounts recompute to one ``sub`` at one client: a keyed-hash collision, which
    should never happen; refusing is safer than naming either account."""

    code = "ambiguous_subject"
    public_message = "The subject identifier matches more than one account."
    status_code = 409


class KeyAlreadyRetiredError(DomainError):
    code = "key_already_retired"
    public_message = "The key is already retired and no longer published."
    status_code = 409
