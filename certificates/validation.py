"""Certificate path validation (RFC 5280 §6.1) up to a registered, enabled CA: path
building, signatures, validity, basicConstraints / pathLen / keyUsage on CA
certificates, the end-entity's keyUsage / extendedKeyUsage as its CA's profile demands,
critical extensions, revocation (certificates.revocation), then the legal-person
identifier (certificates.mapping). Every refusal is a ``CertificateRejectedError`` with a
specific reason. Pure: no Flask, no database.

Deviation: pyca/cryptography's ``x509.verification`` (PolicyBuilder) implements the
CA/Browser-Forum web PKI profile: its client verifier insists on an extendedKeyUsage
that Chinese UKey certificates often lack, and reports every failure as one opaque
``VerificationError``. We need a reason per rule and per-CA profiles, so the path is
validated here, with cryptography doing each signature check.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from common.clock import Clock

from .der import DerError
from .mapping import map_certificate
from .revocation import RevocationChecker, RevocationStatus
from .signatures import SignatureCheckError, check_public_key, public_key_info, verify_certificate
from .sm2 import DEFAULT_SIGNER_ID
from .trust import CertificateRejectedError, RejectionReason, TrustedCa, ValidatedCertificate

MAX_CERT_BYTES = 64 * 1024
MAX_CHAIN = 8
MAX_DEPTH = 6
ANY_EKU = "2.5.29.37.0"

# RFC 5280 §4.2: extensions we process (or that carry no constraint on path validity);
# any other extension marked critical makes the certificate unusable (§6.1.3, §6.1.5 (c)).
_RECOGNISED = frozenset({
    ExtensionOID.BASIC_CONSTRAINTS.dotted_string,
    ExtensionOID.KEY_USAGE.dotted_string,
    ExtensionOID.EXTENDED_KEY_USAGE.dotted_string,
    ExtensionOID.SUBJECT_KEY_IDENTIFIER.dotted_string,
    ExtensionOID.AUTHORITY_KEY_IDENTIFIER.dotted_string,
    ExtensionOID.CERTIFICATE_POLICIES.dotted_string,  # initial-policy-set any-policy, no explicit policy required
    ExtensionOID.SUBJECT_ALTERNATIVE_NAME.dotted_string,
    ExtensionOID.ISSUER_ALTERNATIVE_NAME.dotted_string,
    ExtensionOID.CRL_DISTRIBUTION_POINTS.dotted_string,
    ExtensionOID.FRESHEST_CRL.dotted_string,
    ExtensionOID.AUTHORITY_INFORMATION_ACCESS.dotted_string,
    ExtensionOID.SUBJECT_INFORMATION_ACCESS.dotted_string,
    ExtensionOID.SUBJECT_DIRECTORY_ATTRIBUTES.dotted_string,
})


def _reject(reason: RejectionReason, detail: str) -> CertificateRejectedError:
    return CertificateRejectedError(reason, detail)


def load_certificate(data: bytes) -> x509.Certificate:
    """Parse one certificate, DER or PEM. Raises MALFORMED_CERTIFICATE."""
    if not isinstance(data, bytes | bytearray) or not data or len(data) > MAX_CERT_BYTES:
        raise _reject(RejectionReason.MALFORMED_CERTIFICATE, "empty, oversized or not bytes")
    raw = bytes(data)
    try:
        if raw.lstrip().startswith(b"-----BEGIN"):
            cert = x509.load_pem_x509_certificate(raw)
        else:
            cert = x509.load_der_x509_certificate(raw)
        # cryptography parses extensions lazily: force it here so a malformed extension
        # is a reason, not an exception later.
        _ = cert.extensions
        _ = cert.subject, cert.issuer, cert.not_valid_before_utc, cert.not_valid_after_utc
        public_key_info(cert)
    except (ValueError, DerError) as exc:
        raise _reject(RejectionReason.MALFORMED_CERTIFICATE, f"unparsable certificate: {exc}") from None
    return cert


def spki_sha256(cert: x509.Certificate) -> str:
    """base64url (unpadded) SHA-256 of the certificate's SubjectPublicKeyInfo DER."""
    spki = public_key_info(cert).der
    return base64.urlsafe_b64encode(hashlib.sha256(spki).digest()).rstrip(b"=").decode("ascii")


