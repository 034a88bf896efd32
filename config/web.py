"""Cross-cutting HTTP behaviour: request ids, JSON access log, metrics (for allowed
networks or a bearer token only), security headers (SECURITY.md "Pages and sessions"),
health and readiness probes, error pages."""

from __future__ import annotations

import ipaddress
import logging
import time
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, g, jsonify, make_response, request
from sqlalchemy import text
from werkzeug.exceptions import HTTPException

from common.crypto import constant_time_equals, random_token
from common.db import db
from idp.keys import ALGORITHMS
from idp.oauth_errors import InvalidTokenError, TokenRequiredError

from .metrics import PrometheusMetrics

log = logging.getLogger("yiwang.http")

_PAGE_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}


def _csp() -> str:
    form_action = " ".join(["'self'", *sorted(g.get("csp_form_action", ()))])
    frame_src = " ".join(g.get("csp_frame_src", ())) or "'none'"
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"form-action {form_action}; frame-src {frame_src}; frame-ancestors 'none'; "
        "base-uri 'none'; object-src 'none'"
    )


# Headers a proxy adds to say whom it forwards for.
_FORWARDING_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")


@dataclass(frozen=True)
class MetricsAccess:
    """Who may read ``/metrics``: a client address in ``networks``, or anyone presenting
    ``token`` as a bearer token. ``trusted_proxies`` as given to ProxyFix."""

    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    token: str | None = None
    trusted_proxies: int = 0


def _from_allowed_network(access: MetricsAccess) -> bool:
    # Policy: the allow-list applies to the client address ProxyFix derived
    # (request.remote_addr), not to the TCP peer. Behind the TLS proxy every request's peer
    # is the proxy itself (loopback in the README set-up), so a peer check would open
    # /metrics to the whole internet through the proxy; ProxyFix takes the address from
    # the X-Forwarded-For entry the trusted proxy wrote, which a client cannot forge.
    # Without declared proxies a forwarding header means an undeclared proxy is in front:
    # the peer address then says nothing about the client, so it is not trusted.
    if access.trusted_proxies == 0 and any(name in request.headers for name in _FORWARDING_HEADERS):
        return False
    try:
        address = ipaddress.ip_address((request.remote_addr or "").split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in access.networks)


# RFC 6750 §3: the scraper's protection space.
_METRICS_REALM = "metrics"


def _metrics_refusal(access: MetricsAccess) -> Response | None:
    """None when the request may read the metrics, else the 401 bearer challenge or the
    403 refusal (no body beyond the error)."""
    authorization = request.headers.get("Authorization")
    if authorization is not None and access.token is not None:
        scheme, _, presented = authorization.partition(" ")
        # RFC 6750 §2.1; Security: compared in constant time.
        if scheme.lower() == "bearer" and presented and constant_time_equals(presented, access.token):
            return None
        return make_response(InvalidTokenError("wrong metrics token").render(_METRICS_REALM))
    if _from_allowed_network(access):
        return None
    if access.token is not None:
        # RFC 6750 §3: a protected resource answers a request without a token with a challenge.
        return make_response(TokenRequiredError().render(_METRICS_REALM))
    resp = jsonify({"error": "forbidden"})
    resp.status_code = 403
    resp.headers["Cache-Control"] = "no-store"
    return resp


def install(app: Flask, metrics: PrometheusMetrics, *, hsts: bool, metrics_access: MetricsAccess) -> None:
    @app.before_request
    def _start() -> None:
        incoming = request.headers.get("X-Request-Id", "")
        g.request_id = incoming if 0 < len(incoming) <= 64 and incoming.isascii() else random_token(12)
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        for name, value in _PAGE_HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers["Content-Security-Policy"] = _csp()
        if hsts:
            response.headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
        if response.mimetype == "text/html":
            response.headers.setdefault("Cache-Control", "no-store")
        response.headers["X-Request-Id"] = g.get("request_id", "")
        endpoint = request.endpoint or "unmatched"
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        metrics.observe(endpoint, request.method, response.status_code, elapsed)
        if endpoint not in ("ops.healthz", "ops.metrics"):
            # The path only, never the query string: it carries codes, state and hints.
            log.info(
                "request",
                extra={
                    "request_id": g.get("request_id"),
                    "method": request.method,
                    "path": request.path,
                    "endpoint": endpoint,
                    "status": response.status_code,
                    "duration_ms": round(elapsed * 1000, 2),
                    **g.get("log_extra", {}),
                },
            )
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        return jsonify({"error": exc.name.lower().replace(" ", "_")}), exc.code or 500

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        # STYLE.md: unmapped errors become a generic server_error; the traceback goes to
        # the log (with the request id), never to the client.
        log.exception("unhandled error", extra={"request_id": g.get("request_id")})
        db.session.rollback()
        return jsonify({"error": "server_error", "request_id": g.get("request_id")}), 500

    @app.get("/healthz", endpoint="ops.healthz")
    def healthz() -> Any:
        return jsonify({"status": "ok"})

    @app.get("/readyz", endpoint="ops.readyz")
    def readyz() -> Any:
        checks = {"database": False, "store": False}
        try:
            db.session.execute(text("SELECT 1"))
            checks["database"] = True
        except Exception:  # noqa: BLE001 - any failure means not ready
            log.warning("readiness: database unreachable", extra={"request_id": g.get("request_id")})
            db.session.rollback()
        checks["store"] = app.extensions["yiwang.provider"].store.ping()
        # Issue 11: without an active signing key no token can be issued.
        checks["signing_keys"] = False
        if checks["database"]:
            try:
                services = app.extensions["yiwang.provider"].services(db.session)
                checks["signing_keys"] = set(services.keys.active_kids()) >= set(ALGORITHMS)
            except Exception:  # noqa: BLE001 - a missing table or any failure means not ready
                db.session.rollback()
            if not checks["signing_keys"]:
                log.warning("readiness: no active signing key; run `flask --app wsgi keys ensure`")
        ok = all(checks.values())
        return jsonify({"status": "ok" if ok else "unavailable", "checks": checks}), 200 if ok else 503

    @app.get("/metrics", endpoint="ops.metrics")
    def metrics_view() -> Any:
        # Issue 17: metrics tell who logs in how often and which clients fail; not public.
        refusal = _metrics_refusal(metrics_access)
        if refusal is not None:
            return refusal
        resp = Response(metrics.render(), mimetype=metrics.content_type)
        resp.headers["Cache-Control"] = "no-store"
        return resp
