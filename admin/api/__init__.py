"""The JSON administration API at ``/admin/api/v1`` (issue 6): the blueprint, built from
the route table in ``routes``; views parse, authorise, call one operation, render."""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request, stream_with_context
from werkzeug.exceptions import HTTPException, UnsupportedMediaType

from common.db import db
from common.errors import DomainError

from ..actor import record_denied
from ..errors import AdminForbiddenError
from ..service import AdminServices
from .auth import authenticate, services
from .errors import render_domain_error, render_http_error, render_unexpected
from .routes import PREFIX, ROUTES, Call, Route, openapi_document
from .schemas import FieldValidationError, validate

log = logging.getLogger("yiwang.admin.api")

bp = Blueprint("admin_api", __name__)


def _body(route: Route) -> dict[str, Any]:
    raw = request.get_data(cache=False)
    if raw and request.mimetype != "application/json":
        # RFC 9110 §15.5.16: a body is JSON and says so. text/plain and forms are what a
        # web page can send cross-origin without a CORS preflight (Fetch §3.2.3).
        raise UnsupportedMediaType()
    if route.request is None:
        return {}
    if not raw.strip():
        if route.request_required:
            raise FieldValidationError([("body", "a JSON object is required")])
        return {}
    try:
        data = json.loads(raw)
        # RFC 8259 §8.2: "\ud800" parses, but a lone surrogate is no Unicode text; the
        # database, the audit chain and the response would fail on it later.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError):
        # RecursionError: JSON nested deeper than the parser's recursion limit.
        raise FieldValidationError([("body", "is not JSON")]) from None
    validate(data, {"$ref": f"#/components/schemas/{route.request}"})
    out: dict[str, Any] = data
    return out


def _query(route: Route) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for param in route.params:
        if param.location != "query" or param.name not in request.args:
            continue
        value: Any = request.args[param.name]
        if param.schema.get("type") == "integer":
            if not value.lstrip("-").isdigit() or len(value) > 9:
                raise FieldValidationError([(param.name, "must be integer")])
            value = int(value)
        validate(value, param.schema, param.name)
        out[param.name] = value
    return out


def _path(route: Route, values: dict[str, str]) -> dict[str, str]:
    for param in route.params:
        if param.location == "path":
            validate(values[param.name], param.schema, param.name)
    return values


def _view(route: Route) -> Any:
    def view(**path: str) -> Any:
        actor = None
        try:
            actor = authenticate()
            if not actor.roles:
                raise AdminForbiddenError("no administrator role", action="admin.api.access")
            # Checked before the body is read, so a caller without the permission learns
            # nothing about validation; the operation checks it again (defence in depth).
            if route.permission is not None and not actor.can(route.permission):
                raise AdminForbiddenError(permission=route.permission.value,
                                          action=f"admin.api.{route.operation_id}")
            admin = AdminServices(services(), alert_thresholds=current_app.config["YIWANG_SETTINGS"].alert_thresholds())
            call = Call(actor, admin, _body(route), _query(route), _path(route, path))
            reply = route.handler(call)
            db.session.commit()
            if reply.after_commit:
                for step in reply.after_commit:
                    step()
                db.session.commit()
        except AdminForbiddenError as exc:
            db.session.rollback()
            if actor is not None:
                record_denied(services().audit, actor, exc)
                db.session.commit()
            return render_domain_error(exc)
        except DomainError as exc:
            db.session.rollback()
            return render_domain_error(exc)
        if reply.stream is not None:
            # Streamed after the commit above; the request context (and its database
            # session) stays open until the last line is sent.
            resp = Response(stream_with_context(reply.stream), status=reply.status, mimetype=reply.media_type)
        elif reply.body is None:
            resp = Response(status=reply.status)
        else:
            resp = jsonify(reply.body)
            resp.status_code = reply.status
        resp.headers.update(reply.headers)
        return resp

    view.__name__ = route.operation_id
    return view


for _route in ROUTES:
    bp.add_url_rule(_route.flask_rule, _route.operation_id, _view(_route), methods=[_route.method])


@bp.get(PREFIX + "/openapi.json")
def openapi() -> Any:
    # Public: it describes the API and holds no data.
    return jsonify(openapi_document(services().p.settings.issuer))


@bp.after_request
def _no_store(response: Response) -> Response:
    # Responses carry client secrets and administrative data: never cached (RFC 9111 §5.2.2.5).
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Any:
    db.session.rollback()
    return render_http_error(exc)


@bp.errorhandler(Exception)
def _unexpected(exc: Exception) -> Any:
    log.exception("admin api: unhandled error", extra={"request_id": g.get("request_id")})
    db.session.rollback()
    return render_unexpected()
