"""One way to complete a login (issue 11, defects 1 and 3): whatever the login path —
password, password + second factor, registration, certificate — the same account
re-authenticating keeps its session's ``sid`` and its portals (the cookie rotates), so a
later logout reaches every portal that joined (OIDC Back-Channel Logout 1.0 §2.7); a
different account logging in on the same browser ends the old session with back-channel
logout to its portals. Every completed login writes one ``login.success`` event."""

from __future__ import annotations

import pyotp
import pytest
from sqlalchemy import select

from common.db import db
from common.models import AuditEvent
from tests.helpers import Browser, form_field, pkce_pair, verify_jwt

from ._support import backchannel_receiver, isolate_requests, register_client


@pytest.fixture(autouse=True)
def _request_contexts(app):
    isolate_requests(app)


def _portal(services, url, name, host):
    return register_client(services, name=name, redirect_uri=f"https://{host}/cb",
                           post_logout_redirect_uris=[f"https://{host}/bye"], backchannel_logout_uri=url)


def _logout(http, client, id_token):
    return http.get("/logout", query_string={"id_token_hint": id_token,
                                             "post_logout_redirect_uri": client.redirect_uri.replace("/cb", "/bye")})


def _sso_cookie(http):
    cookie = http.get_cookie("yiwang_sso")
    return cookie.value if cookie else None


def _logins(actor: str) -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == "login.success",
                                                            AuditEvent.actor == actor).order_by(AuditEvent.id)))


def test_reauthentication_keeps_the_sid_and_logout_reaches_every_portal(http, services, user):
    with backchannel_receiver() as rx_a, backchannel_receiver() as rx_b:
        a = _portal(services, rx_a.url, "Portal A", "a.example.test")
        b = _portal(services, rx_b.url, "Portal B", "b.example.test")
        browser = Browser(http)
        first = browser.tokens(a, user)
        browser.tokens(b, None)  # SSO
        cookie_before = _sso_cookie(http)
        # Portal A forces a fresh authentication (OIDC Core §3.1.2.1 max_age=0).
        again = browser.tokens(a, user, max_age="0")
        _, id_first = verify_jwt(http, first["id_token"])
        _, id_again = verify_jwt(http, again["id_token"])
        assert id_again["auth_time"] >= id_first["auth_time"]
        assert id_again["sid"] == id_first["sid"]  # one session for the relying parties
        assert _sso_cookie(http) != cookie_before  # but a new cookie (no fixation)
        assert _logout(http, a, again["id_token"]).status_code == 303
        # §2.7: portal B took part in the session and is told.
        assert len(rx_a.posts) == 1 and len(rx_b.posts) == 1


def test_prompt_login_keeps_the_session_too(http, services, user):
    with backchannel_receiver() as rx_a, backchannel_receiver() as rx_b:
        a = _portal(services, rx_a.url, "Portal A", "a.example.test")
        b = _portal(services, rx_b.url, "Portal B", "b.example.test")
        browser = Browser(http)
        first = browser.tokens(a, user)
        browser.tokens(b, None)
        again = browser.tokens(a, user, prompt="login")
        assert verify_jwt(http, again["id_token"])[1]["sid"] == verify_jwt(http, first["id_token"])[1]["sid"]
        assert _logout(http, a, again["id_token"]).status_code == 303
        assert len(rx_b.posts) == 1


def test_another_account_on_the_same_browser_ends_the_old_session_with_logout(http, services, user, other_user):
    with backchannel_receiver() as rx_b:
        a = register_client(services, name="Portal A", redirect_uri="https://a.example.test/cb")
        b = _portal(services, rx_b.url, "Portal B", "b.example.test")
        browser = Browser(http)
        first = browser.tokens(a, user)
        browser.tokens(b, None)
        # Bob logs in on Alice's browser (a kiosk): Alice's session ends and portal B,
        # which has Alice logged in, is told at once.
        second = browser.tokens(a, other_user, prompt="login")
        assert verify_jwt(http, second["id_token"])[1]["sid"] != verify_jwt(http, first["id_token"])[1]["sid"]
        assert len(rx_b.posts) == 1


