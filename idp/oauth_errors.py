"""OAuth errors as typed values that render themselves: one class per wire code with its
status, fixed description and headers (RFC 6749 §5.2, RFC 6750 §3, RFC 9470 §3). Pure:
``render()`` gives (body, status, headers), which a Flask view returns as a JSON response;
errors of the authorization endpoint give ``params()`` for the redirect instead."""

from __future__ import annotations

import re
from typing import Any, ClassVar, NamedTuple

from common.errors import DomainError

# RFC 6750 §3: the protection space of the provider's own resources (userinfo).
REALM = "yiwang"

# RFC 6750 §3: the characters error and error_description values may hold.
_QUOTABLE = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")


class Rendered(NamedTuple):
    """An error response, framework-neutral (as Authlib's errors render); Flask reads a
    (body, status, headers) tuple as a view's return value."""

    body: dict[str, str]
    status: int
    headers: dict[str, str]


def _check_quotable(description: str) -> None:
    # A description goes into a quoted-string (RFC 6750 §3); text that cannot be sent there
    # is a programming error, found by the tests rather than by a client.
    if not _QUOTABLE.fullmatch(description):
        raise ValueError(f"description not allowed in a challenge: {description!r}")


class OAuthError(DomainError):
    """An error answered to an OAuth client: ``code`` is the wire ``error`` value,
    ``public_message`` its fixed ``error_description``, ``status_code`` the HTTP status."""

    code = "server_error"
    public_message = "The server could not complete the request."
    status_code = 500
    # RFC 9110 §10.2.3: seconds after which the client may try again, when it may.
    retry_after: int | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _check_quotable(cls.public_message)

    def __init__(self, detail: str = "", *, public_message: str | None = None) -> None:
        if public_message is not None:
            _check_quotable(public_message)
        super().__init__(detail, public_message=public_message)

    @property
    def status(self) -> int:
        return self.status_code

    @property
    def description(self) -> str:
        return self.public_message

    @property
    def error(self) -> str | None:
        """The ``error`` value on the wire; None when the answer carries no error code."""
        return self.code

    def body(self) -> dict[str, str]:
        # RFC 6749 §5.2: error and error_description in a JSON object.
        if self.error is None:
            return {}
        return {"error": self.error, "error_description": self.description}

    def headers(self, realm: str = REALM) -> dict[str, str]:
        # RFC 6749 §5.1 / RFC 6750 §3: error responses are not cached either.
        out = {"Cache-Control": "no-store"}
        if self.retry_after is not None:
            out["Retry-After"] = str(self.retry_after)
        return out

    def render(self, realm: str = REALM) -> Rendered:
        return Rendered(self.body(), self.status_code, self.headers(realm))


class TemporarilyUnavailableError(OAuthError):
    """A server fault the client should retry (RFC 6749 §4.1.2.1 ``temporarily_unavailable``;
    §5.2 has no code for it at the token endpoint)."""

    code = "temporarily_unavailable"
    public_message = "The service is temporarily unavailable. Try again later."
    status_code = 503
    retry_after = 30


class BearerTokenError(OAuthError):
    """A protected resource refuses the request's bearer token (RFC 6750 §3): the answer
    carries a ``WWW-Authenticate: Bearer`` challenge naming the error."""

    code = "invalid_token"
    public_message = "The access token is invalid, expired or revoked."
    status_code = 401

    def challenge_attributes(self) -> list[tuple[str, str]]:
        """The auth-params after ``realm``, in the order RFC 6750 §3 lists them."""
        if self.error is None:
            return []
        return [("error", self.error), ("error_description", self.description)]

    def challenge(self, realm: str = REALM) -> str:
        params = [("realm", realm), *self.challenge_attributes()]
        return "Bearer " + ", ".join(f'{name}="{value}"' for name, value in params)

    def headers(self, realm: str = REALM) -> dict[str, str]:
        return {**super().headers(realm), "WWW-Authenticate": self.challenge(realm)}


class TokenRequiredError(BearerTokenError):
    """The request carries no bearer token at all: RFC 6750 §3.1 says the challenge then
    names no error, so none is sent (``code`` is for logs and problem documents only)."""

    code = "unauthorized"
    public_message = "An access token is required."
    status_code = 401

    @property
    def error(self) -> str | None:
        return None


class InvalidRequestError(BearerTokenError):
    """RFC 6750 §3.1 ``invalid_request`` at a protected resource: the token was sent
    wrongly (twice, in the query string, a malformed header)."""

    code = "invalid_request"
    public_message = "The request is missing a parameter or has an invalid one."
    status_code = 400


