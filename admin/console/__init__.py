"""The administration console under /admin (issue 6): server-rendered, works without
JavaScript, Chinese and English, CSRF on every POST, a permission per view checked on the
server. It logs administrators in as an OpenID Connect client of this provider."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint(
    "console", __name__, url_prefix="/admin", template_folder="templates", static_folder="static",
    static_url_path="/static",
)

from . import views  # noqa: E402,F401  (routes register on import)

__all__ = ["bp"]
