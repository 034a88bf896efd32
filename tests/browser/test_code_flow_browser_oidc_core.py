"""The authorization code flow in a real browser (Debian's chromium via Playwright) against
a gunicorn-served IdP, completed and validated by pyoidc (``oic``), an independent
OpenID-certified relying party library: OIDC Core §3.1, RFC 7636, RFC 9207, OAuth 2.0
Form Post Response Mode, OIDC RP-Initiated Logout 1.0, and the login page's CSP."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from jwkest import BadSignature
from oic.oic.message import AtHashError, EndSessionRequest, verify_id_token
from playwright.sync_api import BrowserContext, Page, Response, Route

from .conftest import PageLog
from .pages import Traffic, on_path
from .relying_party import RelyingParty

pytestmark = [pytest.mark.browser, pytest.mark.live]

USERNAME, PASSWORD = "alice", "correct horse battery"
SCREENSHOT = Path("/tmp/yiwang-login.png")  # noqa: S108 - a fixed path the reviewer looks at

MakeContext = Callable[..., BrowserContext]
MakeRp = Callable[[str], RelyingParty]


@pytest.fixture
def alice(live_idp: Any) -> str:
    live_idp.cli("users", "create", "--username", USERNAME, "--password", PASSWORD, "--name", "张三")
    return USERNAME





def log_in(page: Page, idp: Any, log: PageLog) -> None:
    """On Yiwang's login page: fill the form and submit."""
    page.wait_for_url(on_path(idp.issuer, "/login"))
    page.wait_for_load_state("domcontentloaded")
    log.collect_csp(page)
    page.fill("#identifier", USERNAME)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")


def approve(page: Page, idp: Any, log: PageLog) -> None:
    page.wait_for_url(on_path(idp.issuer, "/consent"))
    page.wait_for_load_state("domcontentloaded")
    log.collect_csp(page)
    page.click("#consent-allow")


def land_on_rp(page: Page, url_test: Callable[[str], bool]) -> None:
    page.wait_for_url(url_test)
    page.wait_for_selector("#rp")


def full_login(page: Page, idp: Any, rp: RelyingParty, log: PageLog, **params: str) -> None:
    page.goto(rp.login_url(**params))
    log_in(page, idp, log)
    approve(page, idp, log)
    land_on_rp(page, on_path(rp.base_url, "/callback"))


def test_code_flow_validated_by_independent_relying_party(
    live_idp: Any, alice: str, relying_party: MakeRp, new_context: MakeContext, page_log: PageLog
) -> None:
    rp = relying_party("浙里办 Portal")
    context = new_context(locale="zh-CN")
    traffic = Traffic(context)
    page = context.new_page()

    page.goto(rp.login_url())
    started = int(time.time())
    log_in(page, live_idp, page_log)
    approve(page, live_idp, page_log)
    land_on_rp(page, on_path(rp.base_url, "/callback"))
    finished = int(time.time())

    login = rp.next_login()
    sent = traffic.authorization_request(live_idp.issuer)
    # RFC 7636 §4.3: the library sent an S256 challenge (our profile requires it).
    assert sent["code_challenge_method"] == ["S256"]
    assert login.method == "GET"
    # RFC 9207 §2: the authorization response names its issuer.
    assert login.params["iss"] == live_idp.issuer
    # RFC 6749 §4.1.2: state comes back unchanged.
    assert login.params["state"] == sent["state"][0]

    idt = login.id_token
    assert idt is not None and login.userinfo is not None
    # OIDC Core §3.1.3.7 (checked by pyoidc too): issuer, audience, nonce.
    assert idt["iss"] == live_idp.issuer
    assert idt["aud"] == [rp.client.client_id]
    assert idt["nonce"] == sent["nonce"][0]
    assert idt["exp"] > finished
    # OIDC Core §5.3.2: userinfo's sub is the ID token's sub.
    assert login.userinfo["sub"] == idt["sub"]
    # DESIGN.md §5, RFC 8176 §2: an account-only password login.
    assert idt["acr"] == "cn-l0"
    assert idt["amr"] == ["pwd"]
    # OIDC Core §2: auth_time is when the user actually authenticated.
    assert started <= idt["auth_time"] <= finished
    # OIDC Core §3.1.3.7 step 6: signed with a key from the discovered JWKS (ES256 default).
    assert idt.jws_header["alg"] == "ES256"
    jwks_kids = {key.kid for key in rp.client.keyjar.get_verify_key(owner=live_idp.issuer)}
    assert idt.jws_header["kid"] in jwks_kids
    # OIDC Core §3.1.3.8: pyoidc's at_hash check is live — it refuses another token.
    with pytest.raises(AtHashError):
        verify_id_token(
            {"id_token": login.id_token_jwt, "access_token": login.access_token + "x"},
            check_hash=True, keyjar=rp.client.keyjar, iss=live_idp.issuer, client_id=rp.client.client_id,
        )
    # OIDC Core §3.1.3.7 step 6: and its signature check is live — a changed sub is refused.
    header, payload, signature = login.id_token_jwt.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "someone-else"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(BadSignature):
        verify_id_token(
            {"id_token": f"{header}.{forged}.{signature}"},
            keyjar=rp.client.keyjar, iss=live_idp.issuer, client_id=rp.client.client_id,
        )
    page_log.collect_csp(page)
    page_log.assert_clean()


