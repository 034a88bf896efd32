"""Helpers for the console tests: administrators (with roles and an authenticator) and
the console login driven through the Flask test client, IdP pages included."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pyotp
from flask.testing import FlaskClient

from admin.models import AdminRole
from common.clock import FrozenClock
from common.db import db
from tests.helpers import form_field

ISSUER = "http://127.0.0.1:5000"
CONSOLE_COOKIE = "yiwang_admin"
LOGIN_COOKIE = "yiwang_admin_login"
PASSWORD = "admin passphrase 2024"


@dataclass
class AdminUser:
    username: str
    password: str
    account_id: int
    totp_secret: str | None


def make_admin(services: Any, clock: FrozenClock, username: str, roles: list[str], *, totp: bool = True) -> AdminUser:
    """An account holding ``roles`` (granted directly in the table, as the bootstrap
    command would) and, unless ``totp`` is False, an enrolled authenticator."""
    account = services.accounts.create(username=username, password=PASSWORD)
    for role in roles:
        db.session.add(AdminRole(account_id=account.id, role=role, granted_by="admin:cli",
                                 granted_at=datetime.now(UTC)))
    secret = None
    if totp:
        secret = services.realname.start_totp_enrollment(account.id, pyotp.random_base32(32))
        assert services.realname.confirm_totp(account.id, pyotp.TOTP(secret).at(clock.timestamp()))
    db.session.commit()
    # The enrolment code is spent (RFC 6238 §5.2 replay check): log in in the next step.
    clock.advance(30)
    return AdminUser(username, PASSWORD, account.id, secret)


def local(location: str) -> str:
    """A Location on our issuer as a local path (the test client's cookies are per host)."""
    parts = urlsplit(location)
    if parts.netloc:
        assert f"{parts.scheme}://{parts.netloc}" == ISSUER, location
        return parts.path + ("?" + parts.query if parts.query else "")
    return location


def start_login(http: FlaskClient) -> Any:
    """GET /admin/login; returns the redirect to /authorize."""
    resp = http.get("/admin/login")
    assert resp.status_code == 302, resp.status_code
    assert resp.headers["Location"].startswith(ISSUER + "/authorize?")
    return resp


def idp_login(http: FlaskClient, admin: AdminUser, clock: FrozenClock, authorize_location: str) -> str:
    """Go through the IdP's pages (password, then the authenticator when enrolled) and
    return the redirect back to the console's callback."""
    resp = http.get(local(authorize_location))
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/login?"), resp.headers.get("Location")
    page = http.get(resp.headers["Location"])
    html = page.get_data(as_text=True)
    resp = http.post("/login", data={"csrf_token": form_field(html, "csrf_token"),
                                     "interaction": form_field(html, "interaction"),
                                     "identifier": admin.username, "password": admin.password})
    assert resp.status_code == 303, resp.get_data(as_text=True)[:300]
    if resp.headers["Location"].startswith("/login/mfa"):
        assert admin.totp_secret is not None
        page = http.get(resp.headers["Location"])
        html = page.get_data(as_text=True)
        resp = http.post("/login/mfa", data={"csrf_token": form_field(html, "csrf_token"),
                                             "pending": form_field(html, "pending"), "action": "verify",
                                             "totp": pyotp.TOTP(admin.totp_secret).at(clock.timestamp())})
        assert resp.status_code == 303, resp.get_data(as_text=True)[:300]
    resp = http.get(resp.headers["Location"])  # /authorize/resume
    assert resp.status_code == 302, resp.get_data(as_text=True)[:300]
    location: str = resp.headers["Location"]
    assert location.startswith(ISSUER + "/admin/callback?"), location
    return location


def console_login(http: FlaskClient, admin: AdminUser, clock: FrozenClock) -> Any:
    """The whole console login; returns the callback's response."""
    callback = idp_login(http, admin, clock, start_login(http).headers["Location"])
    return http.get(local(callback))


def csrf_of(http: FlaskClient, path: str = "/admin/") -> str:
    return form_field(http.get(path).get_data(as_text=True), "csrf_token")
