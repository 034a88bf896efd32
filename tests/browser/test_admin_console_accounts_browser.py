"""The console's Accounts area in a real browser (issue 6): Debian's chromium against a
gunicorn-served IdP. A citizen registers with a registry-verified identity (issue 3) and
is logged in; a user-admin finds them by phone number, locks them — the citizen's
session ends at once — and reveals the full ID number for a stated reason, shown once.
An auditor sees the account with masked data but no lock or reveal form, and a forged
POST from the auditor's own session is refused by the server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext

from .conftest import PageLog
from .pages import arrive
from .test_admin_console_browser import expect_refusals, nav_areas, new_admin
from .test_realname_browser import ID_NUMBER, MASKED_PHONE, PHONE, REGISTRY_CSV, SmsLog, register

pytestmark = [pytest.mark.browser, pytest.mark.live]

MakeContext = Callable[..., BrowserContext]
MASKED_ID = ID_NUMBER[:6] + "********" + ID_NUMBER[14:]
REASON = "区人社局来函（2026）第 42 号：核对参保人身份"


@pytest.fixture
def registry(live_idp: Any, tmp_path: Path) -> None:
    csv = tmp_path / "registry.csv"
    csv.write_text(REGISTRY_CSV, encoding="utf-8")
    report = live_idp.cli("realname", "import-registry", str(csv))
    assert report["imported"] == 2, report


def test_user_admin_finds_a_citizen_by_phone_locks_them_and_reveals_the_id_number(
    live_idp: Any, registry: None, new_context: MakeContext, page_log: PageLog
) -> None:
    # The citizen registers (name + ID number checked in the registry, SMS code) and is
    # logged in on the account page.
    citizen = new_context(locale="zh-CN").new_page()
    register(citizen, live_idp, page_log, SmsLog(live_idp))
    arrive(citizen, live_idp.issuer, "/account", page_log)

    page, _ = new_admin(live_idp, new_context, page_log, "useradmin", "user-admin")
    assert nav_areas(page) == {"accounts"}
    page.click("#nav-accounts")
    arrive(page, live_idp.issuer, "/admin/accounts", page_log)
    page.fill("#q", PHONE)
    page.click("#search")
    page.wait_for_selector("#accounts")
    page_log.collect_csp(page)
    assert page.get_attribute("#matched-by", "data-by") == "phone"
    rows = page.locator("#accounts tbody tr")
    assert rows.count() == 1
    # The search went as a POST: the phone number is in no URL, and the page shows the
    # ID number masked only.
    assert PHONE not in page.url and PHONE not in page.content() and ID_NUMBER not in page.content()
    assert MASKED_ID in rows.first.inner_text()
    account_id = rows.first.get_attribute("data-account-id")
    rows.first.locator("a").click()
    arrive(page, live_idp.issuer, f"/admin/accounts/{account_id}", page_log)
    assert page.inner_text("#account-id-number").strip() == MASKED_ID
    assert page.inner_text("#account-phone").startswith(MASKED_PHONE)
    assert page.inner_text("#account-sessions").strip() == "1"

    page.click("#account-lock")
    page.wait_for_selector("#done[data-done=locked]")
    page_log.collect_csp(page)
    assert page.get_attribute("#account-status", "data-status") == "locked"
    assert page.inner_text("#account-sessions").strip() == "0"
    # The citizen's session ended with the lock: the account page asks for a login again.
    citizen.goto(live_idp.issuer + "/account")
    arrive(citizen, live_idp.issuer, "/login", page_log)

    page.click("#account-reveal")
    arrive(page, live_idp.issuer, f"/admin/accounts/{account_id}/reveal", page_log)
    assert ID_NUMBER not in page.content()
    page.fill("#reason", REASON)
    page.click("#reveal-submit")
    page.wait_for_selector("#revealed-id-number")
    page_log.collect_csp(page)
    assert page.inner_text("#revealed-id-number").strip() == ID_NUMBER
    # Shown once: a reload of the same URL no longer carries it.
    page.reload()
    page.wait_for_selector("#account-status")
    assert page.locator("#revealed-id-number").count() == 0 and ID_NUMBER not in page.content()
    page_log.assert_clean()


def test_auditor_sees_the_account_but_cannot_lock_or_reveal(
    live_idp: Any, new_context: MakeContext, page_log: PageLog
) -> None:
    created = live_idp.cli("users", "create", "--username", "citizen", "--password", "a long enough secret",
                           "--phone", "13912340000")
    account_id = str(created["id"])
    page, _ = new_admin(live_idp, new_context, page_log, "watcher", "auditor")
    assert "accounts" in nav_areas(page)
    page.click("#nav-accounts")
    arrive(page, live_idp.issuer, "/admin/accounts", page_log)
    page.fill("#q", "citizen")
    page.click("#search")
    page.wait_for_selector(f'tr[data-account-id="{account_id}"]')
    page.click(f'tr[data-account-id="{account_id}"] a')
    arrive(page, live_idp.issuer, f"/admin/accounts/{account_id}", page_log)
    assert page.inner_text("#account-phone").startswith("139****0000")
    assert page.locator("#account-actions").count() == 0
    assert page.locator("#account-lock").count() == 0 and page.locator("#account-reveal").count() == 0
    assert page.locator("#reidentify-link").count() == 0

    # A forged request from the auditor's own session, with a valid CSRF token: refused.
    csrf = page.get_attribute("header form input[name=csrf_token]", "value")
    assert csrf
    for path, form in ((f"/admin/accounts/{account_id}/lock", {}),
                       (f"/admin/accounts/{account_id}/reveal", {"reason": REASON}),
                       (f"/admin/accounts/{account_id}/sessions/end-all", {})):
        resp = page.request.post(live_idp.issuer + path, form={"csrf_token": csrf, **form}, max_redirects=0)
        assert resp.status == 403, (path, resp.status)
        assert 'id="forbidden"' in resp.text()
    page.reload()
    page.wait_for_selector("#account-status")
    assert page.get_attribute("#account-status", "data-status") == "active"
    # The reveal form itself is refused as well.
    page.goto(live_idp.issuer + f"/admin/accounts/{account_id}/reveal")
    page.wait_for_selector("#forbidden")
    page_log.collect_csp(page)
    assert "accounts.reveal" in page.inner_text("main")
    expect_refusals(page_log, live_idp, [f"/admin/accounts/{account_id}/reveal"])
    page_log.assert_clean()
