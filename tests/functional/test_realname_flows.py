"""Real-name flows through HTTP (issue 3): registration with registry verification and an
SMS code, login by ID number, second factor, step-up to the client's level, account page."""

from __future__ import annotations

import re

import pyotp
import pytest

from common.db import db
from realname.idnumbers import check_character
from realname.importer import ImportReport, RegistryImporter, RegistryRow
from realname.models import Identity
from realname.registry import HttpRegistry, HttpRegistryConfig
from tests.helpers import Browser, decode_unverified, form_field, pkce_pair, query_of

NUMBER = "11010519491231002X"  # in the registry with a carrier-registered phone
UNBOUND = "440524188001010014"  # in the registry, no phone on record
PASSWORD = "a long enough secret"


@pytest.fixture
def registry(services):
    RegistryImporter(db.session, services.p.hasher, services.p.clock.now()).load(
        [RegistryRow("张三", NUMBER, "13800138001"), RegistryRow("李四", UNBOUND)], ImportReport()
    )
    db.session.commit()


def last_sms_code(app) -> str:
    phone, text = app.extensions["yiwang.provider"].sms.sent[-1]
    return re.search(r"(\d{6})", text).group(1)


def register(http, app, *, name, number, phone, username=None, interaction=""):
    page = http.get("/register", query_string={"interaction": interaction} if interaction else None)
    assert page.status_code == 200
    resp = http.post("/register", data={
        "csrf_token": form_field(page.get_data(as_text=True), "csrf_token"), "interaction": interaction,
        "name": name, "id_number": number, "phone": phone, "username": username or "", "password": PASSWORD,
    })
    if resp.status_code != 303:
        return resp
    confirm = http.get(resp.headers["Location"])
    html = confirm.get_data(as_text=True)
    return http.post("/register/confirm", data={
        "csrf_token": form_field(html, "csrf_token"), "pending": form_field(html, "pending"),
        "code": last_sms_code(app),
    })


def account_page(http):
    return http.get("/account").get_data(as_text=True)


def test_registration_verifies_and_binds(http, app, registry, services):
    resp = register(http, app, name="张三", number=NUMBER.lower(), phone="138 0013 8001", username="zhangsan")
    assert resp.status_code == 303 and resp.headers["Location"] == "/account"
    page = account_page(http)
    # Verified identity + SMS-proven phone the carrier confirmed (三要素): cn-l2.
    assert 'data-level="cn-l2"' in page
    assert "110105********002X" in page and "张*" in page
    assert NUMBER not in page and "19491231" not in page and "张三" not in page
    identity = db.session.query(Identity).one()
    assert identity.proofing_level == "cn-l1" and identity.phone_bound_at is not None


def test_registration_with_wrong_name_writes_nothing(http, app, registry):
    resp = register(http, app, name="张四", number=NUMBER, phone="13800138001")
    assert resp.status_code == 400
    assert "could not be verified" in resp.get_data(as_text=True) or "未能通过核验" in resp.get_data(as_text=True)
    assert db.session.execute(db.text("SELECT count(*) FROM idp_accounts")).scalar() == 0


@pytest.mark.parametrize(("field", "value"), [("id_number", "110105194912310021"), ("name", "Zhang San"),
                                              ("phone", "12345")])
def test_bad_input_is_a_form_error_on_the_field(http, app, registry, field, value):
    data = {"name": "张三", "number": NUMBER, "phone": "13800138001"}
    data["number" if field == "id_number" else field] = value
    resp = register(http, app, **data)
    assert resp.status_code == 400
    assert f'id="{field}-error"' in resp.get_data(as_text=True)


def test_registry_down_keeps_the_form_and_writes_nothing_then_retry_works(http, app, registry):
    provider = app.extensions["yiwang.provider"]
    provider.http_registry = HttpRegistry(HttpRegistryConfig(url="http://127.0.0.1:1/verify", key_id="k",
                                                             key=b"k" * 32, timeout=0.3, retries=0))
    try:
        resp = register(http, app, name="张三", number=NUMBER, phone="13800138001")
    finally:
        provider.http_registry = None
    assert resp.status_code == 503
    html = resp.get_data(as_text=True)
    assert f'value="{NUMBER}"' in html and 'value="13800138001"' in html  # the form is kept
    assert db.session.execute(db.text("SELECT count(*) FROM idp_accounts")).scalar() == 0
    # Registry back: the same request goes through.
    assert register(http, app, name="张三", number=NUMBER, phone="13800138001").status_code == 303


def test_one_person_one_account(http, app, registry):
    assert register(http, app, name="张三", number=NUMBER, phone="13800138001").status_code == 303
    http = app.test_client()  # a new browser: no cookies
    again = register(http, app, name="张三", number=NUMBER, phone="13900000000")
    assert again.status_code == 409


