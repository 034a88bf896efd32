"""Administration of certificate authorities (issue 6): list with certificates and
revocation state, register from a PEM bundle, rename, change the mapping profile,
disable/enable, upload a CRL, and preview a mapping profile on a sample certificate
without saving. The rules (bundle checks, CRL checks, profile validation) are
``certificates.registry``'s; this module adds the permission check and the audit event.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certificates.mapping import DEFAULT_PROFILE, MappingProfile, MappingResult
from certificates.models import CertificateAuthority
from certificates.registry import CaService, CrlState, parse_profile, try_profile
from certificates.signatures import describe_key, describe_signature
from certificates.validation import load_certificate
from common.audit import AuditTrail
from common.clock import Clock
from common.errors import ValidationError

from .actor import Actor, AuditedOperations
from .roles import Permission

ProfileInput = str | Mapping[str, Any] | MappingProfile | None


@dataclass(frozen=True)
class CaCertificate:
    """One certificate of a CA's bundle, as an operator checks it against the CA's
    published fingerprints (SHA-256 over the DER)."""

    role: str  # "root" | "intermediate"
    subject: str
    issuer: str
    serial: str  # hex
    not_before: datetime
    not_after: datetime
    sha256: str  # hex, colon-free
    expired: bool
    key_algorithm: str  # "SM2", "RSA-2048", "EC P-256", ...
    signature_algorithm: str  # "SM2-with-SM3", "sha256WithRSAEncryption", ...


@dataclass(frozen=True)
class CaOverview:
    """A registered CA with its parsed bundle and revocation state. ``crl_status``:
    "none" (no CRL loaded), "current", or "stale" (nextUpdate passed: validation then
    refetches or fails closed, RFC 5280 §6.3.3)."""

    row: CertificateAuthority
    certificates: tuple[CaCertificate, ...]
    crl_status: str
    profile: dict[str, Any]  # the MappingProfile as JSON data, every field present

    @property
    def profile_json(self) -> str:
        return json.dumps(self.profile, ensure_ascii=False, indent=2)


@dataclass(frozen=True)
class MappingPreview:
    """What a profile makes of a sample certificate: the mapping with its trail, the
    USCC when the identifier is one, and (with a CA's saved profile) whether the sample
    names one of that CA's certificates as its issuer (a name match, not a validation)."""

    result: MappingResult
    profile_source: str  # "given" | "ca" | "default"
    ca_id: int | None
    issuer_match: bool | None
    key_algorithm: str = ""  # the sample's key ("SM2", "RSA-2048", ...)
    signature_algorithm: str = ""  # how its issuer signed it

    @property
    def uscc(self) -> str | None:
        found = self.result.identifier
        return found.value if found is not None and found.kind == "uscc" else None


def _certificates(row: CertificateAuthority, now: datetime) -> tuple[CaCertificate, ...]:
    out = []
    for cert in x509.load_pem_x509_certificates(row.pem_bundle.encode("utf-8")):
        der = cert.public_bytes(serialization.Encoding.DER)
        out.append(CaCertificate(
            role="root" if cert.subject == cert.issuer else "intermediate",
            subject=cert.subject.rfc4514_string(),
            issuer=cert.issuer.rfc4514_string(),
            serial=f"{cert.serial_number:x}",
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            sha256=hashlib.sha256(der).hexdigest(),
            expired=cert.not_valid_after_utc <= now,
            key_algorithm=describe_key(cert),
            signature_algorithm=describe_signature(cert.signature_algorithm_oid),
        ))
    return tuple(out)


def _crl_status(row: CertificateAuthority, now: datetime) -> str:
    if row.crl_der is None:
        return "none"
    if row.crl_next_update is not None and row.crl_next_update <= now:
        return "stale"
    return "current"


def _profile(value: ProfileInput) -> MappingProfile | None:
    """Parse an operator's profile (JSON text or data); raises ``InvalidProfileError``
    naming the problem. Empty text means "no profile given"."""
    if value is None or isinstance(value, MappingProfile):
        return value
    if isinstance(value, str):
        return parse_profile(value) if value.strip() else None
    return parse_profile(dict(value))


class CaAdminService(AuditedOperations):
    area = "ca"

    def __init__(self, cas: CaService, *, clock: Clock, audit: AuditTrail) -> None:
        super().__init__(audit)
        self._cas = cas
        self._clock = clock

    def _overview(self, row: CertificateAuthority) -> CaOverview:
        now = self._clock.now()
        profile = json.loads(MappingProfile.from_dict(row.profile).to_json())
        return CaOverview(row, _certificates(row, now), _crl_status(row, now), profile)

    def all(self, actor: Actor) -> list[CaOverview]:
        """Every registered CA, enabled or not, by id. Needs ``cas.read``."""
        self._authorize(actor, Permission.CAS_READ, "list")
        return [self._overview(r) for r in self._cas.all()]

    def get(self, actor: Actor, ca_id: int) -> CaOverview:
        """Needs ``cas.read``. Raises ``CaNotFoundError``."""
        self._authorize(actor, Permission.CAS_READ, "get")
        return self._overview(self._cas.get(ca_id))

    def add(self, actor: Actor, *, name: str, province: str, pem_bundle: str | bytes, profile: ProfileInput = None,
            crl_urls: Sequence[str] = (), ocsp_url: str | None = None) -> CaOverview:
        """Register a CA from a PEM bundle of roots and intermediates; ``profile`` None
        means the default GM/T 0015 placements. The profile is checked before the
        bundle, and nothing is written unless both are valid. Needs ``cas.write``.
        Raises ``InvalidProfileError``, ``InvalidCaBundleError``, ``ValidationError``,
        ``DuplicateCaError``. Audit: ``admin.ca.add``."""
        self._authorize(actor, Permission.CAS_WRITE, "add")
        parsed = _profile(profile)
        row = self._cas.add(name=name, province=province, pem_bundle=pem_bundle, profile=parsed,
                            crl_urls=crl_urls, ocsp_url=ocsp_url)
        view = self._overview(row)
        self._record(actor, "add", details={
            "ca_id": row.id,
            "roots": sum(1 for c in view.certificates if c.role == "root"),
            "intermediates": sum(1 for c in view.certificates if c.role == "intermediate"),
            "default_profile": parsed is None,
        })
        return view

    def update(self, actor: Actor, ca_id: int, *, name: str | None = None, province: str | None = None,
               profile: ProfileInput = None, sample: bytes | None = None) -> CaOverview:
        """Rename a CA and/or replace its mapping profile. With ``sample`` (a certificate
        of this CA) the new profile must find an identifier in it, or nothing changes.
        Needs ``cas.write``. Raises ``CaNotFoundError``, ``InvalidProfileError``,
        ``ValidationError``, ``DuplicateCaError``, ``CertificateRejectedError`` (unreadable
        sample). Audit: ``admin.ca.update`` with the names of the changed fields (none
        when nothing differs)."""
        self._authorize(actor, Permission.CAS_WRITE, "update")
        parsed = _profile(profile)
        row = self._cas.get(ca_id)
        if name is None and province is None and parsed is None:
            raise ValidationError("no change", public_message="Name a field to change: name, province or profile.")
        # Only what differs is changed and recorded: saving an unchanged form is no event.
        name = name if name is not None and name.strip() != row.name else None
        province = province if province is not None and province.strip() != row.province else None
        parsed = parsed if parsed is not None and parsed != MappingProfile.from_dict(row.profile) else None
        fields = [f for f, v in (("name", name), ("province", province), ("profile", parsed)) if v is not None]
        if name is not None or province is not None:
            self._cas.rename(ca_id, name=name, province=province)
        if parsed is not None:
            self._cas.set_profile(ca_id, parsed, sample=sample)
        if fields:
            self._record(actor, "update",
                         details={"ca_id": ca_id, "fields": fields, "checked_on_sample": parsed is not None and sample is not None})
        return self._overview(self._cas.get(ca_id))

    def set_enabled(self, actor: Actor, ca_id: int, enabled: bool) -> CaOverview:
        """Trust (enable) or stop trusting (disable) a CA: its certificates are refused
        with CA_DISABLED at once here, within the cache TTL elsewhere. Needs
        ``cas.write``. Raises ``CaNotFoundError``. Audit: ``admin.ca.disable`` / ``.enable``."""
        verb = "enable" if enabled else "disable"
        self._authorize(actor, Permission.CAS_WRITE, verb)
        row = self._cas.set_enabled(ca_id, enabled)
        self._record(actor, verb, details={"ca_id": ca_id})
        return self._overview(row)

    def load_crl(self, actor: Actor, ca_id: int, data: bytes) -> CrlState:
        """Replace the CA's CRL with ``data`` (PEM or DER), checked by
        ``CaService.load_crl`` (signed by this CA, current, not older than the loaded one).
        Needs ``cas.write``. Raises ``InvalidCrlError``, ``CaNotFoundError``. Audit:
        ``admin.ca.load_crl`` with the CRL number and entry count."""
        self._authorize(actor, Permission.CAS_WRITE, "load_crl")
        state = self._cas.load_crl(ca_id, data)
        number = state.crl_number
        self._record(actor, "load_crl", details={
            "ca_id": ca_id,
            # An integer (a long digit string would look like an ID number to the
            # trail's personal-data guard); numbers beyond JSON's exact range are left out.
            "crl_number": number if number is not None and number < 2**53 else None,
            "entries": state.entries,
            "next_update": state.next_update.isoformat() if state.next_update else None,
        })
        return state

    def preview(self, actor: Actor, certificate: bytes, *, profile: ProfileInput = None,
                ca_id: int | None = None) -> MappingPreview:
        """Map ``certificate`` (PEM or DER) with ``profile``, else with CA ``ca_id``'s
        saved profile, else with the default profile; nothing is saved and the certificate
        is only read, not validated. Needs ``cas.read``. Raises ``InvalidProfileError``,
        ``CertificateRejectedError`` (MALFORMED_CERTIFICATE), ``CaNotFoundError``."""
        self._authorize(actor, Permission.CAS_READ, "preview")
        parsed = _profile(profile)
        sample = load_certificate(certificate)
        algorithms = describe_key(sample), describe_signature(sample.signature_algorithm_oid)
        if parsed is not None:
            return MappingPreview(try_profile(parsed, certificate), "given", None, None, *algorithms)
        if ca_id is not None:
            [(ca, result, match)] = self._cas.map_sample(certificate, ca_id=ca_id)
            return MappingPreview(result, "ca", ca.ca_id, match, *algorithms)
        return MappingPreview(try_profile(DEFAULT_PROFILE, certificate), "default", None, None, *algorithms)