class InvalidTokenError(BearerTokenError):
    """RFC 6750 §3.1 ``invalid_token``: malformed, badly signed, expired or revoked, or
    its account can no longer use it. ``detail`` (for the log) says which."""

    code = "invalid_token"
    public_message = "The access token is invalid, expired or revoked."
    status_code = 401


class InsufficientScopeError(BearerTokenError):
    """RFC 6750 §3.1 ``insufficient_scope``; ``scope`` names what the resource needs."""

    code = "insufficient_scope"
    public_message = "The access token does not carry the scope this resource needs."
    status_code = 403

    def __init__(self, detail: str = "", *, public_message: str | None = None, scope: str | None = None) -> None:
        super().__init__(detail, public_message=public_message)
        self.scope = scope

    def challenge_attributes(self) -> list[tuple[str, str]]:
        # RFC 6750 §3: the scope needed to access the resource, when it is known.
        return super().challenge_attributes() + ([("scope", self.scope)] if self.scope else [])


class InsufficientUserAuthenticationError(BearerTokenError):
    """RFC 9470 §3: the login behind the token is not strong or not recent enough;
    ``max_age`` is the authentication age the resource accepts."""

    code = "insufficient_user_authentication"
    public_message = "The login behind the access token is not strong or recent enough."
    status_code = 401

    def __init__(self, detail: str = "", *, public_message: str | None = None, max_age: int | None = None) -> None:
        super().__init__(detail, public_message=public_message)
        self.max_age = max_age

    def challenge_attributes(self) -> list[tuple[str, str]]:
        return super().challenge_attributes() + ([("max_age", str(self.max_age))] if self.max_age is not None else [])


# -- the authorization endpoint: errors sent to the client's redirect URI ---------------


class AuthorizationResponseError(OAuthError):
    """An error for the client at its verified redirect URI (RFC 6749 §4.1.2.1, OIDC Core
    §3.1.2.6): ``error`` and ``error_description`` travel as response parameters, with
    ``state`` and ``iss``, not as a JSON body. One subclass per code; an occurrence may
    name the rule it broke in its description (fixed text, never the request's input)."""

    # Only used when there is no verified redirect URI and the error is shown as a page.
    status_code = 400
    _by_code: ClassVar[dict[str, type[AuthorizationResponseError]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        AuthorizationResponseError._by_code[cls.code] = cls

    def __init__(self, description: str | None = None) -> None:
        super().__init__(description or "", public_message=description)

    def params(self) -> list[tuple[str, str]]:
        return [("error", self.code), ("error_description", self.description)]

    @classmethod
    def for_code(cls, code: str) -> AuthorizationResponseError:
        """The typed error for a code Authlib reports; an unknown code is our fault."""
        return cls._by_code.get(code, AuthorizationServerError)()


class InvalidAuthorizationRequestError(AuthorizationResponseError):
    code = "invalid_request"
    public_message = "The request is missing a parameter or has an invalid one."


class UnauthorizedClientError(AuthorizationResponseError):
    code = "unauthorized_client"
    public_message = "The client may not use this response type."


class UnsupportedResponseTypeError(AuthorizationResponseError):
    code = "unsupported_response_type"
    public_message = "Only response_type=code is supported."


class InvalidScopeError(AuthorizationResponseError):
    code = "invalid_scope"
    public_message = "The requested scope is not valid."


class AccessDeniedError(AuthorizationResponseError):
    code = "access_denied"
    public_message = "The user denied the request."


class AuthorizationServerError(AuthorizationResponseError):
    code = "server_error"
    public_message = "The server could not complete the request."


class AuthorizationThrottledError(AuthorizationResponseError):
    # RFC 6749 §4.1.2.1 temporarily_unavailable: here, the network's pending-interaction
    # budget is spent (issue 17).
    code = "temporarily_unavailable"
    public_message = "Too many requests from your network; try again in a few minutes."


class LoginRequiredError(AuthorizationResponseError):
    # OIDC Core §3.1.2.6
    code = "login_required"
    public_message = "The user must log in."


class ConsentRequiredError(AuthorizationResponseError):
    code = "consent_required"
    public_message = "The user must consent."


class InteractionRequiredError(AuthorizationResponseError):
    code = "interaction_required"
    public_message = "User interaction is required."


class UnmetAuthenticationRequirementsError(AuthorizationResponseError):
    # OpenID Connect Core errata set 2, §3.1.2.6 (unmet_authentication_requirements).
    code = "unmet_authentication_requirements"
    public_message = "The requested authentication level cannot be met."


class RequestNotSupportedError(AuthorizationResponseError):
    code = "request_not_supported"
    public_message = "Request objects are not supported."


class RequestUriNotSupportedError(AuthorizationResponseError):
    code = "request_uri_not_supported"
    public_message = "request_uri is not supported."
