"""Authorization request rules of OpenID Connect Core §3.1.2 as profiled here: code flow
only, prompt / max_age / id_token_hint, request objects, response modes, the claims
parameter, acr requirements, consent, and the CSRF and session-fixation defences of the
login and consent pages (SECURITY.md "Authorization endpoint", "Pages and sessions")."""

from __future__ import annotations

import json

import pytest

from tests.helpers import Browser, assert_security_headers, form_field, query_of

from ._authz import (
    ISSUER,
    SSO_COOKIE,
    assert_error_page,
    assert_redirect_error,
    authorize_params,
    id_claims,
    login,
    register_client,
)


def _authorize(http, client, **overrides):
    return http.get("/authorize", query_string=authorize_params(client, **overrides))


def _login_page(http, client, **overrides):
    resp = _authorize(http, client, **overrides)
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/login?"), resp.headers.get("Location")
    page = http.get(resp.headers["Location"])
    assert page.status_code == 200 and 'name="password"' in page.get_data(as_text=True)
    return page


def _showed_login(browser: Browser) -> bool:
    return any('name="password"' in r.get_data(as_text=True) for r in browser.history if r.status_code in (200, 401))


def _sso_cookie(http):
    cookie = http.get_cookie(SSO_COOKIE)
    return cookie.value if cookie is not None else None


# -- response types ----------------------------------------------------------------------


@pytest.mark.parametrize("response_type", ["token", "id_token", "code id_token", "code token", "id_token token",
                                           "none"])
def test_non_code_response_types_are_refused(http, oauth_client, response_type):
    resp = _authorize(http, oauth_client, response_type=response_type)
    # RFC 9700 §2.1.2 (no implicit / hybrid); RFC 6749 §4.1.2.1 unsupported_response_type,
    # redirected because client and redirect URI are verified, with iss (RFC 9207 §2).
    assert_redirect_error(resp, oauth_client, "unsupported_response_type")
    assert "#" not in resp.headers["Location"]


def test_missing_response_type_is_refused(http, oauth_client):
    resp = _authorize(http, oauth_client, response_type=None)
    # RFC 6749 §4.1.2.1: invalid_request or unsupported_response_type, never a code.
    assert resp.status_code in (302, 303)
    query = query_of(resp.headers["Location"])
    assert query["error"] in ("invalid_request", "unsupported_response_type")
    assert query["iss"] == ISSUER and query["state"] == "st-42"


def test_discovery_advertises_only_the_code_flow(http):
    meta = http.get("/.well-known/openid-configuration").get_json()
    # OIDC Discovery §3 response_types_supported; RFC 9700 §2.1.2.
    assert meta["response_types_supported"] == ["code"]
    assert "fragment" not in meta["response_modes_supported"]
    assert "implicit" not in meta["grant_types_supported"]
    # RFC 9207 §3
    assert meta["authorization_response_iss_parameter_supported"] is True
    # OIDC Discovery §3: request objects are not supported and say so.
    assert meta["request_parameter_supported"] is False and meta["request_uri_parameter_supported"] is False


# -- prompt (OIDC Core §3.1.2.1) ------------------------------------------------------------


def test_prompt_none_without_session_is_login_required(http, oauth_client):
    resp = _authorize(http, oauth_client, prompt="none")
    # OIDC Core §3.1.2.6: login_required, never a login page.
    assert_redirect_error(resp, oauth_client, "login_required")


def test_prompt_none_with_session_but_no_consent_is_consent_required(http, oauth_client, services, user):
    login(http, oauth_client, user)
    other = register_client(services, "https://other.example.test/cb")
    resp = _authorize(http, other, prompt="none")
    # OIDC Core §3.1.2.6: consent_required, no consent page.
    assert_redirect_error(resp, other, "consent_required")


def test_prompt_none_with_session_and_consent_issues_a_code(http, oauth_client, user):
    login(http, oauth_client, user)
    resp = _authorize(http, oauth_client, prompt="none")
    # OIDC Core §3.1.2.5 (positive control for the two tests above).
    assert resp.status_code == 302
    query = query_of(resp.headers["Location"])
    assert query["code"] and query["state"] == "st-42" and query["iss"] == ISSUER