def issuer_serial(cert: x509.Certificate) -> str:
    return f"{cert.issuer.rfc4514_string()}|{cert.serial_number:x}"


def _key_ids_match(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    # RFC 5280 §4.2.1.1: when both are present, the child's AKI keyIdentifier names the
    # issuer's SKI; a mismatch means another key of the same name.
    try:
        aki = child.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
        ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return True
    return aki is None or aki == ski


@dataclass
class _Search:
    """What path building saw: the first refused signature (its reason and detail), and
    each link's verification result for this validation (a link is checked once even when
    it lies on several candidate paths)."""

    signature_error: SignatureCheckError | None = None
    checked: dict[tuple[int, int, str], SignatureCheckError | None] = field(default_factory=dict)
    other_ids: tuple[str, ...] = ()


class CertificateValidator:
    """Validates end-entity certificates against the registered CAs (RFC 5280 §6.1)."""

    def __init__(self, clock: Clock, revocation: RevocationChecker | None = None) -> None:
        self._clock = clock
        self._revocation = revocation or RevocationChecker(clock)

    @property
    def revocation(self) -> RevocationChecker:
        return self._revocation

    def validate(
        self,
        leaf: bytes,
        chain: Sequence[bytes],
        cas: Sequence[TrustedCa],
        *,
        production: bool,
        disabled_cas: Sequence[TrustedCa] = (),
        require_identifier: bool = True,
    ) -> ValidatedCertificate:
        """Validate ``leaf`` (DER or PEM) with optional untrusted intermediates ``chain``
        against the enabled ``cas``. ``disabled_cas`` (optional) only turn "unknown issuer"
        into the more precise CA_DISABLED. With ``require_identifier`` (the default) a
        certificate without a valid legal-person identifier is refused. ``production``
        governs CRL/OCSP fetching (no private addresses). Raises
        ``CertificateRejectedError``; may fetch a CRL or ask an OCSP responder."""
        if len(chain) > MAX_CHAIN:
            raise _reject(RejectionReason.MALFORMED_CERTIFICATE, f"more than {MAX_CHAIN} chain certificates")
        cert = load_certificate(leaf)
        extra = [load_certificate(c) for c in chain]
        # A key that says it is SM2 must be a point on the SM2 curve (GB/T 32918.1 §6.2);
        # checked before it is used to verify anything.
        for c in (cert, *extra):
            try:
                check_public_key(c)
            except SignatureCheckError as exc:
                raise _reject(RejectionReason(exc.code), exc.detail) from None

        errors: list[CertificateRejectedError] = []
        # Signer IDs to tell "another signer ID" from "wrong signature" when an SM2 link fails.
        search = _Search(other_ids=(DEFAULT_SIGNER_ID, *(ca.profile.sm2_signer_id for ca in cas)))
        for path, ca in self._paths(cert, extra, cas, search):
            try:
                return self._check_path(path, ca, production=production, require_identifier=require_identifier)
            except CertificateRejectedError as exc:
                errors.append(exc)
        if errors:
            raise errors[0]
        if search.signature_error is not None:
            raise _reject(RejectionReason(search.signature_error.code), search.signature_error.detail)
        if disabled_cas and any(True for _ in self._paths(cert, extra, disabled_cas, _Search())):
            raise _reject(RejectionReason.CA_DISABLED, f"issuer {cert.issuer.rfc4514_string()} belongs to a disabled CA")
        raise _reject(RejectionReason.UNKNOWN_ISSUER, f"no path from {cert.issuer.rfc4514_string()} to a registered CA")

    # -- path building (RFC 4158, simplified: name chaining + key identifiers, depth-first).
    # Signatures are checked once a candidate path reaches an anchor: an SM2 link is
    # verified with the signer ID of the CA registration that anchor belongs to.
    def _paths(self, cert: x509.Certificate, extra: list[x509.Certificate], cas: Sequence[TrustedCa],
               search: _Search) -> Iterator[tuple[list[x509.Certificate], TrustedCa]]:
        anchors: list[tuple[x509.Certificate, TrustedCa]] = [(root, ca) for ca in cas for root in ca.roots]
        pool: list[x509.Certificate] = [*extra, *(i for ca in cas for i in ca.intermediates)]

        def walk(path: list[x509.Certificate]) -> Iterator[tuple[list[x509.Certificate], TrustedCa]]:
            child = path[-1]
            if len(path) > MAX_DEPTH:
                return
            candidates: list[tuple[x509.Certificate, TrustedCa | None]] = [*anchors, *((i, None) for i in pool)]
            for candidate, anchor_ca in candidates:
                if candidate.subject != child.issuer or any(candidate == p for p in path):
                    continue
                if not _key_ids_match(child, candidate):
                    continue
                if anchor_ca is None:
                    yield from walk([*path, candidate])
                elif self._signatures_verify([*path, candidate], anchor_ca, search):
                    yield [*path, candidate], anchor_ca

        yield from walk([cert])

    @staticmethod
    def _signatures_verify(path: list[x509.Certificate], ca: TrustedCa, search: _Search) -> bool:
        # RFC 5280 §6.1.3 (a)(1), (a)(4): each certificate is signed by the next one's key,
        # whatever the algorithm of each link.
        signer_id = ca.profile.sm2_signer_id
        for child, parent in zip(path, path[1:], strict=False):
            key = (id(child), id(parent), signer_id)
            if key not in search.checked:
                try:
                    verify_certificate(child, parent, signer_id=signer_id, other_ids=search.other_ids)
                    search.checked[key] = None
                except SignatureCheckError as exc:
                    search.checked[key] = exc
            error = search.checked[key]
            if error is not None:
                search.signature_error = search.signature_error or error
                return False
        return True

    # -- the checks on one candidate path, leaf first
    def _check_path(self, path: list[x509.Certificate], ca: TrustedCa, *, production: bool,
                    require_identifier: bool) -> ValidatedCertificate:
        now = self._clock.now()
        leaf = path[0]
        # RFC 5280 §6.1.3 (a)(2): every certificate of the path, anchor included (Policy:
        # an expired root is not trusted), must be within its validity period.
        for c in path:
            where = "the certificate" if c is leaf else f"CA certificate {c.subject.rfc4514_string()}"
            if now < c.not_valid_before_utc:
                raise _reject(RejectionReason.NOT_YET_VALID, f"{where} is valid from {c.not_valid_before_utc.isoformat()}")
            if now > c.not_valid_after_utc:
                raise _reject(RejectionReason.EXPIRED, f"{where} expired at {c.not_valid_after_utc.isoformat()}")
        # RFC 5280 §6.1.4 (k)-(n): every issuing certificate is a CA allowed to sign
        # certificates, within its path length constraint.
        below = 0  # non-self-issued intermediates between this CA certificate and the leaf
        for i, c in enumerate(path[1:], start=1):
            name = c.subject.rfc4514_string()
            try:
                bc = c.extensions.get_extension_for_class(x509.BasicConstraints).value
            except x509.ExtensionNotFound:
                raise _reject(RejectionReason.NOT_A_CA, f"{name} has no basicConstraints") from None
            if not bc.ca:
                raise _reject(RejectionReason.NOT_A_CA, f"{name} has basicConstraints cA=false")
            if bc.path_length is not None and below > bc.path_length:
                raise _reject(RejectionReason.NOT_A_CA, f"{name} allows {bc.path_length} intermediates below it, found {below}")
            try:
                ku = c.extensions.get_extension_for_class(x509.KeyUsage).value
                if not ku.key_cert_sign:
                    raise _reject(RejectionReason.NOT_A_CA, f"{name} lacks the keyCertSign key usage")
            except x509.ExtensionNotFound:
                pass
            if c.subject != c.issuer and i < len(path) - 1:
                below += 1
        self._check_critical(path, ca)
        self._check_end_entity(leaf, ca)
        self._check_revocation(path, ca, production)
        mapping = map_certificate(leaf, ca.profile)
        if require_identifier and mapping.identifier is None:
            reason = (RejectionReason.MALFORMED_IDENTIFIER if mapping.malformed else RejectionReason.NO_IDENTIFIER)
            raise _reject(reason, "; ".join(mapping.trail))
        return ValidatedCertificate(
            certificate=leaf,
            ca=ca,
            issuer_serial=issuer_serial(leaf),
            spki_sha256=spki_sha256(leaf),
            not_before=leaf.not_valid_before_utc,
            not_after=leaf.not_valid_after_utc,
            mapping=mapping,
        )

    def _check_critical(self, path: list[x509.Certificate], ca: TrustedCa) -> None:
        # RFC 5280 §6.1.4 (o) / §6.1.5 (f): an unrecognised critical extension makes the
        # certificate unusable. The leaf's identifier extensions named in its CA's profile
        # count as recognised. Deviation: name constraints and policy constraints are not
        # processed, so CA certificates marking them critical are refused (fail closed).
        profile_oids = {s.oid for s in ca.profile.sources if s.kind == "extension"}
        for c in path:
            known = _RECOGNISED | (profile_oids if c is path[0] else frozenset())
            for ext in c.extensions:
                if ext.critical and ext.oid.dotted_string not in known:
                    raise _reject(RejectionReason.MALFORMED_CERTIFICATE,
                                  f"{c.subject.rfc4514_string()}: unsupported critical extension {ext.oid.dotted_string}")

    def _check_end_entity(self, leaf: x509.Certificate, ca: TrustedCa) -> None:
        profile = ca.profile
        try:
            bc = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value
            if bc.ca:
                # Policy: a CA certificate is not a login credential.
                raise _reject(RejectionReason.KEY_USAGE, "the certificate is a CA certificate")
        except x509.ExtensionNotFound:
            pass
        # RFC 5280 §4.2.1.3: signing a login challenge needs digitalSignature (UKeys carry
        # a separate encryption certificate that must not log in). An absent keyUsage
        # extension places no restriction.
        if profile.require_digital_signature:
            try:
                ku = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
            except x509.ExtensionNotFound:
                ku = None
            if ku is not None and not ku.digital_signature:
                # GM/T 0015 §5 / GB/T 20518: UKeys hold a signing and an encryption
                # certificate with the same subject; the encryption one cannot sign.
                if ku.key_encipherment or ku.data_encipherment or ku.key_agreement:
                    raise _reject(RejectionReason.ENCRYPTION_CERTIFICATE,
                                  "keyUsage is for encryption only (the encryption certificate of a pair)")
                raise _reject(RejectionReason.KEY_USAGE, "keyUsage lacks digitalSignature")
        # RFC 5280 §4.2.1.12: only where the CA's profile demands purposes. Policy: a
        # demanded purpose must be stated (an absent extendedKeyUsage does not satisfy it);
        # anyExtendedKeyUsage does.
        if profile.required_ekus:
            try:
                eku = {o.dotted_string for o in leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value}
            except x509.ExtensionNotFound:
                raise _reject(RejectionReason.EXTENDED_KEY_USAGE, "no extendedKeyUsage, profile requires "
                              + ", ".join(profile.required_ekus)) from None
            missing = [o for o in profile.required_ekus if o not in eku]
            if missing and ANY_EKU not in eku:
                raise _reject(RejectionReason.EXTENDED_KEY_USAGE, f"extendedKeyUsage lacks {', '.join(missing)}")

    def _check_revocation(self, path: list[x509.Certificate], ca: TrustedCa, production: bool) -> None:
        # RFC 5280 §6.1.3 (a)(3): the end-entity's status must be known - unknown fails
        # closed unless the CA's profile allows it.
        leaf = path[0]
        result = self._revocation.check(leaf, path[1], ca, production=production)
        if result.status == RevocationStatus.REVOKED:
            raise _reject(RejectionReason.REVOKED, result.detail)
        if result.status == RevocationStatus.UNKNOWN and not ca.profile.revocation_unknown_allowed:
            raise _reject(RejectionReason.REVOCATION_UNKNOWN, result.detail)
        # Deviation: a CA registration holds one CRL; intermediate CA certificates are
        # checked against it when it covers them (a revoked intermediate is refused), but
        # an intermediate whose status no loaded CRL covers is not refused.
        for i in range(1, len(path) - 1):
            result = self._revocation.check(path[i], path[i + 1], ca, production=production, use_ocsp=False)
            if result.status == RevocationStatus.REVOKED:
                raise _reject(RejectionReason.REVOKED, f"CA certificate {path[i].subject.rfc4514_string()}: {result.detail}")


# Kept for callers that want the web-PKI client-auth purpose in a profile.
CLIENT_AUTH_EKU = ExtendedKeyUsageOID.CLIENT_AUTH.dotted_string
