"""Who is calling the admin API: a bearer access token issued by this provider (RFC 6750
§2.1, RFC 9068) carrying the ``admin`` scope, for a person's account that logged in
with a second factor and holds an administrator role now.

CSRF: this API reads credentials only from the Authorization header, never from cookies,
so a cross-site request cannot carry them; that is why its views need no CSRF token."""

from __future__ import annotations

from flask import current_app, g, request

from common.db import db
from idp.clients import ADMIN_SCOPE
from idp.errors import AccountNotFoundError
from idp.oauth_errors import (
    InsufficientScopeError,
    InsufficientUserAuthenticationError,
    InvalidRequestError,
    InvalidTokenError,
    TokenRequiredError,
)
from idp.provider import Services

from ..actor import Actor
from ..service import AdminServices

# RFC 8176 §2 values that prove a second factor: a one-time password (TOTP), or a
# hardware key (a certificate on a UKey).
SECOND_FACTORS = frozenset({"otp", "hwk"})


def services() -> Services:
    if "admin_api_services" not in g:
        g.admin_api_services = current_app.extensions["yiwang.provider"].services(db.session)
    value: Services = g.admin_api_services
    return value


def client_ip() -> str:
    # ProxyFix (configured with the number of trusted proxies) has already set this.
    return request.remote_addr or "unknown"


def _bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header or scheme.lower() != "bearer":
        # RFC 6750 §3.1: a request without authentication gets a challenge, no error code.
        raise TokenRequiredError("another scheme" if header else "no Authorization header")
    token = token.strip()
    if not token or len(token) > 8192:
        raise InvalidRequestError("authorization header", public_message="The Authorization header is malformed.")
    return token


def authenticate() -> Actor:
    """The caller, with the roles they hold now (possibly none: the caller decides).
    Raises a ``BearerTokenError`` when the token cannot be used."""
    token = _bearer_token()
    svc = services()
    claims = svc.tokens.validate_access_token(token)
    # Deviation: RFC 9068 access tokens here have aud = the client, not a resource; the
    # admin scope, which only administrators' consoles and tools are registered for,
    # is what marks a token for this API.
    if ADMIN_SCOPE not in claims.scope.split():
        raise InsufficientScopeError("no admin scope", public_message="The access token lacks the admin scope.",
                                     scope=ADMIN_SCOPE)
    client = svc.client(claims.client_id)
    if client is None or not client.first_party:
        # Issue 17: only a first-party administration client (a superadmin's registration)
        # speaks for an administrator here; any other client's token, whatever its scope
        # says, is not for this API.
        raise InvalidTokenError(f"client {claims.client_id}",
                                public_message="The access token was not issued to an administration client.")
    amr = claims.raw.get("amr")
    if claims.account_id is None or not isinstance(amr, list) or not SECOND_FACTORS & set(amr):
        # RFC 9470 §3: the login behind the token was not strong enough.
        raise InsufficientUserAuthenticationError(
            "no second factor",
            public_message="Administrators must log in with a second factor (one-time code or hardware key).")
    max_age = svc.p.settings.admin_max_auth_age
    auth_time = claims.raw.get("auth_time")
    if not isinstance(auth_time, int) or svc.p.clock.timestamp() - auth_time > max_age:
        # Issue 17 / RFC 9470 §3: a recent login behind every administrative call.
        raise InsufficientUserAuthenticationError(
            "login too old", public_message="The login behind this token is too old: log in again.", max_age=max_age)
    try:
        status = svc.accounts.get(claims.account_id).status
    except AccountNotFoundError:
        status = "deleted"
    if status != "active":
        raise InvalidTokenError(f"account {status}")
    return AdminServices(svc).admins.actor(claims.account_id, client_ip())
