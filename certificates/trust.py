"""The vocabulary shared by the CA registry, certificate validation and legal persons
(issue 4, DESIGN.md §5-§6). Pure dataclasses: no Flask, no database.

A ``TrustedCa`` is what validation needs to know about one registered, enabled CA; a
``ValidatedCertificate`` is what validation hands back once a certificate passed every
check; ``CertificateRejectedError`` carries a specific ``RejectionReason`` for the user and
the audit trail.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509

from common.errors import DomainError

from .mapping import MappingProfile, MappingResult


@dataclass(frozen=True)
class TrustedCa:
    ca_id: int
    name: str
    province: str
    roots: tuple[x509.Certificate, ...]  # self-signed anchors
    intermediates: tuple[x509.Certificate, ...]
    profile: MappingProfile
    crl_urls: tuple[str, ...] = ()
    ocsp_url: str | None = None
    crl_der: bytes | None = None  # the last CRL loaded (uploaded or fetched)


class RejectionReason(enum.StrEnum):
    UNKNOWN_ISSUER = "unknown_issuer"
    CA_DISABLED = "ca_disabled"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    NOT_A_CA = "not_a_ca"
    KEY_USAGE = "key_usage"
    EXTENDED_KEY_USAGE = "extended_key_usage"
    REVOKED = "revoked"
    REVOCATION_UNKNOWN = "revocation_unknown"
    SM2_SIGNER_ID = "sm2_signer_id"
    SM2_WRONG_CURVE = "sm2_wrong_curve"
    ENCRYPTION_CERTIFICATE = "encryption_certificate"
    MALFORMED_CERTIFICATE = "malformed_certificate"
    NO_IDENTIFIER = "no_identifier"
    MALFORMED_IDENTIFIER = "malformed_identifier"
    AMBIGUOUS_ORG_CODE = "ambiguous_org_code"
    IDENTIFIER_CONFLICT = "identifier_conflict"


# Fixed, ASCII, safe to show anyone: never echoes certificate content.
PUBLIC_MESSAGES: dict[RejectionReason, str] = {
    RejectionReason.UNKNOWN_ISSUER: "The certificate was not issued by a registered certificate authority.",
    RejectionReason.CA_DISABLED: "The certificate authority that issued this certificate is disabled.",
    RejectionReason.BAD_SIGNATURE: "The certificate signature is not valid.",
    RejectionReason.EXPIRED: "The certificate has expired.",
    RejectionReason.NOT_YET_VALID: "The certificate is not yet valid.",
    RejectionReason.NOT_A_CA: "A certificate in the chain is not allowed to issue certificates.",
    RejectionReason.KEY_USAGE: "The certificate is not allowed for digital signatures.",
    RejectionReason.EXTENDED_KEY_USAGE: "The certificate is not allowed for this purpose.",
    RejectionReason.REVOKED: "The certificate has been revoked.",
    RejectionReason.REVOCATION_UNKNOWN: "The revocation status of the certificate could not be determined.",
    RejectionReason.SM2_SIGNER_ID: "The SM2 signature was made with a different signer ID than the certificate "
                                   "authority uses.",
    RejectionReason.SM2_WRONG_CURVE: "The certificate's SM2 key or signature is not on the SM2 curve.",
    RejectionReason.ENCRYPTION_CERTIFICATE: "This is an encryption certificate; log in with the signing certificate "
                                            "of the same UKey.",
    RejectionReason.MALFORMED_CERTIFICATE: "The certificate could not be read.",
    RejectionReason.NO_IDENTIFIER: "The certificate does not carry a legal-person identifier.",
    RejectionReason.MALFORMED_IDENTIFIER: "The legal-person identifier in the certificate is not valid.",
    RejectionReason.AMBIGUOUS_ORG_CODE: "The organisation code in the certificate does not match exactly one legal person.",
    RejectionReason.IDENTIFIER_CONFLICT: "The certificate is already bound to a different legal person.",
}


class CertificateRejectedError(DomainError):
    """A certificate was refused. ``reason`` is specific (shown to the user by its fixed
    public message, recorded in the audit trail by its value); ``detail`` is for logs."""

    code = "certificate_rejected"
    status_code = 400

    def __init__(self, reason: RejectionReason, detail: str = "") -> None:
        self.reason = reason
        super().__init__(detail or reason.value, public_message=PUBLIC_MESSAGES[reason])


@dataclass(frozen=True)
class ValidatedCertificate:
    certificate: x509.Certificate
    ca: TrustedCa
    issuer_serial: str  # f"{issuer DN RFC4514}|{serial hex}" - the credential key
    spki_sha256: str  # base64url (no padding) of SHA-256 over SubjectPublicKeyInfo DER
    not_before: datetime
    not_after: datetime
    mapping: MappingResult  # certificates.mapping.map_certificate(cert, ca.profile)
