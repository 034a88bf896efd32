"""Disclosure records and the citizen's data sharing history (issue 5)."""

from __future__ import annotations

import json

from common.db import db
from idp.models import Disclosure
from tests.helpers import Browser, decode_unverified


def test_each_new_grant_is_recorded_and_shown(http, services, oauth_client, public_client, user):
    browser = Browser(http)
    tokens = browser.tokens(oauth_client, user, scope="openid profile phone")
    browser.tokens(public_client, None, scope="openid")
    rows = db.session.query(Disclosure).order_by(Disclosure.id).all()
    assert [r.client_id for r in rows] == [oauth_client.client_id, public_client.client_id]
    first = rows[0]
    # OIDC Core §5.4: the profile and phone scopes' claims, as consented on the page, that
    # alice has a value for (issue 11: no verified identity, so no gender or birthdate).
    assert set(first.claim_names) == {"sub", "name", "preferred_username", "updated_at",
                                      "phone_number", "phone_number_verified"}
    assert first.legal_basis == "consent" and first.token_id == decode_unverified(tokens["access_token"])["jti"]
    # Names only, never values.
    dumped = json.dumps([r.claim_names for r in rows], ensure_ascii=False)
    assert "张三" not in dumped and "13800138000" not in dumped and "alice" not in dumped

    page = http.get("/account/history").get_data(as_text=True)
    # The portals with active consent first (here: only the one that asked for claims) …
    consents = page[page.index('id="consents"'):page.index("</ul>", page.index('id="consents"'))]
    assert "Test Portal" in consents and "Public App" not in consents and "姓名" in consents
    # … then every release, newest first.
    page = page[page.index('id="history"'):]
    assert page.index("Public App") < page.index("Test Portal")
    assert "手机号码" in page and "姓名" in page
    only = http.get("/account/history", query_string={"client": oauth_client.client_id}).get_data(as_text=True)
    assert "Test Portal" in only and "<strong>Public App" not in only
    export = http.get("/account/history.json")
    assert export.headers["Content-Disposition"].startswith("attachment")
    data = export.get_json()["disclosures"]
    assert [d["client_id"] for d in data] == [public_client.client_id, oauth_client.client_id]
    assert "张三" not in export.get_data(as_text=True)


def test_every_refresh_is_a_disclosure_of_what_the_grant_carries(http, oauth_client, user):
    # A refreshed access token releases claims at userinfo again: recorded like the first.
    tokens = Browser(http).tokens(oauth_client, user, scope="openid profile offline_access")
    resp = http.post("/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                     auth=oauth_client.auth)
    assert resp.status_code == 200
    first, second = db.session.query(Disclosure).order_by(Disclosure.id).all()
    assert second.grant_id == first.grant_id and second.claim_names == first.claim_names
    assert second.token_id == decode_unverified(resp.get_json()["access_token"])["jti"] != first.token_id
    assert second.subject == first.subject == decode_unverified(tokens["id_token"])["sub"]


def test_history_needs_a_session(app):
    assert app.test_client().get("/account/history").status_code == 303
    assert app.test_client().get("/account/history.json").status_code == 303
