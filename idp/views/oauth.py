"""Protocol endpoints: authorization, token, userinfo, introspection, revocation,
discovery and JWKS."""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Error, UnsupportedResponseTypeError
from flask import Response, jsonify, make_response, redirect, request, url_for
from werkzeug.datastructures import MultiDict

from common.db import db

from ..assurance import LEVELS
from ..authorization import Interaction, RefuseToClient, ShowPage
from ..authorize import AuthorizationError, AuthorizationRequest, parse_request, response_mode_of
from ..claims import select_claims
from ..discovery import ENDPOINTS, provider_metadata
from ..errors import SigningKeyUnavailableError
from ..release import ConsentChoices, ConsentState
from ..server import StoredAuthorizationRequest
from ..tokens import InvalidTokenError
from . import bp
from ._web import (
    InteractionThrottledError,
    allow_form_target,
    drop_interaction,
    load_interaction,
    oauth_server,
    provider,
    render,
    save_interaction,
    services,
    sso_cookie,
    update_interaction,
)

# Fixed, client-facing descriptions per error code (STYLE.md: never exception text).
_DESCRIPTIONS = {
    "invalid_request": "The request is missing a parameter or has an invalid one.",
    "unauthorized_client": "The client may not use this response type.",
    "unsupported_response_type": "Only response_type=code is supported.",
    "invalid_scope": "The requested scope is not valid.",
    "access_denied": "The user denied the request.",
    "login_required": "The user must log in.",
    "consent_required": "The user must consent.",
    "interaction_required": "User interaction is required.",
    "server_error": "The server could not complete the request.",
    "temporarily_unavailable": "Too many requests from your network; try again in a few minutes.",
}

log = logging.getLogger("yiwang.oauth")