def test_login_page_csp_clean_and_localised(
    live_idp: Any, alice: str, relying_party: MakeRp, new_context: MakeContext, page_log: PageLog
) -> None:
    rp = relying_party("Portal")
    page = new_context(locale="zh-CN").new_page()
    responses: list[Response] = []
    page.on("response", lambda response: responses.append(response))

    page.goto(rp.login_url())
    page.wait_for_url(on_path(live_idp.issuer, "/login"))
    page.wait_for_selector("#login-submit")
    page_log.collect_csp(page)
    [login_page] = [r for r in responses if on_path(live_idp.issuer, "/login")(r.url)]
    csp = login_page.headers["content-security-policy"]
    # SECURITY.md "Pages and sessions": no inline script, no framing, no plugins.
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.locator("h1").inner_text() == "登录"
    assert page.locator("label[for=identifier]").inner_text() == "用户名、手机号或身份证号"
    # The stylesheet is ours and loaded (CSP style-src 'self').
    assert page.evaluate("getComputedStyle(document.body).fontFamily") != ""
    assert any(urlsplit(r.url).path.endswith("/yiwang.css") and r.status == 200 for r in responses)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    # OIDC Core §3.1.2.1 ui_locales: English when the RP asks for it, over the browser's zh.
    page.goto(rp.login_url(ui_locales="en"))
    page.wait_for_url(on_path(live_idp.issuer, "/login"))
    page.wait_for_selector("#login-submit")
    page_log.collect_csp(page)
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("h1").inner_text() == "Log in"

    # Policy: Chinese is the default when the browser prefers neither language.
    other = new_context(locale="fr-FR").new_page()
    other.goto(rp.login_url())
    other.wait_for_url(on_path(live_idp.issuer, "/login"))
    other.wait_for_selector("#login-submit")
    page_log.collect_csp(other)
    assert other.locator("html").get_attribute("lang") == "zh-CN"
    assert other.locator("#login-submit").inner_text() == "登录"

    # The whole flow from this page on stays free of console errors and CSP violations.
    log_in(page, live_idp, page_log)
    approve(page, live_idp, page_log)
    land_on_rp(page, on_path(rp.base_url, "/callback"))
    assert rp.next_login().id_token is not None
    page_log.assert_clean()


