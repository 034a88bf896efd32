"""Relying-party registration and the read-only client view the protocol engine uses.

Secrets are random (256 bits) and stored as keyed hashes; a secret is shown once, at
creation or rotation. ``RegisteredClient`` is an immutable snapshot that implements
Authlib's ``ClientMixin``; snapshots are cached per process for a few seconds so the
token endpoint does not read the database for every request (DESIGN.md §7).
"""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, urlsplit

from authlib.oauth2.rfc6749 import ClientMixin, list_to_scope, scope_to_list
from joserfc.jwk import KeySet
from sqlalchemy import select
from sqlalchemy.orm import Session

from common.clock import Clock
from common.crypto import KeyedHasher, random_token
from common.http import FetchError, address_refused, http_fetch, resolve
from common.versions import ChangeWatch, VersionedCache

from .errors import ClientNotFoundError, InvalidClientMetadataError
from .models import Client
from .protocol import ADMIN_SCOPE, AUTH_METHODS, GRANT_TYPES, PUBLIC_METHOD, SECRET_METHODS, SUPPORTED_SCOPES

__all__ = ["ADMIN_SCOPE", "AUTH_METHODS", "GRANT_TYPES", "SUPPORTED_SCOPES"]  # re-exported for older importers
from .subjects import SectorError, sector_for

# "admin": the administration API (issue 6); only administrators' tokens carrying it are accepted there,
# and only first-party clients may be registered for it or obtain it (issue 17).
_LOOPBACK = {"localhost", "127.0.0.1", "[::1]", "::1"}
# OIDC Registration §5: the sector identifier document is a JSON array of redirect URIs.
# Policy: small and quick - it is fetched while an administrator waits.
SECTOR_DOCUMENT_MAX_BYTES = 64 * 1024
SECTOR_FETCH_TIMEOUT_SECONDS = 5.0
# common.http.http_fetch: (url, *, production, accept, max_bytes, timeout) -> bytes.
Fetcher = Callable[..., bytes]
# What ``ClientService.update`` may change (the client_id and the secret never: the
# secret only through ``rotate_secret``).
UPDATABLE_FIELDS = frozenset({
    "name", "redirect_uris", "post_logout_redirect_uris", "backchannel_logout_uri", "frontchannel_logout_uri",
    "grant_types", "scopes", "token_endpoint_auth_method", "subject_type", "sector_identifier_uri", "jwks",
    "claim_policy", "sensitive_claims_allowed", "first_party",
})


