"""Per-CA mapping profiles: where a certificate carries its holder's legal-person
identifier, how to decode and normalise it, and what kind of identifier it is
(DESIGN.md §6). Pure: works on a parsed certificate, no database.

A profile is an ordered list of sources. The first source present in the certificate
whose value normalises to a valid identifier wins; the ``trail`` records every step, so
an operator can see why a certificate mapped as it did (or did not).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from cryptography import x509
from cryptography.x509.oid import NameOID, ObjectIdentifier

from .der import DerError, decode_value
from .sm2 import DEFAULT_SIGNER_ID
from .uscc import check_org_code, check_uscc, normalize_org_code

MAX_SIGNER_ID = 128

IdentifierKind = Literal["uscc", "org_code", "reg_no"]
_OID = re.compile(r"^[0-2](\.(0|[1-9]\d{0,9})){1,20}$")
_REG_NO = re.compile(r"^\d{15}$")
MAX_PATTERN = 200
MAX_SOURCES = 32


@dataclass(frozen=True)
class Source:
    """One place to look. ``kind`` "extension" reads a (private) extension by OID;
    "subject" reads a subject attribute by OID (2.5.4.97 organizationIdentifier, 2.5.4.5
    serialNumber, 2.5.4.11 OU, 2.5.4.3 CN, ...). ``pattern`` (optional) must match and its
    first group is the identifier; ``strip_prefixes`` are removed first (e.g. "NTRCN-"
    from ETSI EN 319 412-1 organizationIdentifier values). ``yields`` says which kinds of
    identifier this source may carry."""

    kind: Literal["extension", "subject"]
    oid: str
    yields: tuple[IdentifierKind, ...] = ("uscc",)
    pattern: str | None = None
    strip_prefixes: tuple[str, ...] = ()


@dataclass(frozen=True)
class MappingProfile:
    sources: tuple[Source, ...]
    # Where the legal person's name is read: subject attribute OIDs in order.
    name_oids: tuple[str, ...] = (NameOID.ORGANIZATION_NAME.dotted_string, NameOID.COMMON_NAME.dotted_string)
    # What the CA's certificates must show to be accepted (RFC 5280 §4.2.1.3 / §4.2.1.12).
    require_digital_signature: bool = True
    required_ekus: tuple[str, ...] = ()
    # Unknown revocation status fails closed unless a CA's profile says otherwise.
    revocation_unknown_allowed: bool = False
    # SM2 signer IDs (the user ID hashed into Z, GB/T 32918.2 §5.5): the one this CA's own
    # signatures use (certificates, CRLs, OCSP responses), and the one its holders' UKey
    # middleware signs the login challenge with. GM/T 0009 §10 default unless the CA's
    # certificate policy says otherwise. Ignored for RSA and ECDSA.
    sm2_signer_id: str = DEFAULT_SIGNER_ID
    sm2_holder_signer_id: str = DEFAULT_SIGNER_ID

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MappingProfile:
        """Build and validate a profile from JSON data; raises ``ValueError``."""
        if not isinstance(data, dict):
            raise ValueError("a profile is a JSON object")
        raw_sources = data.get("sources")
        if not isinstance(raw_sources, list) or not raw_sources:
            raise ValueError("a profile needs a non-empty 'sources' list")
        if len(raw_sources) > MAX_SOURCES:
            raise ValueError(f"a profile has at most {MAX_SOURCES} sources")
        sources = []
        for i, item in enumerate(raw_sources):
            if not isinstance(item, dict):
                raise ValueError(f"source {i} is not an object")
            kind = item.get("kind")
            oid = item.get("oid")
            if kind not in ("extension", "subject"):
                raise ValueError(f"source {i}: kind must be 'extension' or 'subject'")
            if not isinstance(oid, str) or not _OID.match(oid):
                raise ValueError(f"source {i}: oid is not a dotted OID")
            raw_yields = item.get("yields") or ["uscc"]
            if not isinstance(raw_yields, list | tuple):
                raise ValueError(f"source {i}: yields must be a list")
            yields = tuple(raw_yields)
            if not all(isinstance(y, str) for y in yields) or not set(yields) <= {"uscc", "org_code", "reg_no"}:
                raise ValueError(f"source {i}: yields must be among uscc, org_code, reg_no")
            pattern = item.get("pattern")
            if pattern is not None:
                if not isinstance(pattern, str) or len(pattern) > MAX_PATTERN:
                    raise ValueError(f"source {i}: pattern must be a string of at most {MAX_PATTERN} characters")
                try:
                    compiled = re.compile(pattern)
                except (re.error, OverflowError, RecursionError) as exc:
                    # Huge repeat counts and deep nesting fail outside re.error.
                    raise ValueError(f"source {i}: bad pattern: {exc}") from None
                if compiled.groups < 1:
                    raise ValueError(f"source {i}: pattern needs a capture group")
            prefixes = item.get("strip_prefixes") or []
            if not isinstance(prefixes, list) or not all(isinstance(p, str) for p in prefixes):
                raise ValueError(f"source {i}: strip_prefixes must be a list of strings")
            sources.append(Source(kind, oid, yields, pattern, tuple(prefixes)))
        name_oids = tuple(_oid_list(data, "name_oids") or MappingProfile.name_oids)
        for oid in name_oids:
            if not isinstance(oid, str) or not _OID.match(oid):
                raise ValueError("name_oids must be dotted OIDs")
        ekus = tuple(_oid_list(data, "required_ekus"))
        for oid in ekus:
            if not isinstance(oid, str) or not _OID.match(oid):
                raise ValueError("required_ekus must be dotted OIDs")
        signer_ids = [_signer_id(data, k) for k in ("sm2_signer_id", "sm2_holder_signer_id")]
        return cls(
            sources=tuple(sources),
            name_oids=name_oids,
            require_digital_signature=bool(data.get("require_digital_signature", True)),
            required_ekus=ekus,
            revocation_unknown_allowed=bool(data.get("revocation_unknown_allowed", False)),
            sm2_signer_id=signer_ids[0],
            sm2_holder_signer_id=signer_ids[1],
        )

    @classmethod
    def from_json(cls, text: str) -> MappingProfile:
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            raise ValueError("the profile is not JSON") from None
        return cls.from_dict(data)


def _oid_list(data: dict[str, Any], key: str) -> list[Any]:
    value = data.get(key) or []
    if not isinstance(value, list | tuple):
        raise ValueError(f"{key} must be a list of dotted OIDs")
    return list(value)


def _signer_id(data: dict[str, Any], key: str) -> str:
    value = data.get(key, DEFAULT_SIGNER_ID)
    # Printable text: the ID is typed by an operator from the CA's certificate policy.
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_SIGNER_ID or not value.isprintable():
        raise ValueError(f"{key} must be 1-{MAX_SIGNER_ID} printable characters")
    return value


# Default placements (issue 4): GM/T 0015-2023 USCC, GM/T 0015-2012 organisation code /
# USCC in practice, business registration number, tax number; the legacy 1.2.86.11.7.x
# arc; then the standard subject attributes.
DEFAULT_PROFILE = MappingProfile(
    sources=(
        Source("extension", "1.2.156.10260.4.4", ("uscc",)),
        Source("extension", "1.2.156.10260.4.1.4", ("uscc", "org_code")),
        Source("extension", "1.2.156.10260.4.1.3", ("uscc", "reg_no")),
        Source("extension", "1.2.156.10260.4.1.5", ("uscc",)),
        Source("extension", "1.2.86.11.7.4", ("uscc", "org_code")),
        Source("extension", "1.2.86.11.7.3", ("uscc", "reg_no")),
        Source("subject", NameOID.ORGANIZATION_IDENTIFIER.dotted_string, ("uscc",), None, ("NTRCN-", "NTR CN-")),
        Source("subject", NameOID.SERIAL_NUMBER.dotted_string, ("uscc", "org_code", "reg_no")),
    )
)


@dataclass(frozen=True)
class MappedIdentifier:
    kind: IdentifierKind
    value: str
    source: Source


@dataclass
class MappingResult:
    identifier: MappedIdentifier | None
    name: str | None
    trail: list[str] = field(default_factory=list)
    malformed: bool = False

    @property
    def reason(self) -> str | None:
        if self.identifier is not None:
            return None
        return "malformed_identifier" if self.malformed else "no_identifier"


def classify(value: str, allowed: tuple[IdentifierKind, ...]) -> tuple[IdentifierKind, str] | None:
    text = value.strip().upper()
    if "uscc" in allowed and check_uscc(text):
        return "uscc", text
    if "org_code" in allowed and check_org_code(text):
        return "org_code", normalize_org_code(text)
    if "reg_no" in allowed and _REG_NO.match(text):
        return "reg_no", text
    return None


def _raw_values(cert: x509.Certificate, source: Source) -> list[str]:
    oid = ObjectIdentifier(source.oid)
    if source.kind == "subject":
        return [str(attr.value) for attr in cert.subject.get_attributes_for_oid(oid)]
    try:
        ext = cert.extensions.get_extension_for_oid(oid)
    except x509.ExtensionNotFound:
        return []
    value = ext.value
    raw = value.value if isinstance(value, x509.UnrecognizedExtension) else value.public_bytes()
    return [decode_value(raw)]


def map_certificate(cert: x509.Certificate, profile: MappingProfile) -> MappingResult:
    """Find the legal-person identifier and name. Never raises for odd certificates:
    undecodable values are recorded in the trail and make the result ``malformed``."""
    result = MappingResult(identifier=None, name=None)
    for source in profile.sources:
        where = f"{source.kind} {source.oid}"
        try:
            values = _raw_values(cert, source)
        except (DerError, ValueError) as exc:
            result.trail.append(f"{where}: present but undecodable ({exc})")
            result.malformed = True
            continue
        if not values:
            result.trail.append(f"{where}: absent")
            continue
        for raw in values:
            text = raw.strip()
            for prefix in source.strip_prefixes:
                if text.upper().startswith(prefix.upper()):
                    text = text[len(prefix) :]
            if source.pattern is not None:
                m = re.search(source.pattern, text)
                if not m:
                    result.trail.append(f"{where}: {text!r} does not match the pattern")
                    result.malformed = True
                    continue
                text = m.group(1) or ""
            found = classify(text, source.yields)
            if found is None:
                result.trail.append(f"{where}: {text!r} is not a valid {'/'.join(source.yields)}")
                result.malformed = True
                continue
            kind, value = found
            result.trail.append(f"{where}: {kind} {value}")
            result.identifier = MappedIdentifier(kind, value, source)
            break
        if result.identifier is not None:
            break
    for oid in profile.name_oids:
        attrs = cert.subject.get_attributes_for_oid(ObjectIdentifier(oid))
        if attrs:
            result.name = str(attrs[0].value).strip()
            result.trail.append(f"name from subject {oid}")
            break
    return result