def test_login_by_id_number(http, app, registry, oauth_client):
    assert register(http, app, name="张三", number=NUMBER, phone="13800138001").status_code == 303
    http = app.test_client()  # a new browser: no cookies
    browser = Browser(http)

    class ByNumber:
        username = NUMBER.lower()
        password = PASSWORD

    tokens = browser.tokens(oauth_client, ByNumber())
    claims = decode_unverified(tokens["id_token"])
    assert claims["acr"] == "cn-l1" and claims["amr"] == ["pwd"]


def _authorize(http, client, **extra):
    verifier, challenge = pkce_pair()
    params = {"response_type": "code", "client_id": client.client_id, "redirect_uri": client.redirect_uri,
              "scope": "openid", "state": "s", "nonce": "n", "code_challenge": challenge,
              "code_challenge_method": "S256", **extra}
    return http.get("/authorize", query_string=params), verifier


def _exchange(http, client, location, verifier):
    q = query_of(location)
    assert "code" in q, q
    resp = http.post("/token", data={"grant_type": "authorization_code", "code": q["code"],
                                     "redirect_uri": client.redirect_uri, "code_verifier": verifier},
                     auth=client.auth)
    assert resp.status_code == 200, resp.get_json()
    return decode_unverified(resp.get_json()["id_token"])


def _login(http, resp, identifier, password=PASSWORD):
    page = http.get(resp.headers["Location"])
    html = page.get_data(as_text=True)
    return http.post("/login", data={"csrf_token": form_field(html, "csrf_token"),
                                     "interaction": form_field(html, "interaction"),
                                     "identifier": identifier, "password": password})


def test_step_up_to_cn_l2_enrolls_totp_and_keeps_the_request(http, app, registry, oauth_client, clock):
    # Verified (cn-l1) but the phone is not the carrier's record for this person: no bound factor.
    assert register(http, app, name="李四", number=UNBOUND, phone="13700000000", username="lisi").status_code == 303
    http = app.test_client()  # a new browser: no cookies
    resp, verifier = _authorize(http, oauth_client, acr_values="cn-l2", state="keep-me")
    resp = _login(http, resp, "lisi")
    resp = http.get(resp.headers["Location"])  # resume → step-up
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/stepup")
    resp = http.get(resp.headers["Location"])
    assert resp.status_code == 303 and resp.headers["Location"].startswith("/account/totp")
    enroll = http.get(resp.headers["Location"])
    html = enroll.get_data(as_text=True)
    assert "<svg" in html
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', html).group(1)
    done = http.post("/account/totp", data={"csrf_token": form_field(html, "csrf_token"),
                                            "interaction": form_field(html, "interaction"),
                                            "code": pyotp.TOTP(secret).at(clock.timestamp())})
    assert done.status_code == 200
    codes_html = done.get_data(as_text=True)
    assert codes_html.count("<li><code>") == 10
    next_url = re.search(r'id="continue" href="([^"]+)"', codes_html).group(1).replace("&amp;", "&")
    resp = http.get(next_url)  # resume the original request
    # Issue 17: the authenticator enrolled in this session does not raise it; step-up asks
    # for a new login with the password and the new authenticator, for the same request.
    assert resp.headers["Location"].startswith("/stepup")
    resp = http.get(resp.headers["Location"])
    assert resp.status_code == 303 and resp.headers["Location"].startswith("/login?interaction=")
    clock.advance(30)  # the enrolment code is used
    resp = _login(http, resp, "lisi")
    assert resp.headers["Location"].startswith("/login/mfa")
    page = http.get(resp.headers["Location"]).get_data(as_text=True)
    resp = http.post("/login/mfa", data={"csrf_token": form_field(page, "csrf_token"),
                                         "pending": form_field(page, "pending"), "action": "verify",
                                         "totp": pyotp.TOTP(secret).at(clock.timestamp())})
    resp = http.get(resp.headers["Location"])
    location = resp.headers["Location"]
    if location.startswith("/consent"):
        page = http.get(location)
        resp = Browser(http).consent(page)
        resp = http.get(resp.headers["Location"])
        location = resp.headers["Location"]
    assert query_of(location)["state"] == "keep-me"
    claims = _exchange(http, oauth_client, location, verifier)
    assert claims["acr"] == "cn-l2" and claims["amr"] == ["pwd", "otp"]


