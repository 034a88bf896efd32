"""Cross-cutting HTTP behaviour: request ids, JSON access log, metrics, security headers
(SECURITY.md "Pages and sessions"), health and readiness probes, error pages."""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Flask, Response, g, jsonify, request
from sqlalchemy import text
from werkzeug.exceptions import HTTPException

from common.crypto import random_token
from common.db import db

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


def install(app: Flask, metrics: PrometheusMetrics, *, hsts: bool) -> None:
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
        ok = all(checks.values())
        return jsonify({"status": "ok" if ok else "unavailable", "checks": checks}), 200 if ok else 503

    @app.get("/metrics", endpoint="ops.metrics")
    def metrics_view() -> Any:
        return Response(metrics.render(), mimetype=metrics.content_type)