def test_second_factor_reauthentication_keeps_the_sid(app, http, services, clock):
    account = services.accounts.create(username="wang", password="a long enough secret", phone="13800138077")
    services.accounts.mark_phone_verified(account)
    secret = services.realname.start_totp_enrollment(account.id, pyotp.random_base32(32))
    services.realname.confirm_totp(account.id, pyotp.TOTP(secret).at(clock.timestamp()))
    account_id = account.id
    db.session.commit()

    def log_in(browser, client, **extra):
        clock.advance(31)  # a fresh TOTP window
        resp = browser.authorize(client, challenge=pkce_pair()[1], **extra)
        page = browser.follow(resp)
        html = page.get_data(as_text=True)
        resp = http.post("/login", data={"csrf_token": form_field(html, "csrf_token"),
                                         "interaction": form_field(html, "interaction"),
                                         "identifier": "wang", "password": "a long enough secret"})
        page = http.get(resp.headers["Location"])
        html = page.get_data(as_text=True)
        return http.post("/login/mfa", data={"csrf_token": form_field(html, "csrf_token"),
                                             "pending": form_field(html, "pending"), "action": "verify",
                                             "totp": pyotp.TOTP(secret).at(clock.timestamp())})

    with backchannel_receiver() as rx_b:
        a = register_client(services, name="Portal A", redirect_uri="https://a.example.test/cb")
        b = _portal(services, rx_b.url, "Portal B", "b.example.test")
        browser = Browser(http)
        assert log_in(browser, a).status_code == 303
        sid = services.sessions.get(_sso_cookie(http)).sid
        browser.tokens(b, None)
        assert log_in(browser, a, max_age="0").status_code == 303
        session = services.sessions.get(_sso_cookie(http))
        assert session.sid == sid and b.client_id in session.clients
        assert "otp" in session.amr
    assert len(_logins(f"account:{account_id}")) == 2


def test_certificate_reauthentication_keeps_the_sid(app, http, services):
    from tests.functional.test_certificate_login import authorize_with_certificate, bundle
    from tests.support.pki import make_crl, three_provinces

    province = three_provinces()[0]
    row = services.cas.add(name=province.name, province=province.province, pem_bundle=bundle(province),
                           profile=province.profile)
    services.cas.load_crl(row.id, make_crl(province.intermediate, revoked=[]))
    db.session.commit()
    portal_a = register_client(services, name="Enterprise A", redirect_uri="https://qa.example.test/cb",
                               scopes=["openid", "legal_person"])
    portal_b = register_client(services, name="Enterprise B", redirect_uri="https://qb.example.test/cb",
                               scopes=["openid", "legal_person"])
    leaf = province.issue("91350100M000100Y43")
    first = authorize_with_certificate(http, portal_a, leaf)
    sid = services.sessions.get(_sso_cookie(http)).sid
    # SSO at B (no new login), then A asks for a fresh one (max_age=0): same sid, B kept.
    Browser(http).tokens(portal_b, None, scope="openid legal_person")
    again = authorize_with_certificate(http, portal_a, leaf, max_age="0")
    session = services.sessions.get(_sso_cookie(http))
    assert session.sid == sid and portal_b.client_id in session.clients
    assert verify_jwt(http, again["id_token"])[1]["sid"] == verify_jwt(http, first["id_token"])[1]["sid"]


def test_logout_is_audited(http, services, user, oauth_client):
    tokens = Browser(http).tokens(oauth_client, user)
    sid = verify_jwt(http, tokens["id_token"])[1]["sid"]
    http.get("/logout", query_string={"id_token_hint": tokens["id_token"]})
    page = http.get("/logout", query_string={"id_token_hint": tokens["id_token"]})
    html = page.get_data(as_text=True)
    if 'name="logout_request"' in html:
        http.post("/logout/confirm", data={"csrf_token": form_field(html, "csrf_token"), "decision": "logout",
                                           "logout_request": form_field(html, "logout_request")})
    db.session.expire_all()
    events = list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == "logout")))
    assert [e.details.get("sid") for e in events] == [sid]
