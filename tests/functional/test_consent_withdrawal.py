"""Withdrawing consent from the account page (issue 5, PIPL Art. 15): the portal's
refresh tokens and the access tokens of those grants stop working, and the next
authorization asks for consent again."""

from __future__ import annotations

from tests.helpers import Browser, form_field, pkce_pair


def test_withdraw_consent_revokes_the_portals_grants(http, oauth_client, user):
    browser = Browser(http)
    tokens = browser.tokens(oauth_client, user, scope="openid profile offline_access")
    page = http.get("/account").get_data(as_text=True)
    assert "Test Portal" in page
    resp = http.post(f"/account/consents/{oauth_client.client_id}/withdraw",
                     data={"csrf_token": form_field(page, "csrf_token")})
    assert resp.status_code == 303
    refresh = http.post("/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                        auth=oauth_client.auth)
    assert refresh.status_code == 400 and refresh.get_json()["error"] == "invalid_grant"
    info = http.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]})
    assert info.status_code == 401
    assert "Test Portal" not in http.get("/account").get_data(as_text=True)
    # The next authorization asks again (prompt=none cannot).
    _, challenge = pkce_pair()
    again = browser.authorize(oauth_client, challenge=challenge, prompt="none")
    assert "error=consent_required" in again.headers["Location"]


def test_withdraw_needs_csrf_and_a_session(http, app, oauth_client, user):
    Browser(http).tokens(oauth_client, user)
    assert http.post(f"/account/consents/{oauth_client.client_id}/withdraw").status_code == 400
    stranger = app.test_client()
    resp = stranger.post(f"/account/consents/{oauth_client.client_id}/withdraw", data={"csrf_token": "x"})
    assert resp.status_code == 303 and resp.headers["Location"].startswith("/login")