@dataclass(frozen=True)
class RegisteredClient(ClientMixin):
    client_id: str
    name: str
    # Kept out of repr: Authlib logs the client object at DEBUG (issue 5 log scan).
    secret_hash: str | None = field(repr=False)
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]
    backchannel_logout_uri: str | None
    frontchannel_logout_uri: str | None
    grant_types: tuple[str, ...]
    scopes: tuple[str, ...]
    token_endpoint_auth_method: str
    subject_type: str
    sector_identifier: str
    jwks: dict[str, Any] | None
    id_token_signed_response_alg: str | None
    hasher: KeyedHasher = field(repr=False, compare=False)
    claim_policy: dict[str, Any] = field(default_factory=dict, compare=False)
    sensitive_claims_allowed: bool = False
    first_party: bool = False

    @classmethod
    def from_row(cls, row: Client, hasher: KeyedHasher) -> RegisteredClient:
        return cls(
            client_id=row.client_id,
            name=row.name,
            secret_hash=row.secret_hash,
            redirect_uris=tuple(row.redirect_uris or ()),
            post_logout_redirect_uris=tuple(row.post_logout_redirect_uris or ()),
            backchannel_logout_uri=row.backchannel_logout_uri,
            frontchannel_logout_uri=row.frontchannel_logout_uri,
            grant_types=tuple(row.grant_types or ()),
            scopes=tuple(row.scopes or ()),
            token_endpoint_auth_method=row.token_endpoint_auth_method,
            subject_type=row.subject_type,
            sector_identifier=row.sector_identifier,
            jwks=row.jwks,
            id_token_signed_response_alg=row.id_token_signed_response_alg,
            hasher=hasher,
            claim_policy=dict(row.claim_policy or {}),
            sensitive_claims_allowed=bool(row.sensitive_claims_allowed),
            first_party=bool(row.first_party),
        )

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"  # noqa: S105 - a method name

    # -- Authlib ClientMixin ---------------------------------------------------------

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        # RFC 9700 §2.1 / OAuth 2.1: the redirect_uri is always required and compared
        # exactly, so there is no default to fall back to.
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return ""
        allowed = set(self.scopes)
        if not self.first_party:
            # Issue 17: whatever a row says, the admin scope is for first-party clients only
            # (a registration from before the rule cannot grant it).
            allowed.discard(ADMIN_SCOPE)
        return list_to_scope([s for s in scope_to_list(scope) if s in allowed])

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # RFC 9700 §2.1 / §4.1.3: exact string comparison, no pattern, no normalisation.
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        if not self.secret_hash:
            return False
        return self.hasher.verify("client-secret", client_secret, self.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        # A client authenticates only with the one method it was registered with
        # (OIDC Registration §2 token_endpoint_auth_method), at every endpoint.
        return method == self.token_endpoint_auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types

    def get_jwks(self) -> dict[str, Any] | None:
        return self.jwks

    def allowed_claims(self, requested: set[str]) -> set[str]:
        """Issue 5: what may be released to this client of what its scopes request. With
        a policy, only the claims the policy lists; requests beyond it are reduced
        silently (never an error that would leak the policy). Sensitive claims (PIPL
        Art. 28) only with the administrator's flag and listed in the policy."""
        from .catalogue import sensitive

        if not self.claim_policy:
            return requested - sensitive(requested)
        out = {n for n in requested if n == "sub" or n in self.claim_policy}
        return out if self.sensitive_claims_allowed else out - sensitive(out)

    def purpose_of(self, names: set[str]) -> str | None:
        purposes = sorted({str(self.claim_policy[n]["purpose"]) for n in names if n in self.claim_policy})
        return "; ".join(purposes) or None

    def basis_of(self, names: set[str]) -> str:
        bases = {str(self.claim_policy[n].get("basis", "consent")) for n in names if n in self.claim_policy}
        return "statutory" if bases == {"statutory"} else "consent"


def validate_redirect_uri(uri: str, *, production: bool) -> None:
    """RFC 6749 §3.1.2: absolute, no fragment. RFC 9700 §4.1.1 / RFC 8252 §7.3: https, or
    http on loopback (native apps and development)."""
    parts = _parts(uri, "redirect URI")
    host = (parts.hostname or "").lower()
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and host in _LOOPBACK:
        return
    if parts.scheme == "http" and not production:
        return
    raise InvalidClientMetadataError(
        f"redirect URI {uri!r} must use https",
        public_message="A redirect URI must use https (http only on loopback addresses).",
    )


def _parts(uri: str, what: str) -> SplitResult:
    """``urlsplit`` of an absolute URI without a fragment (RFC 3986 §4.3), or
    ``InvalidClientMetadataError`` naming ``what``."""
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - parsing the port raises for a malformed one
    except ValueError:
        raise InvalidClientMetadataError(f"unparsable URI {uri!r}", public_message="A URI is malformed.") from None
    if not parts.scheme or not parts.hostname or parts.fragment or "#" in uri:
        raise InvalidClientMetadataError(f"{what} {uri!r} is not absolute or has a fragment",
                                         public_message=f"The {what} must be an absolute URI without a fragment.")
    return parts


def validate_sector_identifier_uri(uri: str, *, production: bool) -> None:
    """OIDC Registration §2 sector_identifier_uri: https. Outside production also http on
    loopback, so a test or a lab can serve the document itself."""
    parts = _parts(uri, "sector identifier URI")
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and not production and (parts.hostname or "").lower() in _LOOPBACK:
        return
    raise InvalidClientMetadataError(f"sector_identifier_uri {uri!r} is not https",
                                     public_message="The sector identifier URI must use https.")


def _notification_uri(uri: str, what: str, *, production: bool) -> SplitResult | None:
    """The rules both logout URIs share: absolute without a fragment; outside production
    as a redirect URI (None: nothing more to check), in production https (its parts
    returned for further checks). Raises ``InvalidClientMetadataError`` naming ``what``."""
    parts = _parts(uri, what)
    if not production:
        validate_redirect_uri(uri, production=False)
        return None
    if parts.scheme != "https":
        raise InvalidClientMetadataError(f"{what} {uri!r} is not https", public_message=f"The {what} must use https.")
    return parts


def validate_backchannel_logout_uri(uri: str, *, production: bool) -> None:
    """Back-Channel Logout §2.2 backchannel_logout_uri: absolute, no fragment; outside
    production as a redirect URI (http allowed: tests and local relying parties).

    Security (SSRF): the provider POSTs to this URI from inside its own network, so in
    production it must use https and name a public host: no IP literal in a private,
    loopback or link-local range, and a name that resolves must resolve to public
    addresses only. Delivery checks the address again (``idp.logout``): DNS can change."""
    parts = _notification_uri(uri, "back-channel logout URI", production=production)
    if parts is None:
        return
    try:
        addresses = resolve(parts.hostname or "", parts.port or 443)
    except FetchError:
        # Policy: a portal not yet in DNS may register; an unresolvable name reaches nothing.
        return
    if any(address_refused(address) for address in addresses):
        raise InvalidClientMetadataError(
            f"backchannel_logout_uri {uri!r} resolves to a non-public address",
            public_message="The back-channel logout URI must point to a public address.",
        )


def validate_frontchannel_logout_uri(uri: str, *, production: bool) -> None:
    """Front-Channel Logout §2 frontchannel_logout_uri: absolute, no fragment, loaded in
    the citizen's browser (no server-side request). Policy: https in production, as the
    page embedding it is (no mixed content, the ``sid`` never in clear)."""
    _notification_uri(uri, "front-channel logout URI", production=production)


def parse_sector_document(raw: bytes) -> list[str]:
    """OIDC Registration §5: the document is a JSON array of redirect URI strings. Raises
    ``InvalidClientMetadataError``."""
    try:
        listed = json.loads(raw)
    except (ValueError, RecursionError):
        listed = None
    if not isinstance(listed, list) or not all(isinstance(uri, str) for uri in listed):
        raise InvalidClientMetadataError(
            "sector identifier document is not a JSON array of strings",
            public_message="The sector identifier URI must hold a JSON array of redirect URIs.",
        )
    return listed


def validate_public_jwks(jwks: dict[str, Any]) -> None:
    """RFC 7517 §5: a JWK set the token endpoint can load later (a malformed one would
    fail every client authentication), holding public keys only: a private part would
    mean the client's key was disclosed to us."""
    try:
        keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - any parse failure means invalid metadata
        raise InvalidClientMetadataError(f"jwks: {type(exc).__name__}", public_message="The jwks is not a valid JWK set.") from None
    if any(key.is_private for key in keys.keys):
        raise InvalidClientMetadataError("private jwk", public_message="The jwks must hold public keys only.")


_ID_ALPHABET = string.ascii_letters + string.digits


def new_client_id() -> str:
    """24 random letters and digits (~143 bits). No '-' or '_': an identifier starting
    with '-' would be read as an option by command lines (found by a flaky CLI test)."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(24))


def validate_claim_policy(
    policy: dict[str, dict[str, Any]], scopes: list[str], *, sensitive_allowed: bool = False
) -> dict[str, dict[str, Any]]:
    """Issue 5: each claim a client may receive, with a purpose (shown to the citizen), a
    legal basis (PIPL Art. 13: consent, or a statutory duty) and whether the portal's
    service cannot work without it (``required``: the citizen cannot untick it, only
    refuse the whole request). Claims must be carried by one of the client's scopes;
    sensitive claims need the administrator's sensitive-claims flag (PIPL Art. 28)."""
    from .catalogue import CATALOGUE, Sensitivity

    out: dict[str, dict[str, Any]] = {}
    for name, spec in policy.items():
        claim = CATALOGUE.get(name)
        if claim is None:
            raise InvalidClientMetadataError(name, public_message=f"Unknown claim: {name}.")
        if claim.sensitivity is Sensitivity.SENSITIVE and not sensitive_allowed:
            raise InvalidClientMetadataError(
                name, public_message=f"The sensitive claim {name} needs the sensitive-claims flag set by an administrator."
            )
        if not set(claim.scopes) & set(scopes):
            raise InvalidClientMetadataError(
                name, public_message=f"The claim {name} needs one of the scopes {', '.join(claim.scopes)}."
            )
        purpose = str(spec.get("purpose", "")).strip()
        basis = str(spec.get("basis", "consent"))
        if not 1 <= len(purpose) <= 200:
            raise InvalidClientMetadataError(name, public_message=f"The claim {name} needs a purpose (1-200 characters).")
        if basis not in ("consent", "statutory"):
            raise InvalidClientMetadataError(name, public_message="A legal basis is 'consent' or 'statutory'.")
        entry: dict[str, Any] = {"purpose": purpose, "basis": basis}
        if spec.get("required"):
            if claim.sensitivity is Sensitivity.SENSITIVE:
                # Sensitive claims need their own confirmation every time: never implied.
                raise InvalidClientMetadataError(name, public_message=f"The sensitive claim {name} cannot be required.")
            entry["required"] = True
        out[name] = entry
    return out


class ClientService:
    def __init__(self, session: Session, *, clock: Clock, hasher: KeyedHasher, production: bool,
                 fetch: Fetcher = http_fetch, grant_types: tuple[str, ...] = GRANT_TYPES) -> None:
        self._session = session
        # The grant types switched on (idp.protocol.Features).
        self._grant_types = grant_types
        self._clock = clock
        self._hasher = hasher
        self._production = production
        # Fetches sector identifier documents (common.http: the SSRF-guarded client).
        self._fetch = fetch

    def create(
        self,
        *,
        name: str,
        redirect_uris: list[str],
        post_logout_redirect_uris: list[str] | None = None,
        backchannel_logout_uri: str | None = None,
        frontchannel_logout_uri: str | None = None,
        grant_types: list[str] | None = None,
        scopes: list[str] | None = None,
        token_endpoint_auth_method: str | None = None,
        subject_type: str = "pairwise",
        sector_identifier_uri: str | None = None,
        public: bool = False,
        jwks: dict[str, Any] | None = None,
        claim_policy: dict[str, dict[str, Any]] | None = None,
        sensitive_claims_allowed: bool = False,
        first_party: bool = False,
    ) -> tuple[Client, str | None]:
        """Register a client; returns the row and the plaintext secret (None for public
        and private_key_jwt clients). Raises ``InvalidClientMetadataError``. Flushes."""
        values = self._validated(
            name=name, redirect_uris=redirect_uris, post_logout_redirect_uris=post_logout_redirect_uris,
            backchannel_logout_uri=backchannel_logout_uri, frontchannel_logout_uri=frontchannel_logout_uri,
            grant_types=grant_types, scopes=scopes, token_endpoint_auth_method=token_endpoint_auth_method,
            subject_type=subject_type, sector_identifier_uri=sector_identifier_uri, public=public, jwks=jwks,
            claim_policy=claim_policy, sensitive_claims_allowed=sensitive_claims_allowed, first_party=first_party,
            sector=None,
        )
        secret, secret_hash = self._new_secret(values["token_endpoint_auth_method"])
        now = self._clock.now()
        row = Client(
            client_id=new_client_id(),
            secret_hash=secret_hash,
            id_token_signed_response_alg=None,
            enabled=True,
            created_at=now,
            updated_at=now,
            **values,
        )
        self._session.add(row)
        self._session.flush()
        return row, secret

    def _new_secret(self, method: str) -> tuple[str | None, str | None]:
        """A new secret and its keyed hash for the secret-based methods, else (None, None)."""
        if method not in SECRET_METHODS:
            return None, None
        secret = random_token(32)
        return secret, self._hasher.digest("client-secret", secret)

    def _validated(
        self,
        *,
        name: str,
        redirect_uris: list[str],
        post_logout_redirect_uris: list[str] | None,
        backchannel_logout_uri: str | None,
        frontchannel_logout_uri: str | None,
        grant_types: list[str] | None,
        scopes: list[str] | None,
        token_endpoint_auth_method: str | None,
        subject_type: str,
        sector_identifier_uri: str | None,
        public: bool,
        jwks: dict[str, Any] | None,
        claim_policy: dict[str, dict[str, Any]] | None,
        sensitive_claims_allowed: bool,
        first_party: bool,
        sector: str | None,
    ) -> dict[str, Any]:
        """The column values of a valid registration (creation and update share every
        rule). ``sector`` is the registered pairwise sector of an existing client: it
        never changes, since that would change every citizen's ``sub`` at the portal
        (OIDC Core §8.1). Raises ``InvalidClientMetadataError``."""
        name = name.strip()
        if not 1 <= len(name) <= 200:
            raise InvalidClientMetadataError("name length", public_message="A client name has 1-200 characters.")
        grant_types = list(dict.fromkeys(grant_types or ["authorization_code", "refresh_token"]))
        for g in grant_types:
            if g not in self._grant_types:
                raise InvalidClientMetadataError(g, public_message=f"Unsupported grant type: {g}.")
        method = token_endpoint_auth_method or (PUBLIC_METHOD if public else SECRET_METHODS[0])
        if method not in AUTH_METHODS:
            raise InvalidClientMetadataError(method, public_message=f"Unsupported authentication method: {method}.")
        if public and method != "none":
            raise InvalidClientMetadataError(method, public_message="A public client authenticates with 'none'.")
        if method == "none" and "client_credentials" in grant_types:
            raise InvalidClientMetadataError(
                "public cc", public_message="A public client cannot use the client_credentials grant."
            )
        if method == "private_key_jwt" and not (jwks and jwks.get("keys")):
            raise InvalidClientMetadataError("jwks", public_message="private_key_jwt needs the client's public keys (jwks).")
        if jwks is not None:
            validate_public_jwks(jwks)
        if "authorization_code" in grant_types and not redirect_uris:
            raise InvalidClientMetadataError("no redirect", public_message="At least one redirect URI is required.")
        if "refresh_token" in grant_types and "authorization_code" not in grant_types:
            raise InvalidClientMetadataError(
                "refresh alone", public_message="refresh_token is only issued with authorization_code."
            )
        uris = list(dict.fromkeys(redirect_uris))
        for uri in uris:
            validate_redirect_uri(uri, production=self._production)
        logout_uris = list(dict.fromkeys(post_logout_redirect_uris or []))
        for uri in logout_uris:
            validate_redirect_uri(uri, production=self._production)
        if backchannel_logout_uri:
            validate_backchannel_logout_uri(backchannel_logout_uri, production=self._production)
        if frontchannel_logout_uri:
            validate_frontchannel_logout_uri(frontchannel_logout_uri, production=self._production)
        if sector_identifier_uri:
            validate_sector_identifier_uri(sector_identifier_uri, production=self._production)
        scopes = list(dict.fromkeys(scopes or ["openid", "profile"]))
        for s in scopes:
            if s not in SUPPORTED_SCOPES:
                raise InvalidClientMetadataError(s, public_message=f"Unsupported scope: {s}.")
        if ADMIN_SCOPE in scopes and not first_party:
            # Issue 17: an admin-scoped token is an administrator's power; only a first-party
            # tool (a flag only a superadmin sets) may ask for it.
            raise InvalidClientMetadataError(
                "admin scope", public_message="The admin scope is only for first-party administration clients."
            )
        policy = validate_claim_policy(claim_policy or {}, scopes, sensitive_allowed=sensitive_claims_allowed)
        if subject_type not in ("pairwise", "public"):
            raise InvalidClientMetadataError(subject_type, public_message="subject type is pairwise or public.")
        try:
            computed = sector_for(uris, sector_identifier_uri) if uris or sector_identifier_uri else ""
        except SectorError as exc:
            if not sector:
                raise InvalidClientMetadataError(
                    str(exc), public_message="Redirect URIs on several hosts need a sector identifier URI."
                ) from exc
            computed = sector
        if sector and sector_identifier_uri and computed != sector:
            raise InvalidClientMetadataError(
                "sector change", public_message="The sector cannot change: it would change every user's identifier."
            )
        if sector_identifier_uri:
            self._validate_sector_document(sector_identifier_uri, uris)
        return {
            "name": name,
            "redirect_uris": uris,
            "post_logout_redirect_uris": logout_uris,
            "backchannel_logout_uri": backchannel_logout_uri or None,
            "frontchannel_logout_uri": frontchannel_logout_uri or None,
            "grant_types": grant_types,
            "scopes": scopes,
            "token_endpoint_auth_method": method,
            "subject_type": subject_type,
            "sector_identifier": sector or computed,
            "jwks": jwks,
            "claim_policy": policy or None,
            "sensitive_claims_allowed": sensitive_claims_allowed,
            "first_party": bool(first_party),
        }

    def _validate_sector_document(self, uri: str, redirect_uris: list[str]) -> None:
        """OIDC Core §8.1 / OIDC Registration §5: fetch the sector identifier document and
        require every redirect URI of the client in it (exact strings, as redirect URIs
        are compared). Without this check any client could name another portal's host as
        its sector and receive the same pairwise ``sub``. Raises
        ``InvalidClientMetadataError``."""
        try:
            raw = self._fetch(uri, production=self._production, accept="application/json",
                              max_bytes=SECTOR_DOCUMENT_MAX_BYTES, timeout=SECTOR_FETCH_TIMEOUT_SECONDS)
        except FetchError as exc:
            raise InvalidClientMetadataError(
                f"sector_identifier_uri: {exc}", public_message="The sector identifier URI could not be fetched."
            ) from None
        listed = set(parse_sector_document(raw))
        missing = [uri for uri in redirect_uris if uri not in listed]
        if missing:
            raise InvalidClientMetadataError(
                f"sector identifier document lacks {missing}",
                public_message="The sector identifier document does not list every redirect URI.",
            )

    @staticmethod
    def _validate_within_sector(row: Client, redirect_uris: list[str], sector_identifier_uri: str | None) -> None:
        """OIDC Core §8.1 on update: the sector never changes, so a redirect URI added on a
        host other than the sector's must be vouched for by the sector identifier document
        (fetched by ``_validated`` when given); otherwise moving a client's redirect URIs
        elsewhere would hand its citizens' pairwise ``sub`` to another site."""
        if sector_identifier_uri or not row.sector_identifier:
            return
        previous = set(row.redirect_uris or ())
        outside = [uri for uri in redirect_uris
                   if uri not in previous and (urlsplit(uri).hostname or "").lower() != row.sector_identifier]
        if outside:
            raise InvalidClientMetadataError(
                f"redirect URIs {outside} outside sector {row.sector_identifier}",
                public_message="A redirect URI on a host outside the client's sector needs the sector "
                "identifier URI, listing every redirect URI.",
            )

    @staticmethod
    def registration_of(row: Client) -> dict[str, Any]:
        """The registration metadata of a client as ``create``/``update`` take it (the
        sector as registered is ``row.sector_identifier``, not an input)."""
        return {
            "name": row.name,
            "redirect_uris": list(row.redirect_uris or ()),
            "post_logout_redirect_uris": list(row.post_logout_redirect_uris or ()),
            "backchannel_logout_uri": row.backchannel_logout_uri,
            "frontchannel_logout_uri": row.frontchannel_logout_uri,
            "grant_types": list(row.grant_types or ()),
            "scopes": list(row.scopes or ()),
            "token_endpoint_auth_method": row.token_endpoint_auth_method,
            "subject_type": row.subject_type,
            "jwks": row.jwks,
            "claim_policy": dict(row.claim_policy or {}),
            "sensitive_claims_allowed": bool(row.sensitive_claims_allowed),
            "first_party": bool(row.first_party),
        }

    def update(self, client_id: str, **changes: Any) -> tuple[Client, str | None]:
        """Change a registration: ``changes`` (names of ``UPDATABLE_FIELDS``) replace the
        current values and the whole registration is validated again, as at creation.
        A switch to a secret-based method returns a new secret (shown once); a switch
        away drops the stored one. Raises ``ClientNotFoundError``,
        ``InvalidClientMetadataError``. Flushes."""
        unknown = sorted(set(changes) - UPDATABLE_FIELDS)
        if unknown:
            raise InvalidClientMetadataError(str(unknown), public_message=f"Not a client field: {unknown[0]}.")
        row = self.get(client_id)
        current: dict[str, Any] = {**self.registration_of(row), "sector_identifier_uri": None}
        current.update(changes)
        public = current["token_endpoint_auth_method"] == "none"  # noqa: S105 - a method name
        values = self._validated(**current, public=public, sector=row.sector_identifier)
        self._validate_within_sector(row, values["redirect_uris"], current["sector_identifier_uri"])
        secret = None
        method = values["token_endpoint_auth_method"]
        if method not in SECRET_METHODS:
            row.secret_hash = None
        elif row.token_endpoint_auth_method not in SECRET_METHODS or row.secret_hash is None:
            secret, row.secret_hash = self._new_secret(method)
        for column, value in values.items():
            setattr(row, column, value)
        row.updated_at = self._clock.now()
        self._session.flush()
        return row, secret

    def set_enabled(self, client_id: str, enabled: bool) -> Client:
        """Disable or re-enable a client. A disabled client gets no snapshot, so the
        protocol engine treats it as unknown (no authorization, no tokens, no
        introspection). Raises ``ClientNotFoundError``. Flushes."""
        row = self.get(client_id)
        row.enabled = enabled
        row.updated_at = self._clock.now()
        self._session.flush()
        return row

    def find(self, client_id: str) -> Client | None:
        return self._session.scalars(select(Client).where(Client.client_id == client_id)).first()

    def get(self, client_id: str) -> Client:
        row = self.find(client_id)
        if row is None:
            raise ClientNotFoundError(client_id)
        return row

    def list(self) -> list[Client]:
        return list(self._session.scalars(select(Client).order_by(Client.id)))

    def delete(self, client_id: str) -> None:
        self._session.delete(self.get(client_id))
        self._session.flush()

    def rotate_secret(self, client_id: str) -> str:
        row = self.get(client_id)
        if row.token_endpoint_auth_method not in SECRET_METHODS:
            raise InvalidClientMetadataError("no secret", public_message="This client does not use a secret.")
        secret = random_token(32)
        row.secret_hash = self._hasher.digest("client-secret", secret)
        row.updated_at = self._clock.now()
        return secret

    def snapshot(self, client_id: str) -> RegisteredClient | None:
        row = self.find(client_id)
        if row is None or not row.enabled:
            return None
        return RegisteredClient.from_row(row, self._hasher)


CLIENT_VERSIONS = "client-ver"


class ClientCache(VersionedCache[str, "RegisteredClient | None"]):
    """Per-process cache of client snapshots (issue 12).

    Policy: a change to a client (new secret, removed redirect URI, disabled, deleted)
    changes its version in the shared store when its transaction commits, so every
    instance reads it again at its next request (``common.versions``); the instance that
    made the change also drops its entry at once (``invalidate``).
    """

    def __init__(self, max_age: float = 60.0, max_entries: int = 10000) -> None:
        super().__init__(CLIENT_VERSIONS, max_age=max_age, max_entries=max_entries)


def watch_clients(changes: ChangeWatch) -> None:
    changes.watch(Client, CLIENT_VERSIONS, lambda row: row.client_id)
