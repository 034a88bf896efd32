"""Per-claim consent and the citizen's data sharing history in a real browser (issue 5):
an unticked optional claim never reaches the portal (pyoidc's userinfo lacks it),
withdrawing consent on the account page stops the portal's refresh token, and the
history page shows every release."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from playwright.sync_api import Page

from .conftest import PageLog
from .pages import land_on_rp, on_path
from .relying_party import RelyingParty

pytestmark = [pytest.mark.browser, pytest.mark.live]

USERNAME, PASSWORD = "alice", "correct horse battery"
SCOPE = "openid profile phone offline_access"


def _log_in(page: Page, idp: Any, log: PageLog) -> None:
    page.wait_for_url(on_path(idp.issuer, "/login"))
    page.wait_for_load_state("domcontentloaded")
    log.collect_csp(page)
    page.fill("#identifier", USERNAME)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")


def _refresh(idp: Any, rp: RelyingParty, refresh_token: str) -> requests.Response:
    # As the portal would: RFC 6749 §6 with its registered client_secret_basic.
    return requests.post(idp.issuer + "/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token},
                         auth=(rp.client.client_id, rp.client.client_secret), timeout=30)


def test_untick_withdraw_and_history(live_idp: Any, relying_party: Any, new_context: Any, page_log: PageLog) -> None:
    live_idp.cli("users", "create", "--username", USERNAME, "--password", PASSWORD, "--name", "张三",
                 "--phone", "13800138000")
    rp = relying_party("社保服务 Portal", scopes=("openid", "profile", "phone", "offline_access"))
    page = new_context(locale="zh-CN").new_page()

    # 1. The consent page lists each claim; the citizen unticks the phone number.
    page.goto(rp.login_url(scope=SCOPE))
    _log_in(page, live_idp, page_log)
    page.wait_for_url(on_path(live_idp.issuer, "/consent"))
    page_log.collect_csp(page)
    assert page.is_checked("#claim-name") and page.is_checked("#claim-phone_number")
    page.uncheck("#claim-phone_number")
    page.click("#consent-allow")
    first = land_on_rp(page, rp, page_log)
    assert first.userinfo is not None and first.userinfo["name"] == "张三"
    assert "phone_number" not in first.userinfo  # never released, though the scope asked for it
    assert first.refresh_token

    # 2. Logging in again at the portal: SSO and the remembered choice, no consent page.
    page.goto(rp.login_url(scope=SCOPE))
    second = land_on_rp(page, rp, page_log)
    assert second.userinfo is not None and "phone_number" not in second.userinfo
    assert _refresh(live_idp, rp, second.refresh_token or "").status_code == 200

    # 3. The history page: the portal among those with active consent, and both releases.
    page.goto(live_idp.issuer + "/account/history")
    page.wait_for_selector("#history")
    page_log.collect_csp(page)
    assert "社保服务 Portal" in page.inner_text("#consents")
    releases = page.locator("#history li").all_inner_texts()
    # Two code exchanges and one refresh, each a release; none of them of the phone number.
    assert len([r for r in releases if "社保服务 Portal" in r]) == 3, releases
    assert all("姓名" in r and "手机号码" not in r for r in releases)

    # 4. Withdrawing consent on the account page stops the portal's refresh tokens.
    page.goto(live_idp.issuer + "/account")
    page.wait_for_selector("#consents")
    page.click(f"#withdraw-{rp.client.client_id}")
    page.wait_for_load_state("load")
    refused = _refresh(live_idp, rp, first.refresh_token or "")
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    page.goto(live_idp.issuer + "/account/history")
    page.wait_for_selector("#history")
    assert "社保服务 Portal" not in page.inner_text("#consents")
    # The record of what was shared stays after the withdrawal (PIPL Art. 45: the citizen can see it).
    assert len(page.locator("#history li").all_inner_texts()) == 3
    page_log.assert_clean()
