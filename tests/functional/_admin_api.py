"""Helpers for the admin API tests: administrators with TOTP, an admin client, and
access tokens obtained either through the real code flow (login + TOTP + consent) or
from the token service with the parameters that flow produces."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyotp

from admin.actor import Actor
from admin.service import AdminServices
from common.db import db
from tests.helpers import Browser, RegisteredTestClient, form_field, pkce_pair, query_of

API = "/admin/api/v1"
PASSWORD = "administrators use long passphrases"


@dataclass
class Admin:
    account_id: int
    username: str
    totp_secret: str


def make_admin(services: Any, clock: Any, username: str, *roles: str) -> Admin:
    """A person's account with an enrolled authenticator (TOTP) and ``roles``."""
    account = services.accounts.create(username=username, password=PASSWORD)
    secret = services.realname.start_totp_enrollment(account.id, pyotp.random_base32(32))
    assert services.realname.confirm_totp(account.id, pyotp.TOTP(secret).at(clock.timestamp()))
    for role in roles:
        AdminServices(services).admins.grant(Actor.cli(), account.id, role)
    db.session.commit()
    return Admin(account.id, username, secret)


def make_admin_client(services: Any) -> RegisteredTestClient:
    """A first-party administration tool (issue 17: the only kind of client that may hold
    the admin scope)."""
    row, secret = services.clients.create(
        name="Admin Tool", redirect_uris=["https://admin-tool.example.test/cb"], scopes=["openid", "admin"],
        first_party=True,
    )
    db.session.commit()
    return RegisteredTestClient(row.client_id, secret, "https://admin-tool.example.test/cb")


def token_via_login(http: Any, clock: Any, client: RegisteredTestClient, admin: Admin,
                    scope: str = "openid admin") -> dict[str, Any]:
    """The real flow: authorize → password → TOTP → consent → code → token."""
    browser = Browser(http)
    verifier, challenge = pkce_pair()
    resp = browser.authorize(client, scope=scope, challenge=challenge)
    clock.advance(31)  # a fresh TOTP window: the enrolment code may not be replayed
    for _ in range(12):
        if resp.status_code == 200:
            html = resp.get_data(as_text=True)
            if 'name="totp"' in html:
                resp = http.post("/login/mfa", data={
                    "csrf_token": form_field(html, "csrf_token"), "pending": form_field(html, "pending"),
                    "totp": pyotp.TOTP(admin.totp_secret).at(clock.timestamp()), "action": "verify"})
            elif 'name="password"' in html:
                resp = http.post("/login", data={
                    "csrf_token": form_field(html, "csrf_token"), "interaction": form_field(html, "interaction"),
                    "identifier": admin.username, "password": PASSWORD})
            elif 'name="decision"' in html:
                resp = browser.consent(resp)
            else:
                raise AssertionError(html[:400])
            continue
        assert resp.status_code in (302, 303), resp.status_code
        location = resp.headers["Location"]
        if location.startswith(client.redirect_uri):
            code = query_of(location)["code"]
            token = http.post("/token", auth=client.auth, data={
                "grant_type": "authorization_code", "code": code, "redirect_uri": client.redirect_uri,
                "code_verifier": verifier})
            assert token.status_code == 200, token.get_json()
            return dict(token.get_json())
        resp = browser.follow(resp)
    raise AssertionError("too many steps")


def issued_token(services: Any, clock: Any, client_id: str, account_id: int, *, scope: str = "openid admin",
                 amr: tuple[str, ...] = ("pwd", "otp")) -> str:
    """A token from the token service with what the code flow passes after a TOTP login
    (see ``idp/server.py``): the subject at this client, the scope, auth_time, acr, amr."""
    account = services.accounts.get(account_id)
    client = services.client(client_id)
    token, _, _ = services.tokens.issue_access_token(
        client_id=client_id, sub=services.subject(account.subject_seed, client), scope=scope,
        account_id=account_id, grant_id=None, auth_time=clock.timestamp(), acr="cn-l0", amr=list(amr),
        sid="test-session",
    )
    return str(token)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def admin_headers(services: Any, clock: Any) -> Any:
    """``headers(*roles)``: bearer headers of an administrator holding ``roles``, one
    account and token per distinct role set (the ``as_admin`` fixtures)."""
    tool = make_admin_client(services)
    cache: dict[str, dict[str, str]] = {}

    def headers(*roles: str) -> dict[str, str]:
        key = ",".join(roles)
        if key not in cache:
            admin = make_admin(services, clock, f"admin{len(cache)}", *roles)
            cache[key] = bearer(issued_token(services, clock, tool.client_id, admin.account_id))
        return cache[key]

    return headers