def _with_params(uri: str, params: list[tuple[str, str]]) -> str:
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True) + params
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def _authorization_response(redirect_uri: str, mode: str, params: list[tuple[str, str]]) -> Any:
    """Send parameters to the client: RFC 6749 §4.1.2 (query) or OAuth 2.0 Form Post
    Response Mode (form_post). RFC 9207 §2: ``iss`` in every authorization response."""
    params = [*params, ("iss", provider().settings.issuer)]
    if mode == "form_post":
        # The form posts to the client's origin: allow exactly that as a form target.
        allow_form_target(redirect_uri)
        body, status = render("idp/form_post.html", action=redirect_uri, fields=params)
        page = Response(body, status=status)
        page.headers["Cache-Control"] = "no-store"
        return page
    code = 303 if request.method == "POST" else 302
    resp = redirect(_with_params(redirect_uri, params), code=code)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _origin(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"


def _error_page(error: str, status: int = 400) -> Any:
    return render("idp/error.html", status=status, error=error)


def redirect_error(req_redirect: str, mode: str, state: str | None, error: str, description: str | None = None) -> Any:
    params = [("error", error), ("error_description", description or _DESCRIPTIONS.get(error, error))]
    if state is not None:
        params.append(("state", state))
    return _authorization_response(req_redirect, mode, params)


# RFC 6749 §4.1.2.1: the characters error_description may hold. Authlib quotes
# redirect_uri and response_type in its descriptions and raises ValueError for anything
# else ('"', '\\', non-ASCII, control characters), so such values never reach it.
_DESCRIPTION_CHARS = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")


def _consent_grant(params: MultiDict[str, str]) -> Any:
    """Authlib's checks of client, redirect URI, response type and scope. Raises
    ``OAuth2Error``, with ``redirect_uri`` set only once client and URI are verified."""
    redirect_uri = params.get("redirect_uri") or ""
    response_type = params.get("response_type") or ""
    safe_type = bool(_DESCRIPTION_CHARS.fullmatch(response_type))
    if not (safe_type and _DESCRIPTION_CHARS.fullmatch(redirect_uri)):
        client = services().client(params.get("client_id"))
        if client is None or not client.check_redirect_uri(redirect_uri):
            # RFC 6749 §4.1.2.1: nothing verified to redirect to: an error page.
            raise InvalidRequestError()
        if not safe_type:
            raise UnsupportedResponseTypeError("invalid", redirect_uri=redirect_uri)
    oauth_req = StoredAuthorizationRequest(provider().settings.issuer + ENDPOINTS["authorization"], params)
    return oauth_server().get_consent_grant(oauth_req)


def handle_authorization(params: MultiDict[str, str], interaction_id: str | None, record: dict[str, Any] | None) -> Any:
    """Validate with Authlib and ``idp.authorize``, let ``idp.authorization`` decide once,
    render what it decided."""
    prov = provider()
    now = prov.clock.timestamp()
    try:
        grant = _consent_grant(params)
    except OAuth2Error as exc:
        # RFC 6749 §4.1.2.1: redirect only once client and redirect URI are verified;
        # Authlib sets redirect_uri on the error exactly then.
        if exc.redirect_uri:
            return redirect_error(exc.redirect_uri, response_mode_of(params), params.get("state"), exc.error)
        return _error_page(exc.error)
    redirect_uri = grant.redirect_uri
    try:
        req = parse_request(params, grant.request.client, redirect_uri, grant.request.scope or "",
                            admin_max_auth_age=prov.settings.admin_max_auth_age)
    except AuthorizationError as exc:
        return redirect_error(redirect_uri, response_mode_of(params), params.get("state"), exc.error, exc.description)
    interaction = None
    if record is not None:
        interaction = Interaction(created_at=record["created_at"], consent_done=bool(record.get("consent_done")),
                                  confirmed=frozenset(record.get("confirmed") or ()),
                                  acting_for=record.get("acting_for"))
    outcome = services().authorization.decide(req, sso_cookie(), interaction, now)
    if isinstance(outcome, ShowPage):
        try:
            interaction_id = interaction_id or save_interaction(params, created_at=now)
        except InteractionThrottledError:
            # RFC 6749 §4.1.2.1: client and redirect URI are verified, so the client hears it.
            return redirect_error(req.redirect_uri, req.response_mode, req.state, "temporarily_unavailable")
        target = {"login": "idp.login", "consent": "idp.consent", "stepup": "idp.stepup",
                  "act_as": "idp.act_as"}[outcome.page]
        return redirect(url_for(target, interaction=interaction_id), code=303 if request.method == "POST" else 302)
    if interaction_id:
        drop_interaction(interaction_id)
    db.session.commit()
    if isinstance(outcome, RefuseToClient):
        return redirect_error(req.redirect_uri, req.response_mode, req.state, outcome.error, outcome.description)
    out = [("code", outcome.code)]
    if req.state is not None:
        out.append(("state", req.state))
    return _authorization_response(req.redirect_uri, req.response_mode, out)


@bp.route("/authorize", methods=["GET", "POST"])
def authorize() -> Any:
    # OIDC Core §3.1.2.1: GET and POST (form-encoded) are both supported.
    params = request.args if request.method == "GET" else request.form
    return handle_authorization(MultiDict(params), None, None)


@bp.get("/authorize/resume")
def authorize_resume() -> Any:
    iid = request.args.get("interaction")
    record = load_interaction(iid)
    if record is None:
        return _error_page("interaction_expired")
    return handle_authorization(record["params"], iid, record)


def consent_offer(req: AuthorizationRequest, account_id: int) -> tuple[set[str], ConsentState, ConsentChoices]:
    """(requested claims, remembered decisions, what the consent page asks now):
    ``AuthorizationFlow.consent_offer``."""
    offer = services().authorization.consent_offer(req, account_id)
    return offer.requested, offer.state, offer.choices


def mark_consent_done(iid: str, record: dict[str, Any], confirmed: set[str]) -> None:
    """The citizen decided in this authorization; ``confirmed`` sensitive claims are
    released for it alone (kept in the interaction, never remembered)."""
    record["consent_done"] = True
    record["confirmed"] = sorted(confirmed)
    update_interaction(iid, record)


def pending_request(record: dict[str, Any]) -> AuthorizationRequest | None:
    """Re-validate a stored request for the login and consent pages."""
    params = record["params"]
    try:
        grant = _consent_grant(params)
        return parse_request(params, grant.request.client, grant.redirect_uri, grant.request.scope or "",
                             admin_max_auth_age=provider().settings.admin_max_auth_age)
    except (OAuth2Error, AuthorizationError):
        return None


# -- token endpoint -------------------------------------------------------------------


@bp.post("/token")
def token() -> Any:
    response = oauth_server().create_token_response()
    # Errors are ordinary responses: commit them too, so a replayed code's or reused
    # refresh token's revocation is kept (RFC 9700 §4.14.2).
    db.session.commit()
    return response


@bp.errorhandler(SigningKeyUnavailableError)
def signing_key_unavailable(exc: SigningKeyUnavailableError) -> Any:
    """Issue 11: a server fault, not a missing resource. RFC 6749 §5.2 has no code for it;
    ``temporarily_unavailable`` (§4.1.2.1) with Retry-After (RFC 9110 §10.2.3) tells the
    client library to try again; pages get the error page with the same status."""
    db.session.rollback()
    log.error("no active signing key: run `flask --app wsgi keys ensure`", extra={"detail": exc.detail})
    if request.endpoint in _JSON_ENDPOINTS:
        resp = jsonify({"error": exc.code, "error_description": exc.public_message})
    else:
        body, status = render("idp/error.html", exc.status_code, error=exc.code)
        resp = make_response(body, status)
    resp.status_code = exc.status_code
    resp.headers["Retry-After"] = "30"
    resp.headers["Cache-Control"] = "no-store"
    return resp


_JSON_ENDPOINTS = frozenset({"idp.token", "idp.introspect", "idp.revoke", "idp.userinfo", "idp.jwks"})


def _feature_off(name: str) -> Any:
    """A switched-off feature (idp.protocol.Features) is not there: 404, as for any path."""
    return jsonify({"error": "not_found"}), 404


@bp.post("/introspect")
def introspect() -> Any:
    if not provider().settings.features.introspection:
        return _feature_off("introspection")
    response = oauth_server().create_endpoint_response("introspection")
    db.session.commit()
    return response


@bp.post("/revoke")
def revoke() -> Any:
    if not provider().settings.features.revocation:
        return _feature_off("revocation")
    response = oauth_server().create_endpoint_response("revocation")
    db.session.commit()
    return response


# -- userinfo -------------------------------------------------------------------------


def _bearer_error(status: int, error: str | None, description: str | None = None) -> Any:
    # RFC 6750 §3: the challenge names the error; no error code when no token was sent.
    challenge = 'Bearer realm="yiwang"'
    body: dict[str, str] = {}
    if error:
        challenge += f', error="{error}"'
        body["error"] = error
        if description:
            challenge += f', error_description="{description}"'
            body["error_description"] = description
    resp = jsonify(body)
    resp.status_code = status
    resp.headers["WWW-Authenticate"] = challenge
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.route("/userinfo", methods=["GET", "POST"])
def userinfo() -> Any:
    # OIDC Core §5.3.1: GET and POST; RFC 6750 §2.1 header, §2.2 form body. Tokens in
    # the query string (§2.3) are refused: they end up in logs.
    header = request.headers.get("Authorization", "")
    token = None
    form_post = request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded"
    if header[:7].lower() == "bearer ":
        token = header[7:].strip()
        # RFC 6750 §2 / §3.1: more than one method in one request is invalid_request.
        if form_post and "access_token" in request.form:
            return _bearer_error(400, "invalid_request", "Use one method to send the token.")
    elif request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded":
        token = request.form.get("access_token")
        if header:
            return _bearer_error(400, "invalid_request", "Use one method to send the token.")
    if request.args.get("access_token"):
        return _bearer_error(400, "invalid_request", "Tokens in the query string are not accepted.")
    if not token:
        return _bearer_error(401, None)
    svc = services()
    try:
        claims = svc.tokens.validate_access_token(token)
    except InvalidTokenError:
        return _bearer_error(401, "invalid_token", "The access token is invalid, expired or revoked.")
    if claims.account_id is None or "openid" not in claims.scope.split():
        return _bearer_error(403, "insufficient_scope", "The token does not carry the openid scope.")
    # Hot path (DESIGN.md §7: one database read): the columns claims need, read outside
    # any transaction, without building an ORM object.
    account: Any = svc.accounts.read_view(claims.account_id)
    if account is None or account.status != "active":
        return _bearer_error(401, "invalid_token", "The access token is invalid, expired or revoked.")
    # OIDC Core §5.3.2: sub is always returned and equals the ID token's sub.
    body = {"sub": claims.sub}
    # Issue 5: exactly the claims this token was issued to release ("clm": the grant's
    # consented, allowed claims), still allowed by the client's current policy; values
    # computed now, so derived claims are right on the day of the request.
    released = claims.raw.get("clm")
    names = {n for n in released if isinstance(n, str)} if isinstance(released, list) else set()
    client = svc.client(claims.client_id)
    names = client.allowed_claims(names) if client is not None else set()
    context = claims.raw.get("ctx") if isinstance(claims.raw.get("ctx"), dict) else None
    body.update(select_claims(svc.available_claims(account, names, context), names))
    if isinstance(claims.raw.get("act"), dict):
        # RFC 8693 §4.1: who is acting for the subject.
        body["act"] = claims.raw["act"]
    resp = jsonify(body)
    resp.headers["Cache-Control"] = "no-store"
    return resp


# -- discovery ------------------------------------------------------------------------


@bp.get("/.well-known/openid-configuration")
@bp.get("/.well-known/oauth-authorization-server")
def discovery() -> Any:
    resp = jsonify(provider_metadata(provider().settings.issuer, LEVELS, provider().settings.features))
    resp.headers["Cache-Control"] = "public, max-age=3600"
    resp.headers["Access-Control-Allow-Origin"] = "*"
    return resp


@bp.get("/jwks.json")
def jwks() -> Any:
    svc = services()
    resp = jsonify(provider().key_cache.jwks(svc.keys))
    # Short cache: rotation publishes the next key long before it is used.
    resp.headers["Cache-Control"] = "public, max-age=300"
    resp.headers["Access-Control-Allow-Origin"] = "*"
    return resp