def test_totp_account_always_does_the_second_factor(http, app, registry, oauth_client, services, clock):
    assert register(http, app, name="李四", number=UNBOUND, phone="13700000000", username="lisi").status_code == 303
    acct = services.accounts.find_by_identifier("lisi")
    secret = services.realname.start_totp_enrollment(acct.id, pyotp.random_base32(32))
    assert services.realname.confirm_totp(acct.id, pyotp.TOTP(secret).at(clock.timestamp()))
    db.session.commit()
    http = app.test_client()  # a new browser: no cookies
    clock.advance(30)
    resp, verifier = _authorize(http, oauth_client)
    resp = _login(http, resp, "lisi")
    assert resp.status_code == 303 and resp.headers["Location"].startswith("/login/mfa")
    page = http.get(resp.headers["Location"])
    html = page.get_data(as_text=True)
    wrong = http.post("/login/mfa", data={"csrf_token": form_field(html, "csrf_token"),
                                          "pending": form_field(html, "pending"), "totp": "000000",
                                          "action": "verify"})
    assert wrong.status_code == 401
    ok = http.post("/login/mfa", data={"csrf_token": form_field(html, "csrf_token"),
                                       "pending": form_field(html, "pending"),
                                       "totp": pyotp.TOTP(secret).at(clock.timestamp()), "action": "verify"})
    assert ok.status_code == 303
    resp = http.get(ok.headers["Location"])
    location = resp.headers["Location"]
    if location.startswith("/consent"):
        resp = Browser(http).consent(http.get(location))
        location = http.get(resp.headers["Location"]).headers["Location"]
    claims = _exchange(http, oauth_client, location, verifier)
    assert claims["amr"] == ["pwd", "otp"] and claims["acr"] == "cn-l2"


def test_step_up_to_cn_l1_verifies_identity_inline(http, app, registry, oauth_client, user):
    resp, verifier = _authorize(http, oauth_client, acr_values="cn-l1")
    resp = _login(http, resp, "alice", "correct horse battery")
    resp = http.get(resp.headers["Location"])
    page = http.get(resp.headers["Location"])
    html = page.get_data(as_text=True)
    assert 'action="/account/verify"' in html
    resp = http.post("/account/verify", data={"csrf_token": form_field(html, "csrf_token"),
                                              "interaction": form_field(html, "interaction"),
                                              "name": "张三", "id_number": NUMBER})
    assert resp.status_code == 303 and resp.headers["Location"].startswith("/stepup")
    resp = http.get(resp.headers["Location"])
    resp = http.get(resp.headers["Location"])  # resume
    location = resp.headers["Location"]
    if location.startswith("/consent"):
        resp = Browser(http).consent(http.get(location))
        location = http.get(resp.headers["Location"]).headers["Location"]
    assert _exchange(http, oauth_client, location, verifier)["acr"] == "cn-l1"


def test_prompt_none_cannot_step_up(http, app, oauth_client, user):
    Browser(http).tokens(oauth_client, user)
    resp, _ = _authorize(http, oauth_client, acr_values="cn-l2", prompt="none")
    q = query_of(resp.headers["Location"])
    # OIDC Core §3.1.2.6
    assert q["error"] == "interaction_required" and q["iss"] == "http://127.0.0.1:5000"


def test_account_pages_need_a_session(http):
    for path in ("/account", "/account/totp", "/account/verify", "/account/phone", "/account/password"):
        resp = http.get(path)
        assert resp.status_code == 303 and resp.headers["Location"].startswith("/login?next=")


def test_phone_verification_and_password_change(http, app, registry, user, services):
    page = http.get("/login")
    html = page.get_data(as_text=True)
    http.post("/login", data={"csrf_token": form_field(html, "csrf_token"), "interaction": "",
                              "identifier": "alice", "password": "correct horse battery"})
    page = http.get("/account/phone")
    html = page.get_data(as_text=True)
    sent = http.post("/account/phone", data={"csrf_token": form_field(html, "csrf_token"), "action": "send"})
    assert sent.status_code == 200
    done = http.post("/account/phone", data={"csrf_token": form_field(html, "csrf_token"), "action": "confirm",
                                             "code": last_sms_code(app)})
    assert done.status_code == 303
    acct = services.accounts.find_by_identifier("alice")
    db.session.refresh(acct)
    assert acct.phone_verified_at is not None
    page = http.get("/account/password")
    html = page.get_data(as_text=True)
    bad = http.post("/account/password", data={"csrf_token": form_field(html, "csrf_token"),
                                               "current": "wrong", "new": "another long secret"})
    assert bad.status_code == 400
    ok = http.post("/account/password", data={"csrf_token": form_field(html, "csrf_token"),
                                              "current": "correct horse battery", "new": "another long secret"})
    assert ok.status_code == 303
    services.accounts.authenticate_password("alice", "another long secret", client_ip="9.9.9.9")


def test_registered_number_must_be_valid_for_today(http, app, registry, clock):
    first17 = f"110105{clock.now().year + 1}0101001"
    future = first17 + check_character(first17)
    resp = register(http, app, name="张三", number=future, phone="13800138001")
    assert resp.status_code == 400 and 'id="id_number-error"' in resp.get_data(as_text=True)


def test_rerun_verification_from_the_account_page(http, app, registry, services, clock):
    assert register(http, app, name="张三", number=NUMBER, phone="13800138001").status_code == 303
    before = db.session.query(Identity).one().verified_at
    clock.advance(600)  # within the session's idle timeout
    html = account_page(http)
    resp = http.post("/account/verify", data={"csrf_token": form_field(html, "csrf_token")})
    assert resp.status_code == 303 and "saved=1" in resp.headers["Location"]
    db.session.expire_all()
    assert db.session.query(Identity).one().verified_at > before
