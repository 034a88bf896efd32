"""Per-claim consent (issue 5): optional claims can be unticked, required and statutory
ones are explained, sensitive ones need their own confirmation at every release, and
remembered consent asks again only for new claims."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta

import pytest

from common.db import db
from common.models import AuditEvent
from idp.errors import InvalidClientMetadataError
from idp.models import Consent, Disclosure
from realname.idnumbers import check_character
from realname.service import parse_identity_input
from tests.helpers import Browser, RegisteredTestClient, decode_unverified, pkce_pair, query_of
from tests.helpers import TestUser as Credentials

REDIRECT = "https://portal.example.test/cb"


def _client(services, *, scopes=("openid", "profile", "phone"), policy=None, sensitive=False) -> RegisteredTestClient:
    row, secret = services.clients.create(name="Portal", redirect_uris=[REDIRECT], scopes=list(scopes),
                                          claim_policy=policy, sensitive_claims_allowed=sensitive)
    db.session.commit()
    return RegisteredTestClient(row.client_id, secret, REDIRECT)


def _userinfo(http, tokens) -> dict:
    return http.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]}).get_json()


def _consent_page(browser: Browser, client, user, **kw):
    """Run the flow up to the consent page; returns it (or the final redirect) and the
    request's PKCE verifier."""
    verifier, challenge = pkce_pair()
    resp = browser.authorize(client, challenge=challenge, **kw)
    for _ in range(6):
        if resp.status_code == 200 and 'name="password"' in resp.get_data(as_text=True):
            resp = browser.login(resp, user)
        elif resp.status_code in (302, 303) and not resp.headers["Location"].startswith(client.redirect_uri):
            resp = browser.follow(resp)
        else:
            return resp, verifier
    raise AssertionError("too many steps")


def _claims_in(html: str, section: str) -> set[str]:
    match = re.search(rf'<fieldset id="consent-{section}".*?</fieldset>', html, re.S)
    return set(re.findall(r'data-claim="([^"]+)"', match.group(0))) if match else set()


def _exchange(http, client, query, verifier) -> dict:
    resp = http.post("/token", data={"grant_type": "authorization_code", "code": query["code"],
                                     "redirect_uri": client.redirect_uri, "code_verifier": verifier}, auth=client.auth)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def test_unticked_claim_is_not_released_and_not_asked_again(http, services, user):
    client = _client(services)
    browser = Browser(http)
    page, verifier = _consent_page(browser, client, user, scope="openid profile phone")
    html = page.get_data(as_text=True)
    assert {"name", "phone_number"} <= _claims_in(html, "optional")
    assert 'id="claim-phone_number" checked' in html.replace('value="phone_number" ', "")
    browser.consent(page, untick={"phone_number", "phone_number_verified"})

    seen = len(browser.history)
    tokens = browser.tokens(client, user, scope="openid profile phone",
                            claims=json.dumps({"id_token": {"phone_number": None, "name": None}}))
    info = _userinfo(http, tokens)
    assert info["name"] == "张三" and "phone_number" not in info
    # The ID token never carries more than userinfo (and here: the named, consented claim).
    id_token = decode_unverified(tokens["id_token"])
    assert id_token.get("name") == "张三" and "phone_number" not in id_token
    # Remembered: the second authorization went straight through, no consent page.
    assert not any(b"consent-allow" in r.get_data() for r in browser.history[seen:] if r.status_code == 200)
    row = db.session.query(Consent).one()
    assert "phone_number" in row.declined and "name" in row.claims
    # The release is in the audit trail too: claim names, never values.
    issued = db.session.query(AuditEvent).filter_by(action="token.issue").order_by(AuditEvent.id.desc()).first()
    assert "name" in issued.details["claims"] and "phone_number" not in issued.details["claims"]


