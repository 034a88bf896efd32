"""Errors of real-name verification (rendered as form errors or pages by idp views)."""

from __future__ import annotations

from common.errors import DomainError, ValidationError


class RealnameInputError(ValidationError):
    code = "realname_input"
    public_message = "The name or ID number is not valid."

    def __init__(self, field: str, detail: str, public_message: str) -> None:
        super().__init__(detail, public_message=public_message)
        self.field = field


class VerificationFailedError(DomainError):
    """The registry answered, and the answer is no (mismatch, not found, deceased)."""

    code = "verification_failed"
    # One message for every negative answer: the form must not reveal which part was
    # wrong or whether the number exists.
    public_message = "The name and ID number could not be verified. Check both and try again."


class RegistryUnavailableError(DomainError):
    code = "registry_unavailable"
    public_message = "The identity registry cannot be reached right now. Nothing was saved; please try again later."
    status_code = 503


class DuplicateIdentityError(DomainError):
    code = "duplicate_identity"
    public_message = "This ID number is already verified for another account. Log in to that account instead."
    status_code = 409


class VerificationThrottledError(DomainError):
    code = "verification_throttled"
    public_message = "Too many verification attempts. Please try again later."
    status_code = 429


class RegistrationThrottledError(DomainError):
    code = "registration_throttled"
    public_message = "Too many registration attempts from your network. Please try again later."
    status_code = 429
