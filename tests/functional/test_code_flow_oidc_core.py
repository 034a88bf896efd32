"""The authorization code flow end to end through HTTP (OIDC Core §3.1)."""

from __future__ import annotations

from tests.helpers import Browser, assert_security_headers, decode_unverified, verify_jwt


def test_code_flow_issues_verifiable_tokens(http, oauth_client, user):
    browser = Browser(http)
    tokens = browser.tokens(oauth_client, user, nonce="nonce-123", state="xyz")
    assert tokens["token_type"] == "Bearer"
    assert set(tokens) >= {"access_token", "id_token", "refresh_token", "expires_in"}

    header, claims = verify_jwt(http, tokens["id_token"])
    assert header["alg"] == "ES256" and header["kid"]
    assert claims["iss"] == "http://127.0.0.1:5000"
    assert claims["aud"] == oauth_client.client_id
    assert claims["nonce"] == "nonce-123"
    assert claims["amr"] == ["pwd"] and claims["acr"] == "cn-l0"
    assert {"sub", "exp", "iat", "auth_time", "sid", "at_hash"} <= set(claims)
    # DESIGN.md §4: nothing personal in the ID token unless asked through `claims`.
    assert "name" not in claims and "preferred_username" not in claims

    at_header, at_claims = verify_jwt(http, tokens["access_token"])
    assert at_header["typ"] == "at+jwt"
    assert at_claims["sub"] == claims["sub"] and at_claims["client_id"] == oauth_client.client_id

    info = http.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.status_code == 200
    body = info.get_json()
    assert body["sub"] == claims["sub"]
    assert body["name"] == "张三" and body["preferred_username"] == "alice"
    assert "phone_number" not in body  # phone scope not requested


def test_authorization_response_carries_state_and_iss(http, oauth_client, user):
    query, _ = Browser(http).code_flow(oauth_client, user, state="s-é")
    assert query["state"] == "s-é"
    # RFC 9207 §2
    assert query["iss"] == "http://127.0.0.1:5000"


def test_login_page_has_security_headers(http, oauth_client):
    from tests.helpers import pkce_pair

    _, challenge = pkce_pair()
    resp = Browser(http).authorize(oauth_client, challenge=challenge)
    page = http.get(resp.headers["Location"])
    assert page.status_code == 200
    assert_security_headers(page)
    assert "portal.example.test" in page.headers["Content-Security-Policy"]


def test_sso_second_authorization_needs_no_login(http, oauth_client, user):
    browser = Browser(http)
    first = browser.tokens(oauth_client, user)
    query, _ = browser.code_flow(oauth_client, None)
    assert "code" in query
    second = decode_unverified(first["id_token"])
    assert second["sid"]