def test_form_post_response_mode(
    live_idp: Any, alice: str, relying_party: MakeRp, new_context: MakeContext, page_log: PageLog
) -> None:
    rp = relying_party("Portal")
    context = new_context(locale="zh-CN")
    traffic = Traffic(context)
    page = context.new_page()
    seen: dict[str, Any] = {}

    def hold_script(route: Route) -> None:
        # The form cannot submit before its script runs: look at the finished form now.
        page.wait_for_selector("#form-post input[name=iss]", state="attached")
        seen["html"] = page.content()
        route.continue_()

    def keep_headers(response: Response) -> None:
        if response.url.startswith(live_idp.issuer + "/authorize/resume"):
            seen["csp"] = response.headers.get("content-security-policy")

    page.route(live_idp.issuer + "/static/form_post.js", hold_script)
    page.on("response", keep_headers)
    full_login(page, live_idp, rp, page_log, response_mode="form_post")

    login = rp.next_login()
    sent = traffic.authorization_request(live_idp.issuer)
    # OAuth 2.0 Form Post Response Mode §2: the parameters arrive in a POST body.
    assert login.method == "POST"
    assert set(login.params) == {"code", "state", "iss"}
    assert login.params["state"] == sent["state"][0]
    # RFC 9207 §2: iss in the form_post response too.
    assert login.params["iss"] == live_idp.issuer
    assert login.id_token is not None and login.userinfo is not None
    assert login.userinfo["sub"] == login.id_token["sub"]
    # Form Post: the auto-submit script is a file from our origin; no inline script, and
    # the page's CSP would block one (SECURITY.md "Pages and sessions").
    html = seen["html"]
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S)
    assert [(re.findall(r'src="([^"]+)"', attrs), content.strip()) for attrs, content in scripts] == [
        (["/static/form_post.js"], "")
    ]
    assert f'action="{rp.redirect_uri}" id="form-post"' in html
    csp = seen["csp"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    # The form may post to the client's origin and nowhere else.
    assert f"form-action 'self' {rp.base_url};" in csp
    assert traffic.urls(live_idp.issuer + "/static/form_post.js")
    posted = [r for r in traffic.requests if r.url == rp.redirect_uri and r.method == "POST"]
    assert len(posted) == 1
    page_log.assert_clean()


def test_single_sign_on_across_clients(
    live_idp: Any, alice: str, relying_party: MakeRp, new_context: MakeContext, page_log: PageLog
) -> None:
    first, second = relying_party("Portal A"), relying_party("Portal B")
    context = new_context(locale="zh-CN")
    traffic = Traffic(context)
    page = context.new_page()
    full_login(page, live_idp, first, page_log)
    one = first.next_login()

    traffic.clear()
    # scope=openid alone needs no consent, so with the SSO session nothing is shown.
    page.goto(second.login_url(scope="openid"))
    land_on_rp(page, on_path(second.base_url, "/callback"))
    two = second.next_login()
    # OIDC Core §3.1.2.3: an authenticated session needs no new login.
    assert traffic.urls(live_idp.issuer + "/login") == []
    assert traffic.urls(live_idp.issuer + "/consent") == []
    assert one.id_token is not None and two.id_token is not None
    assert two.id_token["aud"] == [second.client.client_id]
    # OIDC Core §2: auth_time stays the time of the one real authentication.
    assert two.id_token["auth_time"] == one.id_token["auth_time"]
    assert two.params["iss"] == live_idp.issuer
    page_log.assert_clean()


def test_rp_initiated_logout_then_prompt_none(
    live_idp: Any, alice: str, relying_party: MakeRp, new_context: MakeContext, page_log: PageLog
) -> None:
    rp = relying_party("Portal")
    page = new_context(locale="zh-CN").new_page()
    full_login(page, live_idp, rp, page_log)
    login = rp.next_login()
    assert login.id_token_jwt is not None

    logout = EndSessionRequest(
        id_token_hint=login.id_token_jwt,
        post_logout_redirect_uri=rp.post_logout_redirect_uri,
        state="bye-123",
    ).request(rp.client.end_session_endpoint)
    page.goto(logout)
    land_on_rp(page, on_path(rp.base_url, "/logged-out"))
    # OIDC RP-Initiated Logout 1.0 §3: back at the registered URI with the state.
    assert rp.next_logout() == {"state": "bye-123"}

    traffic = Traffic(page.context)
    page.goto(rp.login_url(prompt="none"))
    land_on_rp(page, on_path(rp.base_url, "/callback"))
    after = rp.next_login()
    # OIDC Core §3.1.2.6: the session is gone, and prompt=none shows no login page.
    assert after.error == "login_required"
    assert traffic.urls(live_idp.issuer + "/login") == []
    # RFC 6749 §4.1.2.1: state echoed on the error response.
    assert after.params["state"] == traffic.authorization_request(live_idp.issuer)["state"][0]
    # RFC 9207 §2: error responses carry iss too.
    assert after.params["iss"] == live_idp.issuer
    page_log.assert_clean()


def test_csp_violation_is_detected(
    live_idp: Any, relying_party: MakeRp, new_context: MakeContext, page_log: PageLog
) -> None:
    """The detector the other tests rely on: an inline script injected into the login page
    is blocked by the CSP and reported."""
    rp = relying_party("Portal")
    page = new_context(locale="zh-CN").new_page()
    page.goto(rp.login_url())
    page.wait_for_selector("#login-submit")
    page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.__ran = 1';"
        " document.head.appendChild(s); }"
    )
    page.wait_for_function("window.__cspViolations.length > 0")
    page_log.collect_csp(page)
    assert page.evaluate("window.__ran === undefined")
    assert [v["directive"] for v in page_log.csp_violations] == ["script-src-elem"]
    with pytest.raises(AssertionError):
        page_log.assert_clean()
