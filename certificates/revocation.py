"""Certificate revocation: CRLs (RFC 5280 §5, §6.3) and OCSP (RFC 6960), with an
in-process cache of parsed CRLs so a look-up is one set membership whatever the CRL's
size, fetched from configured URLs only with the guarded client of ``common.http`` (no
private, loopback or link-local addresses in production). Pure of Flask and the database.
"""

from __future__ import annotations

import enum
import hashlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from common.clock import Clock
from common.http import FetchError, http_fetch

from .der import DerError
from .signatures import SignatureCheckError, key_hash_sha1, same_key, verify_certificate, verify_crl, verify_ocsp
from .sm2 import DEFAULT_SIGNER_ID
from .trust import TrustedCa

MAX_CRL_BYTES = 64 * 1024 * 1024
MAX_OCSP_BYTES = 64 * 1024
FETCH_TIMEOUT_SECONDS = 10.0
# Policy: a fetched CRL is reused for at most this long even if its nextUpdate is later,
# so a CA's emergency re-issue is picked up within the hour.
REFETCH_SECONDS = 3600
# RFC 6960 §4.2.2.1: tolerate small clock differences with the responder.
OCSP_SKEW = timedelta(minutes=5)
_PER_CA = 3


class RevocationStatus(enum.StrEnum):
    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class RevocationResult:
    status: RevocationStatus
    source: str  # "crl", "ocsp" or "none"
    detail: str


class CrlError(ValueError):
    """A CRL could not be parsed or is not signed by the CA it is loaded for. ``code`` is
    "sm2_signer_id" when its SM2 signature verifies only with another signer ID."""

    def __init__(self, message: str, code: str = "invalid_crl") -> None:
        self.code = code
        super().__init__(message)


@dataclass(frozen=True)
class ParsedCrl:
    """A CRL reduced to what a look-up needs: the issuer it covers and the revoked serials
    as a frozenset (O(1) membership)."""

    issuer: x509.Name
    this_update: datetime
    next_update: datetime | None
    crl_number: int | None
    sha256: str
    revoked: frozenset[int]
    signer: x509.Certificate  # the CA certificate whose key signed it


def parse_crl(der: bytes, ca: TrustedCa, extra_signers: Sequence[x509.Certificate] = (), *,
              other_ids: Sequence[str] = ()) -> ParsedCrl:
    """Parse a CRL (DER or PEM) and check it was signed by one of the CA's certificates
    (root or intermediate), or one of ``extra_signers`` (an intermediate validated in the
    certificate's path), whose name is the CRL issuer; SM2 signatures with the CA profile's
    signer ID (``other_ids`` are only tried to name a wrong one). Raises ``CrlError``."""
    try:
        crl = x509.load_pem_x509_crl(der) if der.lstrip().startswith(b"-----") else x509.load_der_x509_crl(der)
    except ValueError as exc:
        raise CrlError(f"not a CRL: {exc}") from None
    signer = None
    failure: SignatureCheckError | None = None
    for cert in (*extra_signers, *ca.intermediates, *ca.roots):
        if cert.subject != crl.issuer:
            continue
        try:
            verify_crl(crl, cert, signer_id=ca.profile.sm2_signer_id, other_ids=(DEFAULT_SIGNER_ID, *other_ids))
        except SignatureCheckError as exc:
            failure = failure or exc
            continue
        signer = cert
        break
    if signer is None:
        raise CrlError(f"the CRL issued by {crl.issuer.rfc4514_string()} is not signed by a certificate of CA "
                       f"{ca.ca_id}" + (f": {failure.detail}" if failure else ""),
                       failure.code if failure and failure.code == "sm2_signer_id" else "invalid_crl")
    # RFC 5280 §6.3.3 (f): the CRL signer must be allowed to sign CRLs.
    try:
        ku = signer.extensions.get_extension_for_class(x509.KeyUsage).value
        if not ku.crl_sign:
            raise CrlError("the CRL signer lacks the cRLSign key usage")
    except x509.ExtensionNotFound:
        pass
    # RFC 5280 §5.3: a CRL with an unrecognised critical extension must not be used for
    # certificates it may not cover (delta CRLs, partitioned CRLs); refuse them.
    for ext in crl.extensions:
        if ext.critical and not isinstance(ext.value, (x509.CRLNumber, x509.AuthorityKeyIdentifier)):
            raise CrlError(f"unsupported critical CRL extension {ext.oid.dotted_string}")
    try:
        number: int | None = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        number = None
    revoked = frozenset(entry.serial_number for entry in crl)
    return ParsedCrl(
        issuer=crl.issuer,
        this_update=crl.last_update_utc,
        next_update=crl.next_update_utc,
        crl_number=number,
        sha256=hashlib.sha256(der).hexdigest(),
        revoked=revoked,
        signer=signer,
    )