def test_prompt_none_combined_with_other_values_is_invalid(http, oauth_client, user):
    login(http, oauth_client, user)
    resp = _authorize(http, oauth_client, prompt="none login")
    # OIDC Core §3.1.2.1: none with any other value is an error.
    assert_redirect_error(resp, oauth_client, "invalid_request")


def test_prompt_consent_shows_consent_again(http, oauth_client, user):
    login(http, oauth_client, user)
    resp = _authorize(http, oauth_client, prompt="consent")
    # OIDC Core §3.1.2.1 prompt=consent: ask even though consent exists.
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/consent?")


def test_prompt_login_forces_a_fresh_login_with_later_auth_time(http, oauth_client, user, clock):
    first = id_claims(login(http, oauth_client, user))
    clock.advance(120)
    browser = Browser(http)
    second_tokens = browser.tokens(oauth_client, user, prompt="login")
    second = id_claims(second_tokens)
    # OIDC Core §3.1.2.1 prompt=login: re-authenticate; auth_time is the new login's time.
    assert _showed_login(browser)
    assert second["auth_time"] == first["auth_time"] + 120
    assert second["auth_time"] > first["auth_time"]


def test_max_age_exceeded_forces_a_fresh_login(http, oauth_client, user, clock):
    first = id_claims(login(http, oauth_client, user))
    clock.advance(120)

    within = Browser(http)
    same = id_claims(within.tokens(oauth_client, None, max_age="600"))
    # OIDC Core §3.1.2.1 max_age: a recent enough login is reused, with its real auth_time.
    assert not _showed_login(within)
    assert same["auth_time"] == first["auth_time"]

    beyond = Browser(http)
    fresh = id_claims(beyond.tokens(oauth_client, user, max_age="60"))
    # OIDC Core §3.1.2.1 max_age: too old → active re-authentication, later auth_time.
    assert _showed_login(beyond)
    assert fresh["auth_time"] == first["auth_time"] + 120


def test_max_age_zero_forces_a_fresh_login(http, oauth_client, user, clock):
    first = id_claims(login(http, oauth_client, user))
    clock.advance(1)
    browser = Browser(http)
    again = id_claims(browser.tokens(oauth_client, user, max_age="0"))
    # OIDC Core §3.1.2.1 (errata set 2): max_age=0 is equivalent to prompt=login.
    assert _showed_login(browser)
    assert again["auth_time"] > first["auth_time"]


def test_max_age_zero_forces_login_even_within_the_same_second(http, oauth_client, user):
    login(http, oauth_client, user)
    resp = _authorize(http, oauth_client, max_age="0")
    # OIDC Core §3.1.2.1 (errata set 2): max_age=0 is equivalent to prompt=login.
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/login?")


def test_max_age_with_prompt_none_and_old_session_is_login_required(http, oauth_client, user, clock):
    login(http, oauth_client, user)
    clock.advance(120)
    resp = _authorize(http, oauth_client, prompt="none", max_age="60")
    # OIDC Core §3.1.2.1 / §3.1.2.6: re-authentication needed but no UI allowed.
    assert_redirect_error(resp, oauth_client, "login_required")


@pytest.mark.parametrize("max_age", ["-1", "abc", "1.5"])
def test_malformed_max_age_is_invalid_request(http, oauth_client, max_age):
    # OIDC Core §3.1.2.1: max_age is a non-negative integer.
    assert_redirect_error(_authorize(http, oauth_client, max_age=max_age), oauth_client, "invalid_request")


# -- id_token_hint (OIDC Core §3.1.2.1) -----------------------------------------------------


def test_id_token_hint_for_another_user_with_prompt_none_is_login_required(app, http, oauth_client, user, other_user):
    login(http, oauth_client, user)
    bob_browser = app.test_client()
    bob_hint = login(bob_browser, oauth_client, other_user)["id_token"]
    resp = _authorize(http, oauth_client, prompt="none", id_token_hint=bob_hint)
    # OIDC Core §3.1.2.2: the hinted user is not the logged-in one → error, never a code.
    assert_redirect_error(resp, oauth_client, "login_required")


