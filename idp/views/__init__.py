"""HTTP endpoints of the identity provider (protocol endpoints and browser pages)."""

from flask import Blueprint

bp = Blueprint("idp", __name__, template_folder="../templates", static_folder="../static", static_url_path="/static")

from . import account, certificate, company, oauth, pages, registration, second_factor  # noqa: E402,F401  (routes register on import)
