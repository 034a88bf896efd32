"""Tokens: authorization codes (store), JWT access tokens (RFC 9068), ID tokens
(OIDC Core §2), refresh tokens with rotation and family revocation (RFC 9700 §4.14),
and revocation state that userinfo and introspection honour (RFC 7009, RFC 7662).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from common.clock import Clock
from common.crypto import FieldCipher, KeyedHasher, b64url, random_token
from common.store import Store
from common.versions import VersionedCache, Versions

from .keys import KeyCache, KeyService
from .models import RefreshToken
from .oauth_errors import InvalidTokenError
from .settings import IdpSettings

_AID_CONTEXT = "access_token.aid"
# The JOSE typ of our ID tokens; access tokens are "at+jwt" (RFC 9068 §2.1), logout
# tokens "logout+jwt" (Back-Channel Logout §2.4).
ID_TOKEN_TYP = "JWT"  # noqa: S105 - a JOSE media type, not a secret


@dataclass
class AuthorizationCode:
    """What an authorization code stands for; kept in the store, consumed once."""

    client_id: str
    redirect_uri: str
    scope: str
    account_id: int
    subject_seed: str
    code_challenge: str
    code_challenge_method: str
    auth_time: int
    acr: str | None
    amr: list[str]
    sid: str
    nonce: str | None = None
    claims_request: dict[str, Any] | None = None
    # Issue 5: the claim names this grant releases (requested ∩ policy ∩ consent).
    claims: list[str] | None = None
    # Session context carried into tokens (certificate issuer, acting agent).
    context: dict[str, Any] | None = None
    # Checked against the injected clock as well as by the store's TTL.
    expires_at: int = 0
    # Set when the code is consumed; used by Authlib's code-challenge hook and ours.
    code_hash: str = ""

    # Authlib AuthorizationCodeMixin
    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> str | None:
        return self.acr

    def get_amr(self) -> list[str]:
        return self.amr


@dataclass(frozen=True)
class AccessTokenClaims:
    jti: str
    client_id: str
    sub: str
    scope: str
    exp: int
    iat: int
    account_id: int | None
    grant_id: str | None
    raw: dict[str, Any] = field(repr=False)
    # Issue 12: the cache versions fetched with the revocation check (common.versions):
    # store key -> value, for the token's client and account.
    versions: dict[str, bytes | None] = field(default_factory=dict, repr=False)

    def seen(self, keys: tuple[str, str]) -> Versions | None:
        """The versions of ``keys`` fetched with this token, or None if they were not."""
        if keys[0] in self.versions and keys[1] in self.versions:
            return self.versions[keys[0]], self.versions[keys[1]]
        return None


@dataclass(frozen=True)
class RefreshOutcome:
    row: RefreshToken | None
    reused: bool


def half_hash(value: str, alg: str) -> str:
    # OIDC Core §3.1.3.6 at_hash: left half of the hash matching the alg (SHA-256 for
    # ES256 and RS256), base64url.
    digest = hashlib.sha256(value.encode("ascii")).digest()
    return b64url(digest[: len(digest) // 2])


def _put_present(claims: dict[str, Any], **values: Any) -> None:
    """Add the claims that have a value; absent ones are omitted, never null."""
    claims.update({name: value for name, value in values.items() if value})


class TokenService:
    def __init__(
        self,
        session: Session,
        *,
        store: Store,
        clock: Clock,
        hasher: KeyedHasher,
        cipher: FieldCipher,
        keys: KeyService,
        key_cache: KeyCache,
        settings: IdpSettings,
        client_versions: VersionedCache[str, Any],
        account_versions: VersionedCache[int, Any],
    ) -> None:
        self._session = session
        self._client_versions = client_versions
        self._account_versions = account_versions
        self._store = store
        self._clock = clock
        self._hasher = hasher
        self._cipher = cipher
        self._keys = keys
        self._key_cache = key_cache
        self._s = settings

    # -- authorization codes ----------------------------------------------------------

    def _code_key(self, code: str) -> str:
        return self._hasher.digest("code", code)

    def issue_code(self, data: AuthorizationCode) -> str:
        """Store a new single-use code for ``code_ttl`` seconds (RFC 6749 §4.1.2: short
        lived, single use; DESIGN.md: ≤ 60 s). Only its keyed hash is a store key."""
        code = random_token(32)
        data.expires_at = self._clock.timestamp() + self._s.code_ttl
        self._store.set(f"code:{self._code_key(code)}", json.dumps(asdict(data)).encode(), self._s.code_ttl)
        return code

    def consume_code(self, code: str) -> AuthorizationCode | None:
        """Take a code out of the store; None when unknown, expired or already used."""
        key = self._code_key(code)
        raw = self._store.consume(f"code:{key}")
        if raw is None:
            return None
        data = AuthorizationCode(**json.loads(raw))
        if data.expires_at <= self._clock.timestamp():
            return None
        data.code_hash = key
        return data

    def record_code_redeemed(self, code_hash: str, *, grant_id: str, jti: str) -> None:
        """Tombstone of a redeemed code, so a replay can find and revoke what it issued
        (RFC 6749 §4.1.2, RFC 9700 §4.2.4)."""
        ttl = self._s.code_ttl + self._s.access_token_ttl + 600
        self._store.set(f"code-used:{code_hash}", json.dumps({"gid": grant_id, "jti": jti}).encode(), ttl)

    def revoke_replayed_code(self, code: str) -> bool:
        """Called when an unknown code is presented: if it had been redeemed, revoke the
        grant it started. Returns True when something was revoked."""
        raw = self._store.get(f"code-used:{self._code_key(code)}")
        if raw is None:
            return False
        info = json.loads(raw)
        self.revoke_grant(info["gid"])
        return True

    # -- access tokens ------------------------------------------------------------------

    def signing_alg_for(self, requested: str | None) -> str:
        return requested if requested in ("ES256", "RS256") else self._s.signing_alg

    def issue_access_token(
        self,
        *,
        client_id: str,
        sub: str,
        scope: str,
        account_id: int | None,
        grant_id: str | None,
        auth_time: int | None = None,
        acr: str | None = None,
        amr: list[str] | None = None,
        sid: str | None = None,
        claims_released: list[str] | None = None,
        context: dict[str, Any] | None = None,
    ) -> tuple[str, str, int]:
        """Sign an RFC 9068 access token; returns (token, jti, expires_in)."""
        key = self._key_cache.signing_key(self._keys, self._s.signing_alg)
        now = self._clock.timestamp()
        jti = random_token(16)
        # RFC 9068 §2.2: iss, exp, aud, sub, client_id, iat, jti required.
        claims: dict[str, Any] = {
            "iss": self._s.issuer,
            "sub": sub,
            "aud": client_id,
            "client_id": client_id,
            "iat": now,
            "exp": now + self._s.access_token_ttl,
            "jti": jti,
            "scope": scope,
        }
        if auth_time is not None:
            claims["auth_time"] = auth_time
        _put_present(claims, acr=acr, amr=amr, sid=sid)
        if grant_id:
            claims["gid"] = grant_id
        if claims_released:
            # Issue 5: the names (never values) userinfo may release for this token: the
            # grant's consented, allowed claims, fixed when the token is issued.
            claims["clm"] = claims_released
        if context:
            if "act" in context:
                # RFC 8693 §4.1: the party acting on behalf of the subject.
                claims["act"] = context["act"]
            if "cert_issuer" in context:
                claims["ctx"] = {"cert_issuer": context["cert_issuer"]}
        if account_id is not None:
            # Our own reference to the account: encrypted, so it reveals no database key
            # to the portal that holds the token.
            claims["aid"] = self._cipher.encrypt(str(account_id), _AID_CONTEXT)
        # RFC 9068 §2.1: typ "at+jwt" distinguishes access tokens from ID tokens.
        header = {"alg": key.alg, "kid": key.kid, "typ": "at+jwt"}
        token = jwt.encode(header, claims, key.key, algorithms=[key.alg])
        return token, jti, self._s.access_token_ttl

    def validate_access_token(self, token: str) -> AccessTokenClaims:
        """Verify signature, type, issuer, expiry and revocation; raise
        ``InvalidTokenError`` otherwise (RFC 9068 §4, RFC 6750 §3.1)."""
        try:
            parsed = jwt.decode(token, self._resolve_key, algorithms=["ES256", "RS256"])
        except (JoseError, ValueError, KeyError, TypeError) as exc:
            raise InvalidTokenError("undecodable") from exc
        header, claims = parsed.header, parsed.claims
        if header.get("typ", "").lower() not in ("at+jwt", "application/at+jwt"):
            raise InvalidTokenError("not an access token")
        now = self._clock.timestamp()
        if claims.get("iss") != self._s.issuer:
            raise InvalidTokenError("issuer")
        exp = claims.get("exp")
        if not isinstance(exp, int) or exp <= now:
            raise InvalidTokenError("expired")
        jti = claims.get("jti")
        if not isinstance(jti, str):
            raise InvalidTokenError("no jti")
        account_id = None
        if "aid" in claims:
            try:
                account_id = int(self._cipher.decrypt(claims["aid"], _AID_CONTEXT))
            except Exception as exc:  # noqa: BLE001 - any failure means a bad token
                raise InvalidTokenError("aid") from exc
        client_id = str(claims.get("client_id", ""))
        gid = claims.get("gid")
        sid = claims.get("sid")
        # One round trip (DESIGN.md §7 hot-path budget) for the revocation entries and,
        # issue 12, the versions of the client's and the account's cached rows, so the
        # caches are checked without a round trip of their own (common.versions).
        revocation = [f"revoked-jti:{jti}"] + ([f"revoked-grant:{gid}"] if gid else [])
        if isinstance(sid, str):
            revocation.append(f"revoked-sid:{sid}")
        version_keys = [*self._client_versions.keys(client_id)]
        if account_id is not None:
            version_keys += self._account_versions.keys(account_id)
        values = self._store.get_many(*revocation, *version_keys)
        versions = dict(zip(version_keys, values[len(revocation):], strict=True))
        values = values[:len(revocation)]
        if isinstance(sid, str) and values[-1] is not None:
            # The session ended (logout, credential change) at that time: what was issued in
            # it before is revoked; a later token (an offline_access refresh) is not.
            ended_at = int(values[-1])
            values = values[:-1]
            if int(claims.get("iat", 0)) <= ended_at:
                raise InvalidTokenError("session ended")
        if any(v is not None for v in values):
            raise InvalidTokenError("revoked")
        return AccessTokenClaims(
            jti=jti,
            client_id=client_id,
            sub=str(claims.get("sub", "")),
            scope=str(claims.get("scope", "")),
            exp=exp,
            iat=int(claims.get("iat", 0)),
            account_id=account_id,
            grant_id=gid,
            raw=claims,
            versions=versions,
        )

    def _resolve_key(self, obj: Any) -> Any:
        kid = obj.headers().get("kid")
        key = self._key_cache.verification_key(self._keys, kid) if kid else None
        if key is None:
            raise InvalidTokenError("unknown kid")
        return key

    def revoke_access_token(self, claims: AccessTokenClaims) -> None:
        ttl = max(1, claims.exp - self._clock.timestamp())
        self._store.set(f"revoked-jti:{claims.jti}", b"1", ttl)

    def revoke_grant(self, grant_id: str) -> None:
        """Revoke every token of one grant: the refresh-token family in the database and
        the access tokens (by grant id in the store, until the longest could expire)."""
        self._store.set(f"revoked-grant:{grant_id}", b"1", self._s.access_token_ttl + 60)
        now = self._clock.now()
        self._session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == grant_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    def revoke_session(self, account_id: int, sid: str, *, keep_offline: bool) -> int:
        """Revoke what one SSO session issued (OIDC Core §11, RFC 7009 §2.1): its access
        tokens (by ``sid`` in the store, until the longest could expire) and its refresh
        token families. ``keep_offline``: families with ``offline_access`` stay — they are
        meant to outlive the login (a citizen's logout); a credential change passes False.
        Returns how many families were revoked."""
        now = self._clock.timestamp()
        self._store.set(f"revoked-sid:{sid}", str(now).encode(), self._s.access_token_ttl + 60)
        # By account (indexed), then sid: an account has few refresh families.
        rows = self._session.execute(
            select(RefreshToken.family_id, RefreshToken.scope).where(
                RefreshToken.account_id == account_id, RefreshToken.sid == sid, RefreshToken.revoked_at.is_(None)
            )
        ).all()
        families = {f for f, scope in rows if not (keep_offline and "offline_access" in scope.split())}
        for family in families:
            self.revoke_grant(family)
        return len(families)

    def revoke_all_of_account(self, account_id: int) -> int:
        """Revoke every live refresh-token family of the account and their access tokens
        (a password change or a factor replaced: whatever was obtained before may have
        been an attacker's). Returns how many families."""
        families = set(self._session.scalars(
            select(RefreshToken.family_id).where(RefreshToken.account_id == account_id,
                                                 RefreshToken.revoked_at.is_(None))
        ))
        for family in families:
            self.revoke_grant(family)
        return len(families)

    def revoke_grants_of(self, account_id: int, client_id: str) -> int:
        """Revoke every live grant of one account at one client (consent withdrawn): the
        refresh-token families and their access tokens. Returns how many grants."""
        families = set(self._session.scalars(
            select(RefreshToken.family_id).where(
                RefreshToken.account_id == account_id,
                RefreshToken.client_id == client_id,
                RefreshToken.revoked_at.is_(None),
            )
        ))
        for family in families:
            self.revoke_grant(family)
        return len(families)

    # -- ID tokens ----------------------------------------------------------------------

    def issue_id_token(
        self,
        *,
        client_id: str,
        sub: str,
        auth_time: int,
        alg: str | None,
        nonce: str | None = None,
        acr: str | None = None,
        amr: list[str] | None = None,
        sid: str | None = None,
        access_token: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> str:
        """OIDC Core §2: iss, sub, aud, exp, iat, auth_time (the real authentication time,
        never "now" by default), nonce, acr, amr, sid, at_hash (§3.1.3.6)."""
        key = self._key_cache.signing_key(self._keys, self.signing_alg_for(alg))
        now = self._clock.timestamp()
        claims: dict[str, Any] = dict(extra or {})
        claims.update(
            {
                "iss": self._s.issuer,
                "sub": sub,
                "aud": client_id,
                "exp": now + self._s.id_token_ttl,
                "iat": now,
                "auth_time": auth_time,
            }
        )
        _put_present(claims, nonce=nonce, acr=acr, amr=amr, sid=sid)
        if access_token:
            claims["at_hash"] = half_hash(access_token, key.alg)
        header = {"alg": key.alg, "kid": key.kid, "typ": ID_TOKEN_TYP}
        return jwt.encode(header, claims, key.key, algorithms=[key.alg])

    def sign_jwt(self, header_extra: dict[str, Any], claims: dict[str, Any], alg: str | None = None) -> str:
        """Sign any token with the active key (logout tokens)."""
        key = self._key_cache.signing_key(self._keys, self.signing_alg_for(alg))
        header = {"alg": key.alg, "kid": key.kid, **header_extra}
        return jwt.encode(header, claims, key.key, algorithms=[key.alg])

    def decode_id_token(self, token: str, *, verify_exp: bool = False) -> dict[str, Any] | None:
        """The claims of an ID token this provider issued, expired or not unless
        ``verify_exp`` (an ``id_token_hint``, OIDC Core §3.1.2.1, may be expired:
        RP-Initiated Logout §2); None for anything else. Access tokens (``at+jwt``), logout tokens (``logout+jwt``) and
        audit checkpoints are signed with the same keys and name the client too, so the
        JOSE ``typ`` we put on ID tokens and the claims decide (RFC 8725 §3.11)."""
        verified = self._verify_own(token, verify_exp=verify_exp)
        if verified is None or verified[0].get("typ") != ID_TOKEN_TYP:
            return None
        claims = verified[1]
        # OIDC Core §2: what every ID token of ours carries; and nothing that only access
        # tokens (RFC 9068 §2.2) or logout tokens (Back-Channel Logout §2.4) carry.
        if not all(name in claims for name in ("sub", "aud", "iat", "exp", "auth_time")):
            return None
        if any(name in claims for name in ("events", "scope", "client_id", "gid", "aid")):
            return None
        return claims

    def _verify_own(self, token: str, *, verify_exp: bool) -> tuple[dict[str, Any], dict[str, Any]] | None:
        try:
            parsed = jwt.decode(token, self._resolve_key, algorithms=["ES256", "RS256"])
        except (JoseError, InvalidTokenError, ValueError, KeyError, TypeError):
            return None
        claims = dict(parsed.claims)
        if claims.get("iss") != self._s.issuer:
            return None
        if verify_exp and int(claims.get("exp", 0)) <= self._clock.timestamp():
            return None
        return dict(parsed.header), claims

    # -- refresh tokens -----------------------------------------------------------------

    def issue_refresh_token(
        self,
        *,
        family_id: str,
        client_id: str,
        account_id: int,
        scope: str,
        auth_time: int,
        acr: str | None,
        amr: list[str],
        sid: str | None,
        claims_request: dict[str, Any] | None,
        family_expires_at: Any = None,
        context: dict[str, Any] | None = None,
        claims: list[str] | None = None,
    ) -> str:
        now = self._clock.now()
        family_expiry = family_expires_at or now + timedelta(seconds=self._s.refresh_token_ttl)
        expiry = min(family_expiry, now + timedelta(seconds=self._s.refresh_token_idle_ttl))
        token = random_token(32)
        self._session.add(
            RefreshToken(
                token_hash=self._hasher.digest("refresh", token),
                family_id=family_id,
                client_id=client_id,
                account_id=account_id,
                scope=scope,
                auth_time=auth_time,
                acr=acr,
                amr=list(amr),
                sid=sid,
                claims_request=claims_request,
                claims=claims,
                context=context or None,
                issued_at=now,
                expires_at=expiry,
                family_expires_at=family_expiry,
            )
        )
        self._session.flush()
        return token

    def find_refresh_token(self, token: str, client_id: str) -> RefreshOutcome:
        """Look a refresh token up for rotation.

        A token already rotated away is a reuse: the whole family is revoked (RFC 9700
        §4.14.2) and ``reused`` is True. A token of another client, expired or revoked
        yields no row.
        """
        row = self._session.scalars(
            select(RefreshToken).where(RefreshToken.token_hash == self._hasher.digest("refresh", token))
        ).first()
        if row is None or row.client_id != client_id:
            return RefreshOutcome(None, False)
        if row.rotated_at is not None:
            self.revoke_grant(row.family_id)
            return RefreshOutcome(None, True)
        now = self._clock.now()
        if row.revoked_at is not None or row.expires_at <= now or row.family_expires_at <= now:
            return RefreshOutcome(None, False)
        return RefreshOutcome(row, False)

    def claim_rotation(self, row: RefreshToken) -> bool:
        """Mark the token rotated, atomically: only one request may rotate a token.

        A conditional UPDATE (``rotated_at IS NULL``) decides; under concurrency the
        database serialises the two updates and the second matches no row. The loser is
        a reuse: the whole family is revoked (RFC 9700 §4.14.2) and False returned.
        """
        now = self._clock.now()
        result = self._session.execute(
            update(RefreshToken)
            .where(RefreshToken.id == row.id, RefreshToken.rotated_at.is_(None), RefreshToken.revoked_at.is_(None))
            .values(rotated_at=now)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            row.rotated_at = now
            return True
        self.revoke_grant(row.family_id)
        return False

    def revoke_refresh_token(self, token: str, client_id: str) -> bool:
        """RFC 7009 §2.1: revoking a refresh token revokes its grant. False when the
        token is unknown or belongs to another client."""
        row = self._session.scalars(
            select(RefreshToken).where(RefreshToken.token_hash == self._hasher.digest("refresh", token))
        ).first()
        if row is None or row.client_id != client_id:
            return False
        self.revoke_grant(row.family_id)
        return True
