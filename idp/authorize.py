"""Authorization endpoint decisions (RFC 6749 §4.1.1, OIDC Core §3.1.2), free of Flask.

Authlib has already checked the client, the exact redirect URI, the response type and
the scope when these run; what is left is this profile's stricter request rules and the
decision between login, consent, an error and issuing a code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .assurance import LEVELS, choose_acr, rank
from .claims import InvalidClaimsRequestError, parse_claims_request, requested_acr_values
from .oauth_errors import (
    AuthorizationServerError,
    ConsentRequiredError,
    InteractionRequiredError,
    InvalidAuthorizationRequestError,
    LoginRequiredError,
    RequestNotSupportedError,
    RequestUriNotSupportedError,
    UnmetAuthenticationRequirementsError,
)
from .protocol import ADMIN_SCOPE, PKCE_VALUE

if TYPE_CHECKING:
    from .clients import RegisteredClient
    from .sessions import SsoSession

PROMPTS = {"none", "login", "consent", "select_account"}
# Highest level reachable in the browser without external services: cn-l3 needs a face
# match service, cn-l4 a certificate login.
STEP_UP_LIMIT = "cn-l2"
RESPONSE_MODES = ("query", "form_post")
# Issue 17: the authorization request parameters this provider reads, each with a size
# cap. Nothing else of a request is kept while the citizen logs in (the pending
# interaction is bounded), and a request with an oversized value is refused.
PARAMETER_LIMITS = {
    "response_type": 64, "client_id": 64, "redirect_uri": 2000, "scope": 1024, "state": 2048, "nonce": 512,
    "code_challenge": 128, "code_challenge_method": 16, "prompt": 64, "max_age": 10, "login_hint": 256,
    "id_token_hint": 8192, "acr_values": 512, "claims": 8192, "ui_locales": 256, "response_mode": 32,
}


@dataclass
class AuthorizationRequest:
    client: RegisteredClient
    redirect_uri: str
    scope: str
    state: str | None
    response_mode: str
    nonce: str | None = None
    prompt: set[str] = field(default_factory=set)
    max_age: int | None = None
    login_hint: str | None = None
    id_token_hint: str | None = None
    acr_values: list[str] = field(default_factory=list)
    acr_essential: bool = False
    claims_request: dict[str, Any] | None = None
    ui_locales: list[str] = field(default_factory=list)
    code_challenge: str = ""
    code_challenge_method: str = "S256"


def response_mode_of(params: Any) -> str:
    mode = params.get("response_mode") or "query"
    return mode if mode in RESPONSE_MODES else "query"


def parse_request(
    params: Any, client: RegisteredClient, redirect_uri: str, scope: str, *, admin_max_auth_age: int | None = None
) -> AuthorizationRequest:
    """Apply the profile's request rules; raise ``AuthorizationResponseError`` (redirectable).
    ``admin_max_auth_age``: the oldest login an admin-scoped request may reuse."""
    # OIDC Core §6: request objects are not supported by this provider.
    if params.get("request"):
        raise RequestNotSupportedError("Request objects are not supported.")
    if params.get("request_uri"):
        raise RequestUriNotSupportedError("request_uri is not supported.")
    for name, limit in PARAMETER_LIMITS.items():
        values = params.getlist(name)
        if len(values) > 1:
            # RFC 6749 §3.1: parameters must not be repeated.
            raise InvalidAuthorizationRequestError(f"Repeated parameter {name}.")
        if values and len(values[0]) > limit:
            raise InvalidAuthorizationRequestError(f"{name} is too long.")
    mode = params.get("response_mode") or "query"
    if mode not in RESPONSE_MODES:
        # OAuth 2.0 Multiple Response Types §2.1 / Form Post Response Mode: only query and
        # form_post suit the code flow; fragment would expose the code to scripts.
        raise InvalidAuthorizationRequestError("Unsupported response_mode.")

    # RFC 7636 §4.3 + RFC 9700 §2.1.1: PKCE with S256 for every client; plain and a
    # missing method (which RFC 7636 would read as plain) are refused.
    challenge = params.get("code_challenge") or ""
    method = params.get("code_challenge_method") or ""
    if not challenge:
        raise InvalidAuthorizationRequestError("code_challenge is required (PKCE).")
    if method != "S256":
        raise InvalidAuthorizationRequestError("code_challenge_method must be S256.")
    if not PKCE_VALUE.match(challenge):
        raise InvalidAuthorizationRequestError("Invalid code_challenge.")

    # OIDC Core §3.1.2.1 prompt: known values; none alone.
    prompt = set((params.get("prompt") or "").split())
    if prompt - PROMPTS:
        raise InvalidAuthorizationRequestError("Unsupported prompt value.")
    if "none" in prompt and len(prompt) > 1:
        raise InvalidAuthorizationRequestError("prompt=none cannot be combined with other values.")

    max_age = None
    if params.get("max_age") not in (None, ""):
        raw = params.get("max_age")
        if not raw.isdigit() or len(raw) > 10:
            raise InvalidAuthorizationRequestError("max_age must be a non-negative integer.")
        max_age = int(raw)
    if admin_max_auth_age is not None and ADMIN_SCOPE in scope.split():
        # Issue 17 / RFC 9470 §2 max_age: the admin API accepts only a recent login, so an
        # admin-scoped request never reuses an older SSO session, whatever the client sent.
        max_age = admin_max_auth_age if max_age is None else min(max_age, admin_max_auth_age)

    try:
        claims_request = parse_claims_request(params.get("claims"))
    except InvalidClaimsRequestError:
        raise InvalidAuthorizationRequestError("The claims parameter is not valid JSON of the right shape.") from None
    acr_values, essential = requested_acr_values(params.get("acr_values"), claims_request)

    nonce = params.get("nonce")
    if nonce is not None and len(nonce) > 512:
        raise InvalidAuthorizationRequestError("nonce is too long.")
    state = params.get("state")
    if state is not None and len(state) > 2048:
        raise InvalidAuthorizationRequestError("state is too long.")

    return AuthorizationRequest(
        client=client,
        redirect_uri=redirect_uri,
        scope=scope,
        state=state,
        response_mode=mode,
        nonce=nonce,
        prompt=prompt,
        max_age=max_age,
        login_hint=(params.get("login_hint") or None),
        id_token_hint=(params.get("id_token_hint") or None),
        acr_values=acr_values,
        acr_essential=essential,
        claims_request=claims_request,
        ui_locales=(params.get("ui_locales") or "").split(),
        code_challenge=challenge,
        code_challenge_method=method,
    )


@dataclass(frozen=True)
class Decision:
    action: str  # "login" | "stepup" | "consent" | "issue"
    acr: str | None = None


def decide(
    req: AuthorizationRequest,
    *,
    session: SsoSession | None,
    session_level: str | None,
    session_subject: str | None,
    hint_subject: str | None,
    hint_invalid: bool,
    fresh_login: bool,
    consent_granted: bool,
    consent_given_now: bool,
    now: int,
) -> Decision:
    """What the authorization endpoint does next. Raises ``AuthorizationResponseError``.

    ``fresh_login`` is True when the session's authentication happened after this
    authorization request arrived (the user just logged in for it).
    """
    # OIDC Core §3.1.2.1 id_token_hint: a hint we did not issue is an error.
    if hint_invalid:
        raise InvalidAuthorizationRequestError("id_token_hint is not valid.")
    need_login = session is None
    if session is not None and not fresh_login:
        # prompt=login and max_age force a new authentication (OIDC Core §3.1.2.1,
        # §3.1.2.3); the new auth_time then lies after this request.
        # select_account: with one account per session, choosing another account is
        # logging in again.
        if "login" in req.prompt or "select_account" in req.prompt:
            need_login = True
        # OIDC Core §3.1.2.1 (errata set 2): max_age=0 is equivalent to prompt=login, even
        # within the second of the last login.
        if req.max_age is not None and (req.max_age == 0 or now - session.auth_time > req.max_age):
            need_login = True
    if session is not None and hint_subject is not None and hint_subject != session_subject:
        # OIDC Core §3.1.2.2: the hinted user is not the session's user. Never answer with
        # a code for someone else: interactively ask for a login, after a fresh login or
        # with prompt=none it is an error.
        if fresh_login or "none" in req.prompt:
            raise LoginRequiredError("The requested user is not logged in.")
        need_login = True
    if need_login:
        if "none" in req.prompt:
            raise LoginRequiredError("The user is not logged in.")
        return Decision("login")

    if session is None or session_level is None:  # pragma: no cover - guarded above
        raise AuthorizationServerError("No session.")
    acr = choose_acr(session_level, req.acr_values)
    if acr is None:
        # DESIGN.md §5: never a silently lower acr. A level a password account can reach
        # (verification, a second factor: up to STEP_UP_LIMIT) is a step-up without
        # losing the request; anything above is an error (OpenID Connect Core errata:
        # unmet_authentication_requirements).
        target = min((v for v in req.acr_values if v in LEVELS), key=rank)
        if rank(target) > rank(STEP_UP_LIMIT):
            raise UnmetAuthenticationRequirementsError("The requested authentication level cannot be met."
            )
        if "none" in req.prompt:
            # OIDC Core §3.1.2.6: prompt=none cannot show the step-up pages.
            raise InteractionRequiredError("A stronger authentication is required.")
        return Decision("stepup", target)

    if ("consent" in req.prompt and not consent_given_now) or not consent_granted:
        if "none" in req.prompt:
            raise ConsentRequiredError("The user has not consented.")
        return Decision("consent", acr)
    return Decision("issue", acr)