def test_id_token_hint_of_the_session_user_with_prompt_none_issues_a_code(http, oauth_client, user):
    hint = login(http, oauth_client, user)["id_token"]
    resp = _authorize(http, oauth_client, prompt="none", id_token_hint=hint)
    # OIDC Core §3.1.2.1 (positive control).
    assert resp.status_code == 302 and query_of(resp.headers["Location"])["code"]


def test_id_token_hint_for_another_user_interactive_never_yields_a_code(app, http, oauth_client, user, other_user):
    login(http, oauth_client, user)
    bob_hint = login(app.test_client(), oauth_client, other_user)["id_token"]
    page = _login_page(http, oauth_client, id_token_hint=bob_hint)
    # OIDC Core §3.1.2.2: ask for a login first; if the same other user logs in again,
    # it is still not the hinted one → login_required, no code.
    resp = Browser(http).login(page, user)
    while resp.status_code in (302, 303) and not resp.headers["Location"].startswith(oauth_client.redirect_uri):
        resp = http.get(resp.headers["Location"])
    assert_redirect_error(resp, oauth_client, "login_required")


@pytest.mark.parametrize("hint", ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."])
def test_invalid_id_token_hint_is_invalid_request(http, oauth_client, user, hint):
    login(http, oauth_client, user)
    resp = _authorize(http, oauth_client, id_token_hint=hint)
    # OIDC Core §3.1.2.1 / §3.1.2.6: a hint the OP did not issue is an invalid request.
    assert_redirect_error(resp, oauth_client, "invalid_request")


def test_id_token_hint_issued_to_another_client_is_invalid(http, oauth_client, services, user):
    other = register_client(services, "https://other.example.test/cb")
    hint = login(http, other, user)["id_token"]
    login(http, oauth_client, user)
    resp = _authorize(http, oauth_client, prompt="none", id_token_hint=hint)
    # OIDC Core §3.1.2.1: the hint must be an ID token issued to this client (aud).
    assert_redirect_error(resp, oauth_client, "invalid_request")


# -- request syntax ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["code_challenge", "nonce", "prompt", "max_age", "response_mode", "claims"])
def test_repeated_parameter_is_invalid_request(http, oauth_client, name):
    values = {"code_challenge": "b" * 43, "nonce": "n2", "prompt": "login", "max_age": "5",
              "response_mode": "query", "claims": "{}"}
    params = authorize_params(oauth_client)
    pairs = list(params.items()) + [(name, values[name])] * (1 if name in params else 2)
    resp = http.get("/authorize", query_string=pairs)
    # RFC 6749 §3.1: parameters must not be included more than once.
    assert_redirect_error(resp, oauth_client, "invalid_request")


@pytest.mark.parametrize("name", ["client_id", "redirect_uri", "response_type", "scope", "state"])
def test_repeated_core_parameter_is_refused_without_a_code(http, oauth_client, name):
    params = authorize_params(oauth_client)
    extra = {"client_id": "someone-else", "redirect_uri": "https://attacker.example/cb", "response_type": "code",
             "scope": "openid", "state": "other"}
    resp = http.get("/authorize", query_string=[*params.items(), (name, extra[name])])
    # RFC 6749 §3.1: invalid_request; which value to trust is unknown, so no redirect.
    assert_error_page(resp, "invalid_request")


def test_request_object_is_not_supported(http, oauth_client):
    resp = _authorize(http, oauth_client, request="eyJhbGciOiJub25lIn0.e30.")
    # OIDC Core §6.1 / §3.1.2.6: request_not_supported.
    assert_redirect_error(resp, oauth_client, "request_not_supported")


def test_request_uri_is_not_supported(http, oauth_client):
    resp = _authorize(http, oauth_client, request_uri="https://attacker.example/req.jwt")
    # OIDC Core §6.2 / §3.1.2.6: request_uri_not_supported.
    assert_redirect_error(resp, oauth_client, "request_uri_not_supported")


@pytest.mark.parametrize("mode", ["fragment", "web_message", "jwt"])
def test_unsupported_response_mode_is_refused(http, oauth_client, mode):
    resp = _authorize(http, oauth_client, response_mode=mode)
    # OAuth 2.0 Multiple Response Type Encoding Practices §2.1: fragment would expose the
    # code to scripts; the error itself goes back by query.
    assert_redirect_error(resp, oauth_client, "invalid_request")
    assert "#" not in resp.headers["Location"]


def test_form_post_response_mode_carries_code_state_and_iss(http, oauth_client, user):
    login(http, oauth_client, user)
    resp = _authorize(http, oauth_client, response_mode="form_post")
    # OAuth 2.0 Form Post Response Mode §2; RFC 9207 §2.
    assert resp.status_code == 200 and "Location" not in resp.headers
    html = resp.get_data(as_text=True)
    assert f'action="{oauth_client.redirect_uri}"' in html
    assert form_field(html, "code") and form_field(html, "state") == "st-42" and form_field(html, "iss") == ISSUER
    assert resp.headers["Cache-Control"] == "no-store"
    assert_security_headers(resp)


def test_unknown_scope_values_are_ignored_but_openid_kept(http, oauth_client, user):
    tokens = login(http, oauth_client, user, scope="openid profile admin")
    # RFC 6749 §3.3: the server may ignore scopes; the response says what was granted.
    assert tokens["scope"].split() == ["openid", "profile"]


# -- claims parameter (OIDC Core §5.5) ---------------------------------------------------------


@pytest.mark.parametrize("claims", ["{not json", "[]", '{"id_token": []}', '{"userinfo": {"name": 1}}'])
def test_malformed_claims_parameter_is_invalid_request(http, oauth_client, claims):
    resp = _authorize(http, oauth_client, claims=claims)
    # OIDC Core §5.5: a JSON object of objects; anything else is invalid_request.
    assert_redirect_error(resp, oauth_client, "invalid_request")


def test_claims_id_token_name_released_with_profile_scope(http, oauth_client, user):
    tokens = login(http, oauth_client, user, scope="openid profile",
                   claims=json.dumps({"id_token": {"name": None}}))
    # OIDC Core §5.5: a claim asked for in id_token goes into the ID token.
    assert id_claims(tokens)["name"] == "张三"


def test_claims_id_token_name_withheld_without_profile_scope(http, oauth_client, user):
    tokens = login(http, oauth_client, user, scope="openid", claims=json.dumps({"id_token": {"name": None}}))
    # OIDC Core §5.5 + DESIGN.md §5: only claims the granted scopes allow are released.
    assert "name" not in id_claims(tokens)
    assert tokens["scope"] == "openid"


# -- acr (OIDC Core §3.1.2.1 acr_values, §5.5.1.1 essential acr) -------------------------------


@pytest.mark.parametrize("request_kw", [
    {"acr_values": "cn-l3"},
    {"claims": json.dumps({"id_token": {"acr": {"essential": True, "values": ["cn-l3"]}}})},
    {"claims": json.dumps({"id_token": {"acr": {"essential": True, "value": "cn-l3"}}})},
], ids=["acr_values", "claims-values", "claims-value"])
def test_unmet_essential_acr_is_an_error_never_a_lower_acr(http, oauth_client, user, request_kw):
    login(http, oauth_client, user)
    resp = _authorize(http, oauth_client, **request_kw)
    # OIDC Core §5.5.1.1 / errata unmet_authentication_requirements; DESIGN.md §5.
    assert_redirect_error(resp, oauth_client, "unmet_authentication_requirements")


def test_unmet_acr_after_a_fresh_login_is_still_an_error(http, oauth_client, user):
    page = _login_page(http, oauth_client, acr_values="cn-l3")
    resp = Browser(http).login(page, user)
    while resp.status_code in (302, 303) and not resp.headers["Location"].startswith(oauth_client.redirect_uri):
        resp = http.get(resp.headers["Location"])
    # DESIGN.md §5: never a code with a lower acr.
    assert_redirect_error(resp, oauth_client, "unmet_authentication_requirements")


def test_met_acr_is_emitted(http, oauth_client, user):
    tokens = login(http, oauth_client, user, acr_values="cn-l0")
    # OIDC Core §2 acr: the level actually met.
    assert id_claims(tokens)["acr"] == "cn-l0"


# -- consent -----------------------------------------------------------------------------------


def _consent_page(http, client, user, **overrides):
    page = _login_page(http, client, **overrides)
    resp = Browser(http).login(page, user)
    while resp.status_code in (302, 303):
        resp = http.get(resp.headers["Location"])
    assert 'name="decision"' in resp.get_data(as_text=True)
    return resp


def test_consent_denial_is_access_denied_with_state_and_iss(http, oauth_client, user):
    page = _consent_page(http, oauth_client, user)
    resp = Browser(http).consent(page, decision="deny")
    # RFC 6749 §4.1.2.1 access_denied; RFC 9207 §2 iss; 303 after a POST.
    assert resp.status_code == 303
    assert_redirect_error(resp, oauth_client, "access_denied")


def test_consent_post_without_csrf_token_is_refused(http, oauth_client, user):
    page = _consent_page(http, oauth_client, user)
    html = page.get_data(as_text=True)
    for token in ("", "forged-token"):
        data = {"interaction": form_field(html, "interaction"), "decision": "allow"}
        if token:
            data["csrf_token"] = token
        resp = http.post("/consent", data=data)
        # OWASP ASVS 5 §3.5 / SECURITY.md: state-changing forms need the CSRF token.
        assert_error_page(resp)
        assert resp.status_code == 400
    # Nothing was granted: silent authorization still needs consent.
    resp = _authorize(http, oauth_client, prompt="none")
    assert_redirect_error(resp, oauth_client, "consent_required")


def test_consent_page_has_security_headers(http, oauth_client, user):
    page = _consent_page(http, oauth_client, user)
    assert_security_headers(page)
    assert page.headers["Cache-Control"] == "no-store"


# -- login page and session ----------------------------------------------------------------------


def test_login_post_without_csrf_token_is_refused_and_starts_no_session(http, oauth_client, user):
    page = _login_page(http, oauth_client)
    html = page.get_data(as_text=True)
    for token in (None, "forged-token"):
        data = {"interaction": form_field(html, "interaction"), "identifier": user.username,
                "password": user.password}
        if token:
            data["csrf_token"] = token
        resp = http.post("/login", data=data)
        # OWASP ASVS 5 §3.5: login CSRF is refused; no session is created.
        assert resp.status_code == 400
        assert "Location" not in resp.headers
        assert not any(c.startswith(SSO_COOKIE + "=") for c in resp.headers.getlist("Set-Cookie"))
        assert _sso_cookie(http) is None
    assert_redirect_error(_authorize(http, oauth_client, prompt="none"), oauth_client, "login_required")


def test_login_issues_a_new_session_cookie(app, http, oauth_client, user):
    planted = "attacker-planted-session-value-0123456789abcdef"
    http.set_cookie(SSO_COOKIE, planted)
    page = _login_page(http, oauth_client)
    resp = Browser(http).login(page, user)
    # OWASP ASVS 5 §7.2.4: a new session identifier at login (no fixation).
    assert resp.status_code == 303
    new = _sso_cookie(http)
    assert new and new != planted
    set_cookie = next(c for c in resp.headers.getlist("Set-Cookie") if c.startswith(SSO_COOKIE + "="))
    # SECURITY.md "Pages and sessions": HttpOnly, SameSite=Lax (Secure/__Host- over https).
    assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie
    # The planted value is not a session: another browser presenting it is not logged in.
    attacker = app.test_client()
    attacker.set_cookie(SSO_COOKIE, planted)
    assert_redirect_error(_authorize(attacker, oauth_client, prompt="none"), oauth_client, "login_required")


def test_reauthentication_rotates_the_session_cookie(app, http, oauth_client, user):
    login(http, oauth_client, user)
    old = _sso_cookie(http)
    Browser(http).tokens(oauth_client, user, prompt="login")
    new = _sso_cookie(http)
    # OWASP ASVS 5 §7.2.4: re-authentication also gets a new session id; the old one ends.
    assert new and old and new != old
    stale = app.test_client()
    stale.set_cookie(SSO_COOKIE, old)
    assert_redirect_error(_authorize(stale, oauth_client, prompt="none"), oauth_client, "login_required")
    fresh = app.test_client()
    fresh.set_cookie(SSO_COOKIE, new)
    assert query_of(_authorize(fresh, oauth_client, prompt="none").headers["Location"])["code"]


def test_login_post_redirects_with_303(http, oauth_client, user):
    resp = Browser(http).login(_login_page(http, oauth_client), user)
    # SECURITY.md: after a credential POST, 303 (never 307, which would re-post the password).
    assert resp.status_code == 303