def test_new_claim_asks_again_for_that_claim_only(http, services, user):
    client = _client(services)
    browser = Browser(http)
    browser.tokens(client, user, scope="openid profile")
    page, verifier = _consent_page(browser, client, user, scope="openid profile phone")
    html = page.get_data(as_text=True)
    assert _claims_in(html, "optional") == {"phone_number", "phone_number_verified"}
    assert 'id="consent-already"' in html and 'data-claim="name"' in html.split('id="consent-already"')[1]
    browser.consent(page)
    assert set(db.session.query(Consent).one().claims) >= {"name", "phone_number"}


def test_required_and_statutory_claims_are_explained_not_tickable(http, services, user):
    client = _client(services, policy={
        "name": {"purpose": "办理社保业务", "basis": "consent", "required": True},
        "phone_number": {"purpose": "短信通知", "basis": "statutory"},
        "preferred_username": {"purpose": "页面显示", "basis": "consent"},
    })
    browser = Browser(http)
    page, verifier = _consent_page(browser, client, user, scope="openid profile phone")
    html = page.get_data(as_text=True)
    assert _claims_in(html, "required") == {"name"} and "办理社保业务" in html
    assert _claims_in(html, "statutory") == {"phone_number"}
    assert _claims_in(html, "optional") == {"preferred_username"}
    assert 'value="name"' not in html and 'value="phone_number"' not in html
    # A forged form without any ticks still cannot drop what "Allow" means for them.
    browser.consent(page, untick={"preferred_username"})
    tokens = browser.tokens(client, user, scope="openid profile phone")
    info = _userinfo(http, tokens)
    assert info["name"] == "张三" and info["phone_number"] == "+8613800138000"
    assert "preferred_username" not in info
    # Claims outside the policy (phone_number_verified, gender) were never offered.
    assert "phone_number_verified" not in info and "gender" not in info


def test_ticking_a_claim_that_was_not_offered_releases_nothing(http, services, user):
    client = _client(services, scopes=("openid", "profile"), policy={"preferred_username": {"purpose": "显示"}})
    browser = Browser(http)
    page, verifier = _consent_page(browser, client, user, scope="openid profile")
    html = page.get_data(as_text=True)
    browser.http.post("/consent", data={"csrf_token": re.search(r'name="csrf_token" value="([^"]*)"', html).group(1),
                                        "interaction": re.search(r'name="interaction" value="([^"]*)"', html).group(1),
                                        "decision": "allow", "claim": ["preferred_username", "name", "id_number"]})
    assert set(db.session.query(Consent).one().claims) == {"preferred_username"}


def test_prompt_consent_reviews_every_claim_with_earlier_choices(http, services, user):
    client = _client(services)
    browser = Browser(http)
    page, verifier = _consent_page(browser, client, user, scope="openid profile phone")
    browser.consent(page, untick={"phone_number"})
    page, verifier = _consent_page(browser, client, user, scope="openid profile phone", prompt="consent")
    html = page.get_data(as_text=True)
    assert "phone_number" in _claims_in(html, "optional")
    assert re.search(r'value="phone_number" id="claim-phone_number">', html)  # not ticked: declined before
    assert re.search(r'value="name" id="claim-name" checked>', html)
    browser.consent(page, untick={"name"}, tick={"phone_number"})  # the citizen changes their mind both ways
    row = db.session.query(Consent).one()
    assert "name" in row.declined and "name" not in row.claims and "phone_number" in row.claims


def test_consent_expires_and_is_asked_again(http, services, user, clock, settings):
    client = _client(services)
    browser = Browser(http)
    browser.tokens(client, user, scope="openid profile")
    clock.advance(timedelta(days=settings.consent_ttl_days, seconds=1).total_seconds())
    page, verifier = _consent_page(browser, client, user, scope="openid profile")
    assert "name" in _claims_in(page.get_data(as_text=True), "optional")


