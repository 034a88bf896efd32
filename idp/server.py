"""The one place that touches Authlib's Flask integration: the authorization server,
its grants, client authentication methods and token endpoints, each a thin subclass that
tightens Authlib's defaults to this provider's profile (DESIGN.md §4, §9)."""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import (
    InvalidGrantError,
    InvalidRequestError,
    OAuth2Request,
    grants,
    scope_to_list,
)
from authlib.oauth2.rfc6749.requests import OAuth2Payload
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from flask import current_app, g
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from werkzeug.datastructures import MultiDict

from common.crypto import constant_time_equals, random_token
from common.db import db

from . import protocol
from .clients import ADMIN_SCOPE, RegisteredClient
from .issuance import Grant, LoginContext
from .oauth_errors import InvalidTokenError
from .provider import Services
from .tokens import AccessTokenClaims, AuthorizationCode

log = logging.getLogger("yiwang.idp")
CONFIDENTIAL_METHODS = list(protocol.CONFIDENTIAL_METHODS)
ALL_METHODS = list(protocol.AUTH_METHODS)
NO_STORE = [("Cache-Control", "no-store"), ("Pragma", "no-cache")]
JSON_NO_STORE = [("Content-Type", "application/json"), *NO_STORE]


class _DictPayload(OAuth2Payload):
    def __init__(self, data: MultiDict[str, str]) -> None:
        self._data = data

    @property
    def data(self) -> MultiDict[str, str]:
        return self._data

    @property
    def datalist(self) -> dict[str, list[str]]:
        return {k: self._data.getlist(k) for k in self._data}


class StoredAuthorizationRequest(OAuth2Request):
    """An authorization request replayed from the store after login or consent."""

    def __init__(self, uri: str, params: MultiDict[str, str]) -> None:
        super().__init__("GET", uri, headers={})
        self.payload = _DictPayload(params)
        self._params = params

    @property
    def args(self) -> MultiDict[str, str]:
        return self._params

    @property
    def form(self) -> MultiDict[str, str]:
        return MultiDict()


def _well_formed_authorization(header: str) -> bool:
    """RFC 9110 §11.4: a scheme and credentials; for Basic (RFC 7617 §2) base64 of UTF-8
    ``client_id:secret`` without control characters."""
    parts = header.split(None, 1)
    if len(parts) != 2:
        return False
    if parts[0].lower() != "basic":
        return True
    try:
        decoded = base64.b64decode(parts[1].strip(), validate=True).decode("utf-8")
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
        return False
    return ":" in decoded and decoded.isprintable()


def request_services() -> Services:
    """The services of the current request, built once per request (kept on ``flask.g``):
    the factory the server, its grants and the views share (issue 11: the server does not
    reach back into the view layer for it)."""
    if "yiwang_services" not in g:
        g.yiwang_services = current_app.extensions["yiwang.provider"].services(db.session)
    value: Services = g.yiwang_services
    return value


class YiwangServer(AuthorizationServer):
    """Authlib's Flask authorization server bound to our services. Grants and endpoints
    reach the request's services through ``self.server.services()`` (Authlib hands each
    grant and endpoint its server), not a process-global class attribute."""

    def __init__(self, services: Callable[[], Services], issuer: str) -> None:
        super().__init__()
        self._services = services
        self.issuer = issuer
        # Unknown scopes are dropped by the client's allowed-scope filter (RFC 6749 §3.3
        # lets the server ignore them) instead of failing the whole request.
        self.scopes_supported = None

    def services(self) -> Services:
        return self._services()

    def query_client(self, client_id: str) -> RegisteredClient | None:
        return self._services().client(client_id)

    def authenticate_client(self, request: OAuth2Request, methods: list[str], endpoint: str = "token") -> Any:
        from authlib.oauth2.rfc6749 import InvalidClientError

        header = request.headers.get("Authorization", "")
        if header and not _well_formed_authorization(header):
            # Authlib would fail on these (a 500); RFC 6749 §5.2: invalid_client, 401.
            raise InvalidClientError(status_code=401, description="Malformed Authorization header.")
        # RFC 6749 §2.3: a client must not use more than one authentication method in a
        # request; refuse rather than pick one (a downgrade could hide in the other).
        basic = header[:6].lower() == "basic "
        form = request.form
        used = [basic, bool(form.get("client_secret")), bool(form.get("client_assertion"))]
        if sum(used) > 1:
            raise InvalidClientError(
                status_code=401 if basic else 400,
                description="Use exactly one client authentication method.",
            )
        return super().authenticate_client(request, methods, endpoint)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        # Each grant below persists what it issues itself.
        return None

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        return super().create_oauth2_request(request)

    def handle_response(self, status_code: int, payload: Any, headers: list[tuple[str, str]]) -> Any:
        # RFC 6749 §5.1 / §5.2: token responses and their errors are never cached.
        names = {k.lower() for k, _ in headers}
        extra = [h for h in NO_STORE if h[0].lower() not in names]
        return super().handle_response(status_code, payload, list(headers) + extra)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None


