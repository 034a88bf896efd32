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

from common.db import current_session, db

from .. import oauth_errors
from ..assurance import LEVELS
from ..authorization import Interaction, RefuseToClient, ShowPage
from ..authorize import AuthorizationRequest, parse_request, response_mode_of
from ..discovery import ENDPOINTS, provider_metadata
from ..errors import SigningKeyUnavailableError
from ..release import ConsentChoices, ConsentState
from ..server import StoredAuthorizationRequest
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


def redirect_error(req_redirect: str, mode: str, state: str | None, error: oauth_errors.AuthorizationResponseError) -> Any:
    """RFC 6749 §4.1.2.1: the error, its fixed description and the request's state, at the
    client's verified redirect URI."""
    params = error.params()
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
            return redirect_error(exc.redirect_uri, response_mode_of(params), params.get("state"),
                                  oauth_errors.AuthorizationResponseError.for_code(exc.error))
        return _error_page(exc.error)
    redirect_uri = grant.redirect_uri
    try:
        req = parse_request(params, grant.request.client, redirect_uri, grant.request.scope or "",
                            admin_max_auth_age=prov.settings.admin_max_auth_age)
    except oauth_errors.AuthorizationResponseError as exc:
        return redirect_error(redirect_uri, response_mode_of(params), params.get("state"), exc)
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
            return redirect_error(req.redirect_uri, req.response_mode, req.state,
                                  oauth_errors.AuthorizationThrottledError())
        target = {"login": "idp.login", "consent": "idp.consent", "stepup": "idp.stepup",
                  "act_as": "idp.act_as"}[outcome.page]
        return redirect(url_for(target, interaction=interaction_id), code=303 if request.method == "POST" else 302)
    if interaction_id:
        drop_interaction(interaction_id)
    db.session.commit()
    if isinstance(outcome, RefuseToClient):
        return redirect_error(req.redirect_uri, req.response_mode, req.state, outcome.error)
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
    except (OAuth2Error, oauth_errors.AuthorizationResponseError):
        return None


# -- token endpoint -------------------------------------------------------------------


def _commit_if_begun() -> None:
    # Issue 12: client_credentials and introspection usually touch no table (clients and
    # keys come from the per-process caches, revocation from the store); an empty commit
    # still costs ~24 µs of CPU (measured in-process; ~2% of a client_credentials request).
    # Whatever did begin a transaction (a code, a refresh token, a cache miss) is
    # committed as before.
    if current_session(db.session).in_transaction():
        db.session.commit()


@bp.post("/token")
def token() -> Any:
    response = oauth_server().create_token_response()
    # Errors are ordinary responses: commit them too, so a replayed code's or reused
    # refresh token's revocation is kept (RFC 9700 §4.14.2).
    _commit_if_begun()
    return response


@bp.errorhandler(oauth_errors.OAuthError)
def oauth_error(exc: oauth_errors.OAuthError) -> Any:
    """Our typed OAuth errors render themselves (status, JSON body, ``WWW-Authenticate``,
    Retry-After); a page that meets one gets the error page with the same status and
    headers."""
    db.session.rollback()
    if request.endpoint in _JSON_ENDPOINTS:
        return exc.render()
    body, status = render("idp/error.html", exc.status_code, error=exc.code)
    return make_response(body, status, exc.headers())


@bp.errorhandler(SigningKeyUnavailableError)
def signing_key_unavailable(exc: SigningKeyUnavailableError) -> Any:
    """Issue 11: a server fault, not a missing resource: ``temporarily_unavailable`` with
    Retry-After (RFC 9110 §10.2.3) tells the client library to try again; the log tells
    the operator what to run."""
    log.error("no active signing key: run `flask --app wsgi keys ensure`", extra={"detail": exc.detail})
    return oauth_error(exc)


_JSON_ENDPOINTS = frozenset({"idp.token", "idp.introspect", "idp.revoke", "idp.userinfo", "idp.jwks"})


def _feature_off(name: str) -> Any:
    """A switched-off feature (idp.protocol.Features) is not there: 404, as for any path."""
    return jsonify({"error": "not_found"}), 404


@bp.post("/introspect")
def introspect() -> Any:
    if not provider().settings.features.introspection:
        return _feature_off("introspection")
    response = oauth_server().create_endpoint_response("introspection")
    _commit_if_begun()
    return response


@bp.post("/revoke")
def revoke() -> Any:
    if not provider().settings.features.revocation:
        return _feature_off("revocation")
    response = oauth_server().create_endpoint_response("revocation")
    _commit_if_begun()
    return response


# -- userinfo -------------------------------------------------------------------------


# RFC 6750 §2 / §3.1: a client uses one method per request to send the token.
_ONE_METHOD = "Use one method to send the token."


def _bearer_token() -> str:
    """The access token of a userinfo request. OIDC Core §5.3.1: GET and POST; RFC 6750
    §2.1 header, §2.2 form body. Tokens in the query string (§2.3) are refused: they end
    up in logs. Raises ``InvalidRequestError`` or ``TokenRequiredError``."""
    header = request.headers.get("Authorization", "")
    token = None
    form_post = request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded"
    if header[:7].lower() == "bearer ":
        token = header[7:].strip()
        if form_post and "access_token" in request.form:
            raise oauth_errors.InvalidRequestError("header and form", public_message=_ONE_METHOD)
    elif form_post:
        token = request.form.get("access_token")
        if header:
            raise oauth_errors.InvalidRequestError("other scheme and form", public_message=_ONE_METHOD)
    if request.args.get("access_token"):
        raise oauth_errors.InvalidRequestError("query string", public_message="Tokens in the query string are not accepted.")
    if not token:
        raise oauth_errors.TokenRequiredError()
    return token


@bp.route("/userinfo", methods=["GET", "POST"])
def userinfo() -> Any:
    svc = services()
    resp = jsonify(svc.userinfo.response(svc.tokens.validate_access_token(_bearer_token())))
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