# ---------------------------------------------------------------------------- fetching


def fetch_crl(url: str, production: bool, *, max_bytes: int = MAX_CRL_BYTES,
              timeout: float = FETCH_TIMEOUT_SECONDS) -> bytes:
    """Fetch a CRL from a configured URL (http/https only; in production never a private,
    loopback or link-local address). Returns the raw bytes; the caller verifies them with
    ``parse_crl``. Raises ``FetchError``."""
    # Policy: no redirects - a CRL location is what the operator configured.
    return http_fetch(url, production=production, max_bytes=max_bytes, timeout=timeout)


Fetcher = Callable[..., bytes]


# ----------------------------------------------------------------------------- checker


@dataclass
class _CacheEntry:
    der: bytes
    parsed: ParsedCrl


@dataclass
class _Fetched:
    der: bytes
    fetched_at: datetime


@dataclass
class _OcspEntry:
    result: RevocationResult
    until: datetime


class RevocationChecker:
    """Answers "is this certificate revoked?" for certificates issued under a TrustedCa.

    CRLs come from ``ca.crl_der`` (uploaded or fetched by the registry); when that is
    missing or stale and the CA has CRL URLs, the checker fetches one itself (kept in
    process, refetched after ``REFETCH_SECONDS`` or its nextUpdate). Parsed CRLs are
    cached by (ca_id, sha256 of the DER), with a fast path on the identity of the bytes
    object so the hot path does not even hash the CRL. OCSP is asked when configured and
    the CRL cannot answer. Thread-safe."""

    def __init__(self, clock: Clock, *, fetcher: Fetcher | None = None, allow_fetch: bool = True) -> None:
        self._clock = clock
        self._fetcher: Fetcher = fetcher or http_fetch
        self._allow_fetch = allow_fetch
        self._lock = threading.Lock()
        self._by_identity: dict[tuple[int, int], _CacheEntry] = {}
        self._by_digest: dict[tuple[int, str], ParsedCrl] = {}
        self._fetched: dict[int, _Fetched] = {}
        self._ocsp: dict[tuple[int, int], _OcspEntry] = {}
        self.parse_count = 0  # how many CRLs were parsed (a cache miss); for tests and the benchmark

    # -- CRL cache
    def parsed(self, ca: TrustedCa, der: bytes, issuer: x509.Certificate | None = None) -> ParsedCrl:
        """The parsed form of a CRL for a CA, from the cache when possible. Raises
        ``CrlError``."""
        # Fast path: the very bytes object seen before (the registry's cached TrustedCa
        # keeps it), so the hot path neither parses nor hashes a large CRL. The entry holds
        # a reference to ``der``, so its id cannot be reused while the entry exists.
        with self._lock:
            entry = self._by_identity.get((ca.ca_id, id(der)))
            if entry is not None and entry.der is der:
                return entry.parsed
        digest = hashlib.sha256(der).hexdigest()
        with self._lock:
            cached = self._by_digest.get((ca.ca_id, digest))
        if cached is None:
            cached = parse_crl(der, ca, (issuer,) if issuer is not None else ())
            with self._lock:
                self.parse_count += 1
                self._by_digest[(ca.ca_id, digest)] = cached
                # Keep at most a few CRLs per CA (uploaded, fetched): drop the oldest.
                mine = [k for k in self._by_digest if k[0] == ca.ca_id]
                for key in mine[:-_PER_CA]:
                    del self._by_digest[key]
        with self._lock:
            ids = [k for k in self._by_identity if k[0] == ca.ca_id]
            for old in ids[: max(0, len(ids) - _PER_CA + 1)]:
                del self._by_identity[old]
            self._by_identity[(ca.ca_id, id(der))] = _CacheEntry(der, cached)
        return cached

    def _usable(self, crl: ParsedCrl, now: datetime) -> str | None:
        # RFC 5280 §6.3.3 (a): a CRL past its nextUpdate is not current; one issued in the
        # future is not yet usable.
        if crl.this_update > now + OCSP_SKEW:
            return f"CRL thisUpdate {crl.this_update.isoformat()} is in the future"
        if crl.next_update is not None and crl.next_update < now:
            return f"CRL nextUpdate {crl.next_update.isoformat()} has passed"
        return None

    def _fetch_for(self, ca: TrustedCa, issuer: x509.Certificate, production: bool,
                   now: datetime) -> tuple[bytes | None, str]:
        if not self._allow_fetch or not ca.crl_urls:
            return None, "no CRL URL"
        with self._lock:
            prior = self._fetched.get(ca.ca_id)
        if prior is not None and (now - prior.fetched_at).total_seconds() < REFETCH_SECONDS:
            try:
                crl = self.parsed(ca, prior.der, issuer)
                if self._usable(crl, now) is None:
                    return prior.der, "cached fetch"
            except CrlError:
                pass
        errors = []
        for url in ca.crl_urls:
            try:
                der = self._fetcher(url, production=production, max_bytes=MAX_CRL_BYTES)
                crl = self.parsed(ca, der, issuer)
            except (FetchError, CrlError) as exc:
                errors.append(str(exc))
                continue
            with self._lock:
                self._fetched[ca.ca_id] = _Fetched(der, now)
            return der, f"fetched {url}"
        return None, "; ".join(errors) or "no CRL URL"

    def refresh(self, ca: TrustedCa, *, production: bool) -> tuple[bytes, ParsedCrl]:
        """Fetch the CA's CRL now from its configured URLs (for the registry's scheduled
        refresh, which stores it). Raises ``FetchError`` when no URL gave a valid CRL."""
        errors = []
        for url in ca.crl_urls:
            try:
                der = self._fetcher(url, production=production, max_bytes=MAX_CRL_BYTES)
                return der, self.parsed(ca, der)
            except (FetchError, CrlError) as exc:
                errors.append(str(exc))
        raise FetchError("; ".join(errors) or f"CA {ca.ca_id} has no CRL URL")

    def _crl_status(self, cert: x509.Certificate, issuer: x509.Certificate, ca: TrustedCa,
                    production: bool, now: datetime) -> RevocationResult:
        notes = []
        candidates: list[bytes] = []
        if ca.crl_der is not None:
            candidates.append(ca.crl_der)
        for attempt in range(2):
            for der in candidates:
                try:
                    crl = self.parsed(ca, der, issuer)
                except CrlError as exc:
                    notes.append(str(exc))
                    continue
                # RFC 5280 §6.3.3 (b)-(f): the CRL must be issued by the certificate's
                # issuer (same name, signed with the issuer's key).
                if crl.issuer != cert.issuer or not same_key(crl.signer, issuer):
                    notes.append(f"CRL of {crl.issuer.rfc4514_string()} does not cover this issuer")
                    continue
                stale = self._usable(crl, now)
                if stale:
                    notes.append(stale)
                    continue
                if cert.serial_number in crl.revoked:
                    return RevocationResult(RevocationStatus.REVOKED, "crl",
                                            f"serial {cert.serial_number:x} is on CRL {crl.crl_number}")
                return RevocationResult(RevocationStatus.GOOD, "crl", f"not on CRL {crl.crl_number}")
            if attempt == 0:
                der_fetched, note = self._fetch_for(ca, issuer, production, now)
                notes.append(note)
                if der_fetched is None:
                    break
                candidates = [der_fetched]
        return RevocationResult(RevocationStatus.UNKNOWN, "crl", "; ".join(notes) or "no CRL")

    # -- OCSP (RFC 6960)
    def _ocsp_status(self, url: str, cert: x509.Certificate, issuer: x509.Certificate, ca: TrustedCa,
                     production: bool, now: datetime) -> RevocationResult:
        key = (ca.ca_id, cert.serial_number)
        with self._lock:
            cached = self._ocsp.get(key)
        if cached is not None and cached.until >= now:
            return cached.result
        # RFC 5019 §2.1.1: CertID hashes are SHA-1, the one algorithm every responder accepts
        # (an identifier, not a signature).
        request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()  # noqa: S303
        try:
            raw = self._fetcher(url, production=production, body=request.public_bytes(serialization.Encoding.DER),
                                content_type="application/ocsp-request", max_bytes=MAX_OCSP_BYTES)
        except FetchError as exc:
            return RevocationResult(RevocationStatus.UNKNOWN, "ocsp", str(exc))
        result, until = self._read_ocsp(raw, cert, issuer, now, ca.profile.sm2_signer_id)
        if until is not None:
            with self._lock:
                self._ocsp[key] = _OcspEntry(result, until)
        return result

    def _read_ocsp(self, raw: bytes, cert: x509.Certificate, issuer: x509.Certificate,
                   now: datetime, signer_id: str = DEFAULT_SIGNER_ID) -> tuple[RevocationResult, datetime | None]:
        def unknown(detail: str) -> tuple[RevocationResult, None]:
            return RevocationResult(RevocationStatus.UNKNOWN, "ocsp", detail), None

        try:
            resp = ocsp.load_der_ocsp_response(raw)
        except ValueError as exc:
            return unknown(f"bad OCSP response: {exc}")
        if resp.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            return unknown(f"OCSP status {resp.response_status.name}")
        # RFC 6960 §4.2.2.2: the responder is the issuer itself, or a certificate issued
        # directly by it carrying id-kp-OCSPSigning.
        responder = None
        for candidate in (issuer, *resp.certificates):
            if candidate is not issuer:
                try:
                    verify_certificate(candidate, issuer, signer_id=signer_id)
                    eku = candidate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
                except (SignatureCheckError, ValueError, x509.ExtensionNotFound):
                    continue
                if x509.ExtendedKeyUsageOID.OCSP_SIGNING not in eku:
                    continue
                if not (candidate.not_valid_before_utc <= now <= candidate.not_valid_after_utc):
                    continue
            if resp.responder_name is not None and resp.responder_name != candidate.subject:
                continue
            # RFC 6960 §4.2.1: KeyHash is the SHA-1 of the responder's subjectPublicKey
            # BIT STRING, which is what SubjectKeyIdentifier.from_public_key computes.
            if resp.responder_key_hash is not None:
                try:
                    key_hash = key_hash_sha1(candidate)
                except DerError:
                    continue
                if resp.responder_key_hash != key_hash:
                    continue
            responder = candidate
            break
        if responder is None:
            return unknown("no acceptable OCSP responder certificate")
        try:
            verify_ocsp(resp, responder, signer_id=signer_id, other_ids=(DEFAULT_SIGNER_ID,))
        except SignatureCheckError as exc:
            return unknown(f"OCSP response signature is not valid: {exc.detail}")
        for single in resp.responses:
            if single.serial_number != cert.serial_number:
                continue
            if single.this_update_utc > now + OCSP_SKEW:
                return unknown("OCSP response thisUpdate is in the future")
            if single.next_update_utc is not None and single.next_update_utc < now - OCSP_SKEW:
                return unknown("OCSP response is stale")
            until = single.next_update_utc or now
            if single.certificate_status == ocsp.OCSPCertStatus.REVOKED:
                return RevocationResult(RevocationStatus.REVOKED, "ocsp", "OCSP: revoked"), until
            if single.certificate_status == ocsp.OCSPCertStatus.GOOD:
                return RevocationResult(RevocationStatus.GOOD, "ocsp", "OCSP: good"), until
            return unknown("OCSP: unknown")
        return unknown("OCSP response does not cover the certificate")

    # -- entry point
    def check(self, cert: x509.Certificate, issuer: x509.Certificate, ca: TrustedCa, *,
              production: bool, use_ocsp: bool = True) -> RevocationResult:
        """The revocation status of ``cert`` (issued by ``issuer``, under ``ca``): the CRL
        first (local, O(1)), then OCSP when configured and the CRL could not answer.
        Never raises for a bad CRL or responder: that is ``UNKNOWN`` with a detail."""
        now = self._clock.now()
        crl_result = self._crl_status(cert, issuer, ca, production, now)
        if crl_result.status != RevocationStatus.UNKNOWN or ca.ocsp_url is None or not use_ocsp:
            return crl_result
        ocsp_result = self._ocsp_status(ca.ocsp_url, cert, issuer, ca, production, now)
        if ocsp_result.status != RevocationStatus.UNKNOWN:
            return ocsp_result
        return RevocationResult(RevocationStatus.UNKNOWN, "none", f"{crl_result.detail}; {ocsp_result.detail}")