# -- client authentication ----------------------------------------------------------


class PrivateKeyJWT(JWTBearerClientAssertion):
    """``private_key_jwt`` (OIDC Core §9, RFC 7523 §2.2) with the profile's tightening:
    asymmetric algorithms only (no ``none``, no HMAC keyed with a public key), no
    ``jku``/``jwk``/``x5u`` headers that would let the assertion name its own key, exact
    ``aud``, a lifetime of at most ``client_assertion_max_lifetime`` (settings), and
    single-use ``jti`` in the shared store."""

    CLIENT_AUTH_METHOD = "private_key_jwt"
    ALGORITHMS = ("ES256", "RS256", "PS256")

    def __init__(self, services: Callable[[], Services], issuer: str, token_endpoint: str) -> None:
        super().__init__(validate_jti=True, leeway=30)
        self._services = services
        self._audiences = [token_endpoint, issuer]

    def get_audiences(self) -> list[str]:
        return self._audiences

    def extract_assertion(self, assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
        from authlib.oauth2.rfc6749 import InvalidClientError

        headers, claims = super().extract_assertion(assertion)
        if headers.get("alg") not in self.ALGORITHMS:
            raise InvalidClientError(description="Unsupported assertion algorithm.")
        if any(h in headers for h in ("jku", "jwk", "x5u", "x5c")):
            raise InvalidClientError(description="Assertion keys must be registered.")
        return headers, claims

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> dict[str, Any]:
        from authlib.oauth2.rfc6749 import InvalidClientError

        try:
            token = jwt.decode(assertion, resolve_key, algorithms=list(self.ALGORITHMS))
        except (JoseError, ValueError) as exc:
            raise InvalidClientError(description="Invalid client assertion.") from exc
        claims = dict(token.claims)
        # RFC 7523 §3: aud must identify this server; exact comparison only.
        aud = claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        if not any(a in self._audiences for a in auds if isinstance(a, str)):
            raise InvalidClientError(description="Invalid assertion audience.")
        self.verify_claims(token.claims)
        return claims

    def validate_jti(self, claims: dict[str, Any], jti: str) -> bool:
        exp = int(claims.get("exp", 0))
        services = self._services()
        # Remembered while the assertion is still accepted (exp plus the leeway), which
        # the lifetime cap bounds: at most client_assertion_max_lifetime + 2 × leeway.
        ttl = max(1, exp - services.p.clock.timestamp() + self.leeway)
        key = "assertion-jti:" + services.p.hasher.digest("jti", f"{claims['sub']}\x00{jti}")
        return services.p.store.set_if_absent(key, b"1", ttl)

    def verify_claims(self, claims: Any) -> None:
        """Authlib's checks (iss, sub, aud, exp essential; iss == sub; single-use jti),
        with time from the injected clock like every other expiry (DESIGN.md §2)."""
        from authlib.oauth2.rfc6749 import InvalidClientError

        registry = jwt.JWTClaimsRegistry(
            now=self._services().p.clock.timestamp,
            leeway=self.leeway,
            iss={"essential": True},
            sub={"essential": True},
            aud={"essential": True, "values": self.get_audiences()},
            exp={"essential": True},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise InvalidClientError(description="Invalid client assertion.") from exc
        # RFC 7523 §3 items 1-2: iss and sub are both the client_id.
        if claims["sub"] != claims["iss"]:
            raise InvalidClientError(description="Issuer and Subject MUST match.")
        # RFC 7523 §3 item 4 lets the server limit the time window. Policy: at most
        # client_assertion_max_lifetime from iat (or from now without one: OIDC Core §9
        # makes iat optional) and never further from now than that plus the clock-skew
        # leeway. A year-long assertion would be a stolen-and-replayable credential;
        # joserfc has already refused an iat in the future. The default (one hour) is what
        # Authlib's client signs for; a deployment of stricter clients sets it lower.
        services = self._services()
        now = services.p.clock.timestamp()
        cap = services.p.settings.client_assertion_max_lifetime
        issued = claims["iat"] if isinstance(claims.get("iat"), (int, float)) else now
        if claims["exp"] - issued > cap or claims["exp"] > now + cap + self.leeway:
            raise InvalidClientError(description="The assertion is valid for too long.")
        # RFC 7523 §3 item 7 / OIDC Core §9: jti required and single use.
        if "jti" not in claims or not self.validate_jti(claims, claims["jti"]):
            raise InvalidClientError(description="Invalid or reused JWT ID.")

    def resolve_client_public_key(self, client: RegisteredClient) -> KeySet:
        from authlib.oauth2.rfc6749 import InvalidClientError

        # OIDC Registration §2: only a client registered for private_key_jwt, with keys,
        # may present an assertion; any other client gets invalid_client, not a 500.
        if not client.check_endpoint_auth_method(self.CLIENT_AUTH_METHOD, "token") or not (client.jwks or {}).get("keys"):
            raise InvalidClientError(description="The client cannot authenticate with this method.")
        return KeySet.import_key_set(client.jwks)  # type: ignore[arg-type]

    def authenticate_client(self, client: RegisteredClient) -> RegisteredClient:
        from authlib.oauth2.rfc6749 import InvalidClientError

        if client.check_endpoint_auth_method(self.CLIENT_AUTH_METHOD, "token"):
            return client
        raise InvalidClientError(description="The client cannot authenticate with this method.")


# -- PKCE ---------------------------------------------------------------------------


def validate_code_verifier(grant: grants.BaseGrant, result: Any = None) -> None:
    """RFC 7636 §4.6 with RFC 9700 §2.1.1: every code was issued with an S256 challenge,
    so every redemption needs the verifier."""
    code: AuthorizationCode = grant.request.authorization_code
    verifier = grant.request.form.get("code_verifier")
    if not verifier:
        raise InvalidRequestError("Missing 'code_verifier'.")
    if not protocol.PKCE_VALUE.match(verifier):
        raise InvalidRequestError("Invalid 'code_verifier'.")
    if code.code_challenge_method != "S256" or not constant_time_equals(
        create_s256_code_challenge(verifier), code.code_challenge
    ):
        raise InvalidGrantError("PKCE verification failed.")


# -- grants ---------------------------------------------------------------------------


class _IssuingGrant:
    server: YiwangServer

    def services(self) -> Services:
        return self.server.services()
    GRANT_TYPE: str

    def _token_response(self, grant: Grant) -> dict[str, Any]:
        """Authlib glue: the issuance itself is ``idp.issuance`` (issue 11)."""
        issued = self.services().issuance.issue(grant, grant_type=self.GRANT_TYPE)
        self._last_jti = issued.jti
        return issued.body


class CodeGrant(_IssuingGrant, grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_METHODS

    def query_authorization_code(self, code: str, client: RegisteredClient) -> AuthorizationCode | None:
        svc = self.services()
        if not isinstance(code, str) or len(code) > 128:
            return None
        data = svc.tokens.consume_code(code)
        if data is None:
            # RFC 6749 §4.1.2 / RFC 9700 §4.2.4: a replayed code revokes what it issued.
            svc.tokens.revoke_replayed_code(code)
            return None
        if data.client_id != client.client_id:
            return None
        return data

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        client: RegisteredClient = self.request.client
        code: AuthorizationCode = self.request.authorization_code
        svc = self.services()
        account = svc.accounts.get(code.account_id)
        if account.status != "active":
            raise InvalidGrantError("The account is not active.")
        grant_id = random_token(16)
        body = self._token_response(Grant(
            client=client,
            account_id=account.id,
            subject_seed=account.subject_seed,
            scope=code.scope,
            login=LoginContext(auth_time=code.auth_time, acr=code.acr, amr=tuple(code.amr), sid=code.sid),
            nonce=code.nonce,
            claims_request=code.claims_request,
            context=code.context,
            granted=frozenset(code.claims or ()),
            grant_id=grant_id,
            # Issue 17: an admin-scoped grant gets no refresh token; the admin API wants a
            # recent login behind every token, so its tokens live minutes, not 30 days.
            refresh=client.check_grant_type("refresh_token") and ADMIN_SCOPE not in scope_to_list(code.scope),
        ))
        svc.tokens.record_code_redeemed(code.code_hash, grant_id=grant_id, jti=self._last_jti)
        svc.sessions.add_client(code.sid, client.client_id)
        return 200, body, JSON_NO_STORE

    # The authorization endpoint is handled by views.authorize (login, consent, prompt
    # handling); these keep Authlib's validation of client, redirect URI and scope.
    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:  # pragma: no cover
        raise RuntimeError("authorization codes are issued by idp.views.oauth.handle_authorization")

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        # Already consumed atomically in query_authorization_code.
        return None

    def authenticate_user(self, authorization_code: AuthorizationCode) -> int:
        return authorization_code.account_id


class _RefreshTokenView:
    def __init__(self, row: Any) -> None:
        self.row = row

    def check_client(self, client: RegisteredClient) -> bool:
        return bool(self.row.client_id == client.client_id)

    def get_scope(self) -> str:
        return str(self.row.scope)


class RefreshGrant(_IssuingGrant, grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    @staticmethod
    def _granted_of(row: Any, client: RegisteredClient) -> set[str]:
        """The claims a refresh family carries on. Rows from before per-claim consent
        (claims NULL) were consented by scope: their scopes' claims, never sensitive ones."""
        from .release import refreshable, requested_claims

        if row.claims is not None:
            return set(row.claims)
        return refreshable(requested_claims(client, row.scope, row.claims_request))

    def authenticate_refresh_token(self, refresh_token: str) -> _RefreshTokenView | None:
        if len(refresh_token) > 128:
            return None
        outcome = self.services().tokens.find_refresh_token(refresh_token, self.request.client.client_id)
        return _RefreshTokenView(outcome.row) if outcome.row is not None else None

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        client: RegisteredClient = self.request.client
        row = self.request.refresh_token.row
        svc = self.services()
        account = svc.accounts.get(row.account_id)
        if account.status != "active":
            raise InvalidGrantError("The account is not active.")
        if ADMIN_SCOPE in scope_to_list(row.scope):
            # Issue 17: refresh tokens issued with the admin scope before the rule are dead.
            svc.tokens.revoke_grant(row.family_id)
            raise InvalidGrantError("This grant cannot be refreshed.")
        # RFC 6749 §6: the new scope may narrow, never widen (checked by Authlib).
        scope = self.request.payload.scope or row.scope
        if not svc.tokens.claim_rotation(row):
            # Another request rotated this token first: a reuse (the family is revoked).
            raise InvalidGrantError()
        body = self._token_response(Grant(
            client=client,
            account_id=account.id,
            subject_seed=account.subject_seed,
            scope=scope,
            login=LoginContext(auth_time=row.auth_time, acr=row.acr, amr=tuple(row.amr or ()), sid=row.sid),
            nonce=None,
            claims_request=row.claims_request,
            granted=frozenset(self._granted_of(row, client)),
            grant_id=row.family_id,
            refresh=True,
            family_expires_at=row.family_expires_at,
            context=row.context,
        ))
        return 200, body, JSON_NO_STORE


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_METHODS
    server: YiwangServer

    def services(self) -> Services:
        return self.server.services()

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        client: RegisteredClient = self.request.client
        # No user: openid and user scopes make no sense here, nor the admin scope, which is
        # an administrator's (issue 17).
        scope = " ".join(
            s for s in scope_to_list(client.get_allowed_scope(self.request.payload.scope) or "")
            if s not in ("openid", ADMIN_SCOPE)
        )
        # RFC 9068 §2.2: with no resource owner, sub is the client's identifier.
        token, _, expires_in = self.services().tokens.issue_access_token(
            client_id=client.client_id, sub=client.client_id, scope=scope, account_id=None, grant_id=None
        )
        # Policy: machine-to-machine tokens are counted (yiwang_tokens_issued), not written
        # to the audit trail one by one. They concern no person, and a durable, chained
        # row per token would put a database commit on the hottest path (DESIGN.md §7
        # budget) and serialise each client's tokens on one chain head.
        body = {"access_token": token, "token_type": "Bearer", "expires_in": expires_in}
        if scope:
            body["scope"] = scope
        self.services().p.metrics.token_issued(self.GRANT_TYPE)
        return 200, body, JSON_NO_STORE


# -- introspection and revocation -----------------------------------------------------


class _AccessTokenView:
    def __init__(self, claims: AccessTokenClaims) -> None:
        self.claims = claims

    def check_client(self, client: RegisteredClient) -> bool:
        return self.claims.client_id == client.client_id

    def is_expired(self) -> bool:
        return False

    def is_revoked(self) -> bool:
        return False


class _RefreshRowView(_RefreshTokenView):
    def __init__(self, row: Any, now: Any) -> None:
        super().__init__(row)
        self._now = now

    def is_expired(self) -> bool:
        return bool(self.row.expires_at <= self._now or self.row.family_expires_at <= self._now)

    def is_revoked(self) -> bool:
        return self.row.revoked_at is not None or self.row.rotated_at is not None


def _find_token(services: Services, token: str, hint: str | None) -> Any:
    if len(token) > 4096:
        return None
    order = ["refresh_token", "access_token"] if hint == "refresh_token" else ["access_token", "refresh_token"]
    for kind in order:
        if kind == "access_token" and token.count(".") == 2:
            try:
                return _AccessTokenView(services.tokens.validate_access_token(token))
            except InvalidTokenError:
                continue
        if kind == "refresh_token" and "." not in token:
            from sqlalchemy import select

            from .models import RefreshToken

            row = services.session.scalars(
                select(RefreshToken).where(RefreshToken.token_hash == services.p.hasher.digest("refresh", token))
            ).first()
            if row is not None:
                return _RefreshRowView(row, services.p.clock.now())
    return None


class Introspection(IntrospectionEndpoint):
    """RFC 7662. Policy: a client may introspect only tokens issued to it; anything else
    is reported inactive, which reveals nothing (§2.2)."""

    CLIENT_AUTH_METHODS = CONFIDENTIAL_METHODS
    server: YiwangServer

    def services(self) -> Services:
        return self.server.services()

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        return _find_token(self.services(), token_string, token_type_hint)

    def check_permission(self, token: Any, client: RegisteredClient, request: OAuth2Request) -> bool:
        return bool(token.check_client(client))

    def introspect_token(self, token: Any) -> dict[str, Any]:
        svc = self.services()
        if isinstance(token, _AccessTokenView):
            c = token.claims.raw
            out = {
                "active": True,
                "token_type": "Bearer",
                "scope": c.get("scope", ""),
                "client_id": c.get("client_id"),
                "sub": c.get("sub"),
                "aud": c.get("aud"),
                "iss": c.get("iss"),
                "exp": c.get("exp"),
                "iat": c.get("iat"),
                "jti": c.get("jti"),
            }
            for k in ("auth_time", "acr", "amr", "sid"):
                if k in c:
                    out[k] = c[k]
            return out
        row = token.row
        client = svc.client(row.client_id)
        account = svc.accounts.get(row.account_id)
        return {
            "active": True,
            "token_type": "refresh_token",
            "scope": row.scope,
            "client_id": row.client_id,
            "sub": svc.subject(account.subject_seed, client) if client else None,
            "iss": svc.p.settings.issuer,
            "exp": int(min(row.expires_at, row.family_expires_at).timestamp()),
            "iat": int(row.issued_at.timestamp()),
        }


class Revocation(RevocationEndpoint):
    """RFC 7009. Public clients may revoke their own tokens (§2.1 allows it: the client
    is identified by client_id)."""

    CLIENT_AUTH_METHODS = ALL_METHODS
    server: YiwangServer

    def services(self) -> Services:
        return self.server.services()

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        return _find_token(self.services(), token_string, token_type_hint)

    def authenticate_token(self, request: OAuth2Request, client: RegisteredClient) -> Any:
        self.check_params(request, client)
        token = self.query_token(request.form["token"], request.form.get("token_type_hint"))
        # RFC 7009 §2.2: a token of another client is treated like an invalid token: the
        # response is 200 and nothing is revoked, so nothing is learned about it.
        if token is not None and not token.check_client(client):
            return None
        return token

    def revoke_token(self, token: Any, request: OAuth2Request) -> None:
        svc = self.services()
        if isinstance(token, _AccessTokenView):
            svc.tokens.revoke_access_token(token.claims)
            kind, account_id, details = "access_token", token.claims.account_id, {"jti": token.claims.jti}
        else:
            # §2.1: revoking a refresh token also invalidates the grant's access tokens.
            svc.tokens.revoke_grant(token.row.family_id)
            kind, account_id, details = "refresh_token", token.row.account_id, {}
        client_id = request.client.client_id
        svc.audit.record("token.revoke", actor=f"client:{client_id}", client_id=client_id,
                         target=f"account:{account_id}" if account_id else None,
                         details={"token_type": kind, **details})


def build_server(services: Callable[[], Services], issuer: str, endpoints: dict[str, str],
                 features: protocol.Features | None = None) -> YiwangServer:
    features = features or protocol.Features()
    server = YiwangServer(services, issuer)
    server.register_grant(CodeGrant, [lambda grant: grant.register_hook("after_validate_token_request", validate_code_verifier)])
    server.register_grant(RefreshGrant)
    if features.client_credentials:
        server.register_grant(ClientCredentialsGrant)
    server.register_client_auth_method(
        PrivateKeyJWT.CLIENT_AUTH_METHOD, PrivateKeyJWT(services, issuer, endpoints["token"])
    )
    if features.introspection:
        server.register_endpoint(Introspection)
    if features.revocation:
        server.register_endpoint(Revocation)
    return server