def test_openid_alone_needs_no_consent(http, services, user):
    client = _client(services)
    browser = Browser(http)
    browser.tokens(client, user, scope="openid")
    assert db.session.query(Consent).count() == 0
    assert not any(b"consent-allow" in r.get_data() for r in browser.history if r.status_code == 200)


# -- sensitive claims --------------------------------------------------------------------


def _verified(services, clock) -> tuple[Credentials, str]:
    first17 = f"110105{date(1990, 5, 17):%Y%m%d}021"
    number = first17 + check_character(first17)
    account = services.accounts.create(username="carol", password="a long enough secret")
    name, rid = parse_identity_input("李四", number, today=clock.now().date())
    services.realname.bind_identity(account.id, name, rid)
    db.session.commit()
    return Credentials("carol", "a long enough secret"), number


def test_sensitive_claim_needs_the_administrator_flag(services):
    with pytest.raises(InvalidClientMetadataError):
        services.clients.create(name="X", redirect_uris=[REDIRECT], scopes=["openid", "id_number"],
                                claim_policy={"id_number": {"purpose": "核验"}})
    with pytest.raises(InvalidClientMetadataError):  # and can never be "required"
        services.clients.create(name="X", redirect_uris=[REDIRECT], scopes=["openid", "id_number"],
                                claim_policy={"id_number": {"purpose": "核验", "required": True}},
                                sensitive_claims_allowed=True)


def test_sensitive_claim_without_policy_is_never_released(http, services, clock):
    carol, number = _verified(services, clock)
    client = _client(services, scopes=("openid", "id_number"))
    tokens = Browser(http).tokens(client, carol, scope="openid id_number")
    assert "id_number" not in _userinfo(http, tokens)
    assert number not in json.dumps(decode_unverified(tokens["id_token"]))


def test_sensitive_claim_is_confirmed_at_every_release(http, services, clock):
    carol, number = _verified(services, clock)
    client = _client(services, scopes=("openid", "id_number", "offline_access"), sensitive=True,
                     policy={"id_number": {"purpose": "不动产登记核验身份"}})
    browser = Browser(http)
    scope = "openid id_number offline_access"

    # Allowed without the separate confirmation: not released.
    page, verifier = _consent_page(browser, client, carol, scope=scope)
    html = page.get_data(as_text=True)
    assert _claims_in(html, "sensitive") == {"id_number"} and 'id="sensitive-confirm"' in html
    assert "id_number" not in _userinfo(http, _finish(browser, client, page, verifier, confirm=False))

    # Asked again (never remembered); confirmed this time: released for this grant.
    page, verifier = _consent_page(browser, client, carol, scope=scope)
    assert _claims_in(page.get_data(as_text=True), "sensitive") == {"id_number"}
    tokens = _finish(browser, client, page, verifier, confirm=True)
    assert _userinfo(http, tokens)["id_number"] == number
    assert "id_number" not in (db.session.query(Consent).one().claims or [])
    disclosure = db.session.query(Disclosure).order_by(Disclosure.id.desc()).first()
    assert "id_number" in disclosure.claim_names and number not in json.dumps(disclosure.claim_names)

    # A refreshed token is a new release without a confirmation: no id_number.
    resp = http.post("/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                     auth=client.auth)
    assert "id_number" not in _userinfo(http, resp.get_json())

    # prompt=none cannot show the confirmation: consent_required (OIDC Core §3.1.2.6).
    resp = browser.authorize(client, challenge=pkce_pair()[1], scope=scope, prompt="none")
    assert query_of(resp.headers["Location"])["error"] == "consent_required"


def _finish(browser: Browser, client, page, verifier: str, *, confirm: bool) -> dict:
    """Submit the consent page, follow to the portal and exchange the code."""
    resp = browser.consent(page, confirm_sensitive=confirm)
    while not resp.headers["Location"].startswith(client.redirect_uri):
        resp = browser.follow(resp)
    return _exchange(browser.http, client, query_of(resp.headers["Location"]), verifier)
