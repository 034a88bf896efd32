"""The CA trust registry: CAs registered from PEM bundles with a mapping profile and
revocation sources, CRLs loaded and checked against the CA's keys, and the ``TrustedCa``
snapshots validation works on (cached per process). RFC 5280 §4.2.1.3, §4.2.1.9, §5.

"一证通用" (issue 4): every CA is registered, stored and used the same way; the only
per-CA knowledge is its mapping profile (where the identifier lives), never a code path.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer

from common.clock import Clock
from common.db import insert_unique
from common.errors import ValidationError

from .errors import CaNotFoundError, DuplicateCaError, InvalidCaBundleError, InvalidCrlError, InvalidProfileError
from .mapping import DEFAULT_PROFILE, MappingProfile, MappingResult, map_certificate
from .models import CertificateAuthority
from .revocation import MAX_CRL_BYTES, CrlError, parse_crl
from .signatures import SignatureCheckError, check_public_key, is_sm2_signed, verify_certificate
from .sm2 import DEFAULT_SIGNER_ID
from .trust import TrustedCa
from .validation import load_certificate

MAX_BUNDLE_BYTES = 1024 * 1024
MAX_BUNDLE_CERTIFICATES = 20
MAX_URLS = 8


def parse_bundle(pem: str | bytes, now: datetime, *, signer_id: str = DEFAULT_SIGNER_ID,
                 other_ids: Sequence[str] = (),
                 ) -> tuple[tuple[x509.Certificate, ...], tuple[x509.Certificate, ...]]:
    """Split a PEM bundle into (roots, intermediates) after checking that every
    certificate may issue certificates and that every intermediate chains, inside the
    bundle, to a root, each signature verified whatever its algorithm (SM2 ones with
    ``signer_id``; ``other_ids`` are only tried to name a wrong signer ID). Raises
    ``InvalidCaBundleError`` with an operator-readable message."""
    data = pem.encode("utf-8") if isinstance(pem, str) else pem
    if len(data) > MAX_BUNDLE_BYTES:
        raise InvalidCaBundleError("too large", public_message="The PEM bundle is larger than 1 MiB.")
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise InvalidCaBundleError("no PEM certificates",
                                   public_message="The file holds no readable PEM certificate.") from None
    if len(certs) > MAX_BUNDLE_CERTIFICATES:
        raise InvalidCaBundleError("too many", public_message=f"A bundle holds at most {MAX_BUNDLE_CERTIFICATES} certificates.")
    for i, cert in enumerate(certs, 1):
        _check_ca_certificate(cert, i, now)
    roots = tuple(c for c in certs if c.subject == c.issuer)
    intermediates = tuple(c for c in certs if c.subject != c.issuer)
    if not roots:
        raise InvalidCaBundleError("no root", public_message="The bundle holds no self-signed root certificate.")
    check_bundle_signatures(roots, intermediates, signer_id, other_ids)
    return roots, intermediates


def check_bundle_signatures(roots: Sequence[x509.Certificate], intermediates: Sequence[x509.Certificate],
                            signer_id: str, other_ids: Sequence[str] = ()) -> None:
    """Every root's self-signature verifies and every intermediate reaches a root through
    certificates of the bundle. Raises ``InvalidCaBundleError``."""
    for cert in (*roots, *intermediates):
        try:
            check_public_key(cert)
        except SignatureCheckError as exc:
            raise InvalidCaBundleError(exc.detail, public_message=f"{cert.subject.rfc4514_string()}: the key is "
                                       "declared SM2 but is not a point on the SM2 curve.") from None
    for root in roots:
        # RFC 5280 §6.1.1 (d): an anchor is trusted by configuration, but a root whose
        # self-signature fails is a wrong or corrupted file (or, for SM2, a wrong signer ID).
        try:
            verify_certificate(root, root, signer_id=signer_id, other_ids=(DEFAULT_SIGNER_ID, *other_ids))
        except SignatureCheckError as exc:
            raise InvalidCaBundleError(exc.detail, public_message=_bundle_signature_message(
                f"The root {root.subject.rfc4514_string()} has a bad self-signature", exc, signer_id,
                sm2=is_sm2_signed(root.signature_algorithm_oid))) from None
    # Every intermediate must reach a root through certificates of this bundle, so a
    # bundle cannot smuggle in a CA that no registered anchor vouches for.
    reached = list(roots)
    pending = list(intermediates)
    last_error: SignatureCheckError | None = None
    while pending:
        progress = []
        for c in pending:
            for parent in reached:
                if c.issuer != parent.subject:
                    continue
                try:
                    verify_certificate(c, parent, signer_id=signer_id, other_ids=(DEFAULT_SIGNER_ID, *other_ids))
                except SignatureCheckError as exc:
                    last_error = exc
                    continue
                progress.append(c)
                break
        if not progress:
            message = f"The intermediate {pending[0].subject.rfc4514_string()} is not issued by a certificate in the bundle"
            raise InvalidCaBundleError("orphan intermediate", public_message=_bundle_signature_message(
                message, last_error, signer_id, sm2=is_sm2_signed(pending[0].signature_algorithm_oid))
                if last_error else message + ".")
        reached.extend(progress)
        pending = [c for c in pending if c not in progress]


def _bundle_signature_message(prefix: str, exc: SignatureCheckError, signer_id: str, *, sm2: bool) -> str:
    if exc.code == "sm2_signer_id":
        return (f"{prefix}: the SM2 signature verifies with another signer ID than {signer_id!r}; set the "
                "profile's sm2_signer_id to the CA's.")
    if exc.code == "sm2_wrong_curve":
        return f"{prefix}: an SM2 signature from a key that is not on the SM2 curve."
    if sm2:
        # The bytes are wrong, or the CA signs with a signer ID nobody here has named.
        return (f"{prefix} (SM2-with-SM3 with signer ID {signer_id!r}). If the CA's certificate policy names "
                "another SM2 signer ID, set it as the profile's sm2_signer_id.")
    return prefix + "."


def _check_ca_certificate(cert: x509.Certificate, position: int, now: datetime) -> None:
    where = f"Certificate {position} ({cert.subject.rfc4514_string()})"
    # RFC 5280 §4.2.1.9: only cA=TRUE certificates may issue certificates.
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        bc = None
    except ValueError:
        raise InvalidCaBundleError("bad extensions", public_message=f"{where} has malformed extensions.") from None
    if bc is None or not bc.ca:
        raise InvalidCaBundleError("not a CA", public_message=f"{where} is not a CA certificate (basicConstraints cA).")
    # RFC 5280 §4.2.1.3: when keyUsage is present, keyCertSign must be set.
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        ku = None
    except ValueError:
        raise InvalidCaBundleError("bad extensions", public_message=f"{where} has malformed extensions.") from None
    if ku is not None and not ku.key_cert_sign:
        raise InvalidCaBundleError("no keyCertSign", public_message=f"{where} lacks keyCertSign in keyUsage.")
    if cert.not_valid_after_utc <= now:
        raise InvalidCaBundleError("expired CA", public_message=f"{where} has expired.")


def anchors_fingerprint(roots: Sequence[x509.Certificate]) -> str:
    ders = sorted(r.public_bytes(serialization.Encoding.DER) for r in roots)
    return hashlib.sha256(b"".join(hashlib.sha256(d).digest() for d in ders)).hexdigest()


def _check_urls(urls: Sequence[str], what: str) -> list[str]:
    if len(urls) > MAX_URLS:
        raise ValidationError("too many urls", public_message=f"At most {MAX_URLS} {what} URLs.")
    out = []
    for url in urls:
        parts = urlsplit(url)
        # Fetching is restricted further at fetch time (no private or loopback addresses
        # in production, certificates.revocation); here only the form is checked.
        if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2000:
            raise ValidationError("bad url", public_message=f"The {what} URL must be an http(s) URL.")
        out.append(url)
    return out


def parse_profile(data: str | dict[str, object]) -> MappingProfile:
    """A profile from JSON text or data. Raises ``InvalidProfileError``."""
    try:
        return MappingProfile.from_json(data) if isinstance(data, str) else MappingProfile.from_dict(data)
    except ValueError as exc:
        raise InvalidProfileError(str(exc), public_message=f"The mapping profile is not valid: {exc}.") from None


def try_profile(profile: MappingProfile, sample: bytes) -> MappingResult:
    """Map a sample certificate (PEM or DER) with a profile that is not saved yet, so an
    operator sees where the identifier is found (the trail) before relying on it."""
    return map_certificate(load_certificate(sample), profile)


def _crl_number(crl: x509.CertificateRevocationList) -> int | None:
    try:
        return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        return None


@dataclass(frozen=True)
class CrlState:
    ca_id: int
    issuer: str
    crl_number: int | None
    this_update: datetime
    next_update: datetime | None
    entries: int


class TrustedCaCache:
    """Per-process cache of the registered CAs as ``TrustedCa`` snapshots with their
    enabled flag (PEM and profiles parsed once), with a short TTL.

    Policy (as ``idp.clients.ClientCache``): a change to a CA (disabled, new CRL, new
    profile) is seen by every instance within ``ttl`` seconds; the instance that made
    the change drops its snapshot at once.
    """

    def __init__(self, ttl: float = 5.0) -> None:
        self._ttl = ttl
        self._item: tuple[float, tuple[tuple[TrustedCa, bool], ...]] | None = None
        self._lock = threading.Lock()
        self._reloading = threading.Lock()
        # ca_id → (crl_loaded_at, crl_number, crl_this_update, length) of the CRL in the
        # snapshot: a CRL whose marks did not change is not read again.
        self.crl_marks: dict[int, tuple[object, ...]] = {}

    def get(self, load: Callable[[], tuple[tuple[TrustedCa, bool], ...]]) -> tuple[tuple[TrustedCa, bool], ...]:
        """The snapshot, reloaded after the TTL by one thread at a time: while one thread
        reloads, the others keep the previous snapshot for that moment instead of each
        reading every CA (and its CRL) again (issue 10 benchmark: with a 100,000-entry CRL
        every thread reloading at once tripled the login tail)."""
        now = time.monotonic()
        item = self._item
        if item is not None and item[0] > now:
            return item[1]
        if item is not None:
            if not self._reloading.acquire(blocking=False):
                return item[1]
        else:
            self._reloading.acquire()
        try:
            item = self._item
            if item is not None and item[0] > time.monotonic():
                return item[1]
            value = load()
            with self._lock:
                self._item = (time.monotonic() + self._ttl, value)
            return value
        finally:
            self._reloading.release()

    def current(self) -> tuple[tuple[TrustedCa, bool], ...]:
        """The last snapshot, even if expired (empty before the first load)."""
        item = self._item
        return item[1] if item is not None else ()

    def invalidate(self) -> None:
        with self._lock:
            self._item = None


class CaService:
    """Register and manage CAs. Flushes, never commits; every change drops this
    process's ``TrustedCa`` snapshot."""

    def __init__(self, session: Session, *, clock: Clock, cache: TrustedCaCache | None = None) -> None:
        self._session = session
        self._clock = clock
        self._cache = cache or TrustedCaCache(ttl=0)

    # -- registration -----------------------------------------------------------------

    def add(
        self,
        *,
        name: str,
        province: str,
        pem_bundle: str | bytes,
        profile: MappingProfile | None = None,
        crl_urls: Sequence[str] = (),
        ocsp_url: str | None = None,
        enabled: bool = True,
    ) -> CertificateAuthority:
        """Register a CA. Raises ``InvalidCaBundleError`` (see ``parse_bundle``),
        ``ValidationError`` (name, province, URLs), ``DuplicateCaError`` (same name, or a
        root already anchoring another CA). Adds one ``certificates_cas`` row."""
        name = name.strip()
        province = province.strip()
        if not 1 <= len(name) <= 200:
            raise ValidationError("bad name", public_message="A CA name has 1-200 characters.")
        if not 1 <= len(province) <= 64:
            raise ValidationError("bad province", public_message="A province/region has 1-64 characters.")
        now = self._clock.now()
        roots, _ = parse_bundle(pem_bundle, now, signer_id=(profile or DEFAULT_PROFILE).sm2_signer_id,
                                other_ids=self._known_signer_ids())
        urls = _check_urls(list(crl_urls), "CRL")
        ocsp = _check_urls([ocsp_url], "OCSP")[0] if ocsp_url else None
        # One root, one CA: otherwise a certificate would belong to two registrations
        # with possibly different profiles and the outcome would depend on order.
        new_roots = {hashlib.sha256(r.public_bytes(serialization.Encoding.DER)).digest() for r in roots}
        for other in self._session.scalars(select(CertificateAuthority)):
            other_roots, _ = self._parse_stored(other)
            if new_roots & {hashlib.sha256(r.public_bytes(serialization.Encoding.DER)).digest() for r in other_roots}:
                raise DuplicateCaError(f"root already registered for CA {other.id}")
        pem_text = pem_bundle.decode("utf-8", "replace") if isinstance(pem_bundle, bytes) else pem_bundle
        row = CertificateAuthority(
            name=name,
            province=province,
            pem_bundle=pem_text,
            anchors_sha256=anchors_fingerprint(roots),
            profile=json.loads((profile or DEFAULT_PROFILE).to_json()),
            enabled=enabled,
            crl_urls=urls,
            ocsp_url=ocsp,
            created_at=now,
            updated_at=now,
        )
        insert_unique(self._session, row, DuplicateCaError("unique constraint"))
        self._cache.invalidate()
        return row

    def _known_signer_ids(self) -> tuple[str, ...]:
        """The SM2 signer IDs of the registered CAs: tried only to name a wrong ID."""
        return tuple(dict.fromkeys(ca.profile.sm2_signer_id for ca, _ in self._load_snapshots()))

    def all(self) -> list[CertificateAuthority]:
        return list(self._session.scalars(select(CertificateAuthority).order_by(CertificateAuthority.id)))

    def get(self, ca_id: int) -> CertificateAuthority:
        row = self._session.get(CertificateAuthority, ca_id)
        if row is None:
            raise CaNotFoundError(f"CA {ca_id}")
        return row

    def set_enabled(self, ca_id: int, enabled: bool) -> CertificateAuthority:
        """Enable or disable a CA. A disabled CA's certificates stop validating on this
        instance at once and on every instance within the cache TTL."""
        row = self.get(ca_id)
        row.enabled = enabled
        row.updated_at = self._clock.now()
        self._session.flush()
        self._cache.invalidate()
        return row

    def disable(self, ca_id: int) -> CertificateAuthority:
        return self.set_enabled(ca_id, False)

    def enable(self, ca_id: int) -> CertificateAuthority:
        return self.set_enabled(ca_id, True)

    def rename(self, ca_id: int, *, name: str | None = None, province: str | None = None) -> CertificateAuthority:
        """Change a CA's display name and/or province (same rules as ``add``). Raises
        ``CaNotFoundError``, ``ValidationError``, ``DuplicateCaError`` (the name is taken)."""
        row = self.get(ca_id)
        if name is not None:
            name = name.strip()
            if not 1 <= len(name) <= 200:
                raise ValidationError("bad name", public_message="A CA name has 1-200 characters.")
            taken = self._session.scalar(select(CertificateAuthority.id).where(
                CertificateAuthority.name == name, CertificateAuthority.id != ca_id))
            if taken is not None:
                raise DuplicateCaError(f"name taken by CA {taken}")
            row.name = name
        if province is not None:
            province = province.strip()
            if not 1 <= len(province) <= 64:
                raise ValidationError("bad province", public_message="A province/region has 1-64 characters.")
            row.province = province
        row.updated_at = self._clock.now()
        try:
            with self._session.begin_nested():
                self._session.flush()
        except IntegrityError as exc:
            # A concurrent rename to the same name (unique constraint).
            raise DuplicateCaError("unique constraint") from exc
        self._cache.invalidate()
        return row

    def set_profile(self, ca_id: int, profile: MappingProfile, *, sample: bytes | None = None) -> MappingResult | None:
        """Replace a CA's mapping profile. With ``sample`` the profile must map that
        certificate to an identifier first, or ``InvalidProfileError`` is raised and
        nothing changes. Returns the sample's mapping."""
        result = None
        if sample is not None:
            result = try_profile(profile, sample)
            if result.identifier is None:
                raise InvalidProfileError(
                    "sample does not map",
                    public_message="The profile finds no legal-person identifier in the sample certificate.",
                )
        row = self.get(ca_id)
        current = MappingProfile.from_dict(row.profile)
        if profile.sm2_signer_id != current.sm2_signer_id:
            # A new signer ID must still verify the registered certificates.
            roots, intermediates = self._parse_stored(row)
            try:
                check_bundle_signatures(roots, intermediates, profile.sm2_signer_id)
            except InvalidCaBundleError as exc:
                raise InvalidProfileError(str(exc), public_message="With this sm2_signer_id the CA's certificates "
                                          f"do not verify: {exc.public_message}") from None
        row.profile = json.loads(profile.to_json())
        row.updated_at = self._clock.now()
        self._session.flush()
        self._cache.invalidate()
        return result

    # -- revocation -------------------------------------------------------------------

    def load_crl(self, ca_id: int, data: bytes) -> CrlState:
        """Replace the CA's CRL with ``data`` (DER or PEM). The CRL must be signed by a
        certificate of this CA whose name is its issuer and which may sign CRLs (RFC 5280
        §6.3.3 (f), checked by ``certificates.revocation.parse_crl``, the same rule
        validation applies), still be current (nextUpdate not passed) and not be older
        than the CRL it replaces (RFC 5280 §5.2.3: CRL numbers only grow), so an old CRL
        cannot be replayed to un-revoke a certificate. Raises ``InvalidCrlError``,
        ``CaNotFoundError``. Updates the ``certificates_cas`` row's CRL columns."""
        if len(data) > MAX_CRL_BYTES:
            raise InvalidCrlError("too large", public_message="The CRL is larger than 64 MiB.")
        row = self.get(ca_id)
        ca = self._to_trusted(row, crl_der=row.crl_der)
        try:
            crl = x509.load_pem_x509_crl(data) if data.lstrip().startswith(b"-----BEGIN") else x509.load_der_x509_crl(data)
        except ValueError:
            raise InvalidCrlError("unreadable CRL", public_message="The CRL could not be read.") from None
        signers = [c for c in (*ca.roots, *ca.intermediates) if c.subject == crl.issuer]
        if not signers:
            raise InvalidCrlError("issuer not in CA", public_message="The CRL was not issued by this certificate authority.")
        der = crl.public_bytes(serialization.Encoding.DER)
        try:
            parsed = parse_crl(der, ca, other_ids=self._known_signer_ids())
        except CrlError as exc:
            if exc.code == "sm2_signer_id":
                message = ("The CRL's SM2 signature verifies with another signer ID than the one in this certificate "
                           "authority's profile (sm2_signer_id).")
            else:
                message = ("The CRL signature does not verify with this certificate authority's keys, or the CRL is "
                           "of an unsupported kind.")
            raise InvalidCrlError(str(exc), public_message=message) from None
        now = self._clock.now()
        if parsed.next_update is not None and parsed.next_update <= now:
            raise InvalidCrlError("stale CRL", public_message="The CRL is out of date (its nextUpdate has passed).")
        if parsed.this_update > now:
            raise InvalidCrlError("future CRL", public_message="The CRL is not yet valid (thisUpdate is in the future).")
        if row.crl_der is not None:
            previous = x509.load_der_x509_crl(row.crl_der)
            # Only CRLs of the same issuer are comparable.
            if previous.issuer == crl.issuer:
                old_number = _crl_number(previous)
                if parsed.crl_number is not None and old_number is not None and parsed.crl_number < old_number:
                    raise InvalidCrlError("older CRL number",
                                          public_message="The CRL is older than the one loaded (lower CRL number).")
                if row.crl_this_update is not None and parsed.this_update < row.crl_this_update:
                    raise InvalidCrlError("older thisUpdate",
                                          public_message="The CRL is older than the one loaded (earlier thisUpdate).")
        row.crl_der = der
        row.crl_this_update = parsed.this_update
        row.crl_next_update = parsed.next_update
        row.crl_number = str(parsed.crl_number) if parsed.crl_number is not None else None
        row.crl_loaded_at = now
        row.updated_at = now
        self._session.flush()
        self._cache.invalidate()
        return CrlState(row.id, crl.issuer.rfc4514_string(), parsed.crl_number, parsed.this_update,
                        parsed.next_update, len(parsed.revoked))

    # -- snapshots for validation ------------------------------------------------------

    def trusted(self) -> tuple[TrustedCa, ...]:
        """The enabled CAs, parsed, from this process's cache (TTL) or the database."""
        return tuple(ca for ca, enabled in self._cache.get(self._load_snapshots) if enabled)

    def disabled(self) -> tuple[TrustedCa, ...]:
        """The disabled CAs (for ``CertificateValidator.validate(disabled_cas=...)``, which
        only uses them to say CA_DISABLED instead of UNKNOWN_ISSUER)."""
        return tuple(ca for ca, enabled in self._cache.get(self._load_snapshots) if not enabled)

    def trusted_by_id(self, ca_id: int) -> TrustedCa:
        """One CA as a snapshot, enabled or not (for ``map --ca``). Raises
        ``CaNotFoundError``."""
        row = self.get(ca_id)
        return self._to_trusted(row, crl_der=row.crl_der)

    def _load_snapshots(self) -> tuple[tuple[TrustedCa, bool], ...]:
        # The CRL bytes (megabytes for a large CA) are read only when the CRL changed since
        # the previous snapshot; otherwise the same bytes object is kept, which is also
        # what lets the revocation checker skip re-hashing it (its identity fast path).
        previous = {ca.ca_id: ca for ca, _ in self._cache.current()}
        marks = self._cache.crl_marks
        rows = list(self._session.scalars(select(CertificateAuthority).options(defer(CertificateAuthority.crl_der))
                                          .order_by(CertificateAuthority.id)))
        lengths: dict[int, int | None] = {
            ca_id: length for ca_id, length in
            self._session.execute(select(CertificateAuthority.id, func.length(CertificateAuthority.crl_der)))}
        out = []
        for row in rows:
            mark = (row.crl_loaded_at, row.crl_number, row.crl_this_update, lengths.get(row.id))
            known = previous.get(row.id)
            crl = known.crl_der if known is not None and marks.get(row.id) == mark else None
            if crl is None and mark[3] is not None:
                crl = self._session.scalar(select(CertificateAuthority.crl_der).where(CertificateAuthority.id == row.id))
            marks[row.id] = mark
            out.append((self._to_trusted(row, crl_der=crl), row.enabled))
        return tuple(out)

    def _to_trusted(self, row: CertificateAuthority, *, crl_der: bytes | None) -> TrustedCa:
        roots, intermediates = self._parse_stored(row)
        return TrustedCa(
            ca_id=row.id,
            name=row.name,
            province=row.province,
            roots=roots,
            intermediates=intermediates,
            profile=MappingProfile.from_dict(row.profile),
            crl_urls=tuple(row.crl_urls or ()),
            ocsp_url=row.ocsp_url,
            crl_der=crl_der,
        )

    @staticmethod
    def _parse_stored(row: CertificateAuthority) -> tuple[tuple[x509.Certificate, ...], tuple[x509.Certificate, ...]]:
        # Checked when stored; re-checking expiry here would silently drop a CA whose
        # root expired, which validation reports more clearly (EXPIRED).
        certs = x509.load_pem_x509_certificates(row.pem_bundle.encode("utf-8"))
        return (tuple(c for c in certs if c.subject == c.issuer), tuple(c for c in certs if c.subject != c.issuer))

    # -- mapping ------------------------------------------------------------------------

    def map_sample(self, sample: bytes, *, ca_id: int | None = None) -> list[tuple[TrustedCa, MappingResult, bool]]:
        """Map a certificate with one CA's profile (``ca_id``) or with every enabled
        CA's profile. Each entry: the CA, the mapping (with its trail) and whether the
        certificate names one of that CA's certificates as its issuer (a name match,
        not a validation)."""
        cert = load_certificate(sample)
        cas = (self.trusted_by_id(ca_id),) if ca_id is not None else self.trusted()
        out = []
        for ca in cas:
            issuer_match = any(cert.issuer == c.subject for c in (*ca.roots, *ca.intermediates))
            out.append((ca, map_certificate(cert, ca.profile), issuer_match))
        return out
