"""The errors of the certificates package (issue 11: the same shape as the other
packages): registry, legal persons and mandates. A refused certificate is
``CertificateRejectedError`` with its ``RejectionReason`` (certificates.trust)."""

from __future__ import annotations

from common.errors import DomainError, NotFoundError, ValidationError

from .trust import CertificateRejectedError, RejectionReason

__all__ = ["CaNotFoundError", "CertificateRejectedError", "CredentialNotFoundError", "CredentialStateError",
           "DuplicateCaError", "DuplicateLegalPersonError", "InvalidCaBundleError", "InvalidCrlError",
           "InvalidProfileError", "LegalPersonNotFoundError", "MandateError", "MandateNotFoundError",
           "RejectionReason"]


class CaNotFoundError(NotFoundError):
    code = "ca_not_found"
    public_message = "No such certificate authority."


class DuplicateCaError(DomainError):
    code = "duplicate_ca"
    public_message = "A certificate authority with this name or these root certificates is already registered."
    status_code = 409


class InvalidCaBundleError(ValidationError):
    code = "invalid_ca_bundle"
    public_message = "The PEM bundle is not a valid set of CA certificates."


class InvalidCrlError(ValidationError):
    code = "invalid_crl"
    public_message = "The CRL is not valid for this certificate authority."


class InvalidProfileError(ValidationError):
    code = "invalid_profile"
    public_message = "The mapping profile is not valid."


class LegalPersonNotFoundError(NotFoundError):
    code = "legal_person_not_found"
    public_message = "No such legal person."


class DuplicateLegalPersonError(DomainError):
    code = "duplicate_legal_person"
    public_message = "A legal person with this USCC already exists."
    status_code = 409


class MandateError(ValidationError):
    code = "invalid_mandate"
    public_message = "The mandate is not valid."


class MandateNotFoundError(NotFoundError):
    code = "mandate_not_found"
    public_message = "No active mandate for this legal person."


class CredentialNotFoundError(NotFoundError):
    code = "credential_not_found"
    public_message = "No such certificate credential."


class CredentialStateError(DomainError):
    """The credential's status does not allow the change (only a flagged credential can
    be reinstated; a revoked one stays revoked)."""

    code = "credential_state"
    public_message = "The certificate credential is not in a state that allows this operation."
    status_code = 409
