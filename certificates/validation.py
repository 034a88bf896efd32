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
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from common.clock import Clock

from .der import DerError, _read_tlv
from .mapping import map_certificate
from .revocation import RevocationChecker, RevocationStatus
from .trust import CertificateRejectedError, RejectionReason, TrustedCa, ValidatedCertificate

# GM/T 0006 / GB/T 33560: SM2 signature with SM3, the SM2 curve and the SM2 algorithm.
SM2_SIGNATURE_OIDS = frozenset({"1.2.156.10197.1.501", "1.2.156.10197.1.502", "1.2.156.10197.1.503"})
SM2_KEY_OIDS = frozenset({"1.2.156.10197.1.301", "1.2.156.10197.1.301.1"})
_SM2_CURVE_DER = bytes.fromhex("2a811ccf5501822d")  # 1.2.156.10197.1.301 content octets

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
    except ValueError as exc:
        raise _reject(RejectionReason.MALFORMED_CERTIFICATE, f"unparsable certificate: {exc}") from None
    return cert


def _spki(cert: x509.Certificate) -> tuple[bytes, bytes, bytes | None]:
    """(SubjectPublicKeyInfo DER, algorithm OID content octets, parameter TLV or None),
    read from the TBSCertificate so it works for keys cryptography cannot load (SM2)."""
    tbs = cert.tbs_certificate_bytes
    tag, body, _ = _read_tlv(tbs, 0)
    pos = 0
    # TBSCertificate: [0] version?, serial, signature, issuer, validity, subject, spki, ...
    index = 0
    while pos < len(body):
        start = pos
        tag, value, pos = _read_tlv(body, pos)
        if tag == 0xA0 and index == 0:
            continue
        index += 1
        if index == 6:
            alg_tag, alg, _ = _read_tlv(value, 0)
            _, oid, after = _read_tlv(alg, 0)
            params = alg[after:] or None
            return body[start:pos], oid, params
    raise DerError("no subjectPublicKeyInfo")


def _oid_octets(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    out = bytearray([parts[0] * 40 + parts[1]])
    for n in parts[2:]:
        chunk = [n & 0x7F]
        n >>= 7
        while n:
            chunk.append(0x80 | (n & 0x7F))
            n >>= 7
        out.extend(reversed(chunk))
    return bytes(out)


_SM2_KEY_OCTETS = frozenset(_oid_octets(o) for o in SM2_KEY_OIDS)


def is_sm2(cert: x509.Certificate) -> str | None:
    """Why ``cert`` uses SM2/SM3 (signature algorithm or public key), or None. Looks only at
    OIDs, so it runs before any signature verification and cannot crash on SM2 keys."""
    if cert.signature_algorithm_oid.dotted_string in SM2_SIGNATURE_OIDS:
        return f"signature algorithm {cert.signature_algorithm_oid.dotted_string} (SM2/SM3)"
    try:
        _, alg_oid, params = _spki(cert)
    except DerError:
        return None
    if alg_oid in _SM2_KEY_OCTETS:
        return "SM2 public key algorithm"
    if params is not None and _SM2_CURVE_DER in params:
        return "public key on the SM2 curve 1.2.156.10197.1.301"
    return None


def spki_sha256(cert: x509.Certificate) -> str:
    """base64url (unpadded) SHA-256 of the certificate's SubjectPublicKeyInfo DER."""
    spki, _, _ = _spki(cert)
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
    bad_signature: str | None = None
    sm2: str | None = None


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
        # SM2/SM3 is recognised before any verification (cryptography cannot verify it).
        for c in (cert, *extra):
            why = is_sm2(c)
            if why:
                raise _reject(RejectionReason.SM2_UNSUPPORTED, f"{c.subject.rfc4514_string()}: {why}")

        errors: list[CertificateRejectedError] = []
        search = _Search()
        for path, ca in self._paths(cert, extra, cas, search):
            try:
                return self._check_path(path, ca, production=production, require_identifier=require_identifier)
            except CertificateRejectedError as exc:
                errors.append(exc)
        if errors:
            raise errors[0]
        if search.sm2:
            raise _reject(RejectionReason.SM2_UNSUPPORTED, search.sm2)
        if search.bad_signature:
            raise _reject(RejectionReason.BAD_SIGNATURE, search.bad_signature)
        if disabled_cas and any(True for _ in self._paths(cert, extra, disabled_cas, _Search())):
            raise _reject(RejectionReason.CA_DISABLED, f"issuer {cert.issuer.rfc4514_string()} belongs to a disabled CA")
        raise _reject(RejectionReason.UNKNOWN_ISSUER, f"no path from {cert.issuer.rfc4514_string()} to a registered CA")

    # -- path building (RFC 4158, simplified: name chaining + key identifiers, depth-first)
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
                why = is_sm2(candidate)
                if why:
                    search.sm2 = search.sm2 or f"{candidate.subject.rfc4514_string()}: {why}"
                    continue
                try:
                    # RFC 5280 §6.1.3 (a)(1), (a)(4): signed by the issuer's key, names chain.
                    child.verify_directly_issued_by(candidate)
                except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm) as exc:
                    search.bad_signature = search.bad_signature or (
                        f"{child.subject.rfc4514_string()} not verified by {candidate.subject.rfc4514_string()}: "
                        f"{exc.__class__.__name__} {exc}")
                    continue
                if anchor_ca is not None:
                    yield [*path, candidate], anchor_ca
                else:
                    yield from walk([*path, candidate])

        yield from walk([cert])

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
                if not ku.digital_signature:
                    raise _reject(RejectionReason.KEY_USAGE, "keyUsage lacks digitalSignature")
            except x509.ExtensionNotFound:
                pass
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
