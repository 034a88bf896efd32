"""The JSON administration API at ``/admin/api/v1`` (issue 6): the blueprint, built from
the route table in ``routes``; views parse, authorise, call one operation, render."""

from __future__ import annotations

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
from .bodies import Body, FieldValidationError, Params, parse_body, parse_params
from .errors import render_domain_error, render_http_error, render_unexpected
from .routes import PREFIX, ROUTES, Call, Reply, Route, openapi_document

log = logging.getLogger("yiwang.admin.api")

bp = Blueprint("admin_api", __name__)


def _body(route: Route) -> Body | None:
    raw = request.get_data(cache=False)
    if raw and request.mimetype != "application/json":
        # RFC 9110 §15.5.16: a body is JSON and says so. text/plain and forms are what a
        # web page can send cross-origin without a CORS preflight (Fetch §3.2.3).
        raise UnsupportedMediaType()
    if route.request is None:
        return None
    if not raw.strip():
        if route.request_required:
            raise FieldValidationError([("body", "a JSON object is required")])
        return route.request()
    return parse_body(route.request, raw)


def _params(route: Route, path: dict[str, str]) -> Params | None:
    if route.params is None:
        return None
    query = {name: request.args[name] for name in route.params.model_fields if name in request.args}
    return parse_params(route.params, {**query, **path})


def _response(route: Route, reply: Reply) -> Response:
    model = route.success[1]
    if reply.body is None and model is None:
        return Response(status=reply.status)
    # What is documented is what is sent: the body is an instance of the route's model,
    # serialised by it (a member left unset, e.g. a profile's default, is left out).
    if reply.body is None or type(reply.body) is not model:
        raise TypeError(f"{route.operation_id} replied {type(reply.body).__name__}")
    resp = jsonify(reply.body.model_dump(mode="json", exclude_unset=True))
    resp.status_code = reply.status
    return resp


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
            call = Call(actor, admin, _body(route), _params(route, path))
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
        else:
            resp = _response(route, reply)
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
