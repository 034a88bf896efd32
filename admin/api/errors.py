"""The one place that turns errors into admin API responses: RFC 6750 §3 bearer
challenges for missing or unusable tokens, RFC 9457 problem details for everything else.
Bodies carry fixed public messages and stable codes, never exception text."""

from __future__ import annotations

import logging
from typing import Any

from flask import Response, g, jsonify
from werkzeug.exceptions import HTTPException

from common.errors import DomainError
from idp.oauth_errors import BearerTokenError, OAuthError

from .bodies import FieldError, FieldValidationError, Problem

log = logging.getLogger("yiwang.admin.api")

PROBLEM_TYPE = "about:blank"
# RFC 6750 §3: the API is a protection space of its own, apart from userinfo's.
REALM = "yiwang-admin"
_TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
           409: "Conflict", 413: "Content Too Large", 415: "Unsupported Media Type", 422: "Unprocessable Content",
           429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}
# Statuses a domain error keeps; any other 4xx is a refused request content (422).
_KEPT = frozenset({401, 403, 404, 409, 429})


def problem(status: int, code: str, detail: str | None = None, *, errors: list[tuple[str, str]] | None = None,
            headers: dict[str, str] | None = None) -> Response:
    """An RFC 9457 §3 problem: ``type`` about:blank with the status's title, and our
    stable ``code`` extension member."""
    members: dict[str, Any] = {"type": PROBLEM_TYPE, "title": _TITLES.get(status, "Error"), "status": status,
                               "code": code}
    if detail:
        members["detail"] = detail
    if errors:
        members["errors"] = [FieldError(field=f, detail=m) for f, m in errors]
    resp = jsonify(Problem(**members).model_dump(mode="json", exclude_unset=True))
    resp.status_code = status
    resp.mimetype = "application/problem+json"
    for name, value in (headers or {}).items():
        resp.headers[name] = value
    return resp


def render_domain_error(exc: DomainError) -> Response:
    """DomainError → response. 400-class validation errors become 422 (the request was
    well-formed JSON but its content is refused, RFC 9110 §15.5.21); server faults (5xx,
    e.g. no signing key) and 429 keep their status, with Retry-After when they say when."""
    extra = {"request_id": g.get("request_id"), "code": exc.code, "detail": exc.detail}
    if exc.status_code >= 500:
        # Not the caller's doing: the operator has something to fix (e.g. `flask keys ensure`).
        log.error("admin api server fault", extra=extra)
    else:
        log.info("admin api refused", extra=extra)
    if isinstance(exc, BearerTokenError):
        # RFC 6750 §3: the error's own challenge, in this API's protection space.
        return problem(exc.status_code, exc.code, exc.public_message, headers=exc.headers(REALM))
    if isinstance(exc, FieldValidationError):
        return problem(422, exc.code, exc.public_message, errors=exc.errors)
    status = exc.status_code if exc.status_code in _KEPT or exc.status_code >= 500 else 422
    # RFC 9110 §10.2.3: when the caller may try again.
    retry_after = exc.retry_after if isinstance(exc, OAuthError) else None
    # An error that names its field (e.g. ``AuditQueryError``) says so in ``errors``.
    field = getattr(exc, "field", "")
    return problem(status, exc.code, exc.public_message,
                   errors=[(field, exc.public_message)] if isinstance(field, str) and field else None,
                   headers={"Retry-After": str(retry_after)} if retry_after is not None else None)


def render_http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    headers = {}
    if status == 405 and exc.get_response().headers.get("Allow"):
        headers["Allow"] = exc.get_response().headers["Allow"]
    return problem(status, (exc.name or "error").lower().replace(" ", "_"), headers=headers)


def render_unexpected() -> Response:
    # STYLE.md: an unmapped error is a generic server error; the traceback is logged
    # (with the request id) by the caller, never sent.
    return problem(500, "server_error", "An unexpected error occurred.")
