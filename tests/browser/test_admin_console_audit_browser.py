"""The console's Audit area in a real browser (issue 6, 电子监察): after a burst of failed
logins against a citizen's account, an auditor (password + TOTP through Yiwang itself)
searches the trail for the failures, sees the burst as an alert (and its count in the
navigation), exports the same search as JSON lines, verifies the chain, and finds no
button that changes anything in any area, the clients page included."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page

from .conftest import PageLog
from .pages import arrive
from .test_admin_console_browser import MakeContext, nav_areas, new_admin

pytestmark = [pytest.mark.browser, pytest.mark.live]

CITIZEN_PASSWORD = "a citizen's long passphrase"
BURST = 3
# The only state-changing form an auditor may see: running the verification (it changes
# nothing but records that it ran). The logout form sits in the header, outside <main>.
ALLOWED_POSTS = {"/admin/audit/verify"}


@pytest.fixture
def live_idp(fresh_database: str, redis_url: str, tmp_path: Path) -> Iterator[Any]:
    """The shared live IdP, with the per-account failed-login alert at ``BURST`` failures
    (YIWANG_ALERT_LOGIN_FAILURES_PER_ACCOUNT) so a few attempts raise it."""
    import redis

    from tests.live import free_port, prepare_live_idp

    port = free_port()
    idp = prepare_live_idp(fresh_database, redis_url, tmp_path, port)
    idp.env["YIWANG_ALERT_LOGIN_FAILURES_PER_ACCOUNT"] = str(BURST)
    idp.base_url = idp.start_instance(port, tmp_path)  # type: ignore[attr-defined]
    yield idp
    idp.stop()
    r = redis.Redis.from_url(redis_url)
    for key in r.scan_iter(match=idp.env["YIWANG_REDIS_PREFIX"] + "*"):
        r.delete(key)
    r.close()


def fail_logins(page: Page, idp: Any, username: str, log: PageLog) -> None:
    """Someone guessing a citizen's password: ``BURST`` wrong passwords on /login."""
    for attempt in range(BURST):
        page.goto(idp.issuer + "/account")
        arrive(page, idp.issuer, "/login", log)
        page.fill("#identifier", username)
        page.fill("#password", f"wrong guess {attempt}")
        page.click("#login-submit")
        page.wait_for_selector("#login-error")
    # Chromium reports each 401 answer; they are the point of this step.
    assert len(log.console_errors) == BURST and all("401" in e for e in log.console_errors), log.console_errors
    log.console_errors.clear()


def change_controls(page: Page) -> list[str]:
    """POST forms (other than the allowed ones) and links to create/edit pages in <main>.
    A search form may POST (the accounts search keeps phone and ID numbers out of URLs):
    it declares role="search"."""
    actions = page.eval_on_selector_all(
        "main form", "fs => fs.filter(f => f.method === 'post' && f.getAttribute('role') !== 'search')"
                     ".map(f => f.action)")
    links = page.eval_on_selector_all("main a", "as => as.map(a => a.href)")
    forms = [a for a in actions if urlsplit(a).path not in ALLOWED_POSTS]
    edits = [h for h in links if urlsplit(h).path.endswith(("/new", "/edit"))]
    return forms + edits


def test_auditor_finds_the_burst_exports_it_and_can_change_nothing(
    live_idp: Any, new_context: MakeContext, page_log: PageLog
) -> None:
    citizen = live_idp.cli("users", "create", "--username", "citizen", "--password", CITIZEN_PASSWORD)
    subject = f"account:{citizen['id']}"
    portal = live_idp.cli("clients", "create", "--name", "Tax Portal", "--redirect-uri",
                          "https://tax.example.gov.cn/cb")
    fail_logins(new_context().new_page(), live_idp, "citizen", page_log)

    page, _ = new_admin(live_idp, new_context, page_log, "inspector", "auditor")
    assert {"audit", "alerts"} <= nav_areas(page)
    assert page.inner_text("#badge-alerts").strip() == "1"

    # Search: action prefix and outcome, newest first.
    page.click("#nav-audit")
    arrive(page, live_idp.issuer, "/admin/audit", page_log)
    page.fill("#action", "login.failure")
    page.select_option("#outcome", "denied")
    page.click("#audit-submit")
    arrive(page, live_idp.issuer, "/admin/audit", page_log)
    rows = page.locator("#events tbody tr")
    assert rows.count() == BURST
    assert set(page.eval_on_selector_all("#events tbody tr", "rs => rs.map(r => r.dataset.action)")) == {"login.failure"}
    assert subject in page.inner_text("#events")
    assert page.input_value("#action") == "login.failure"

    # Export the same search.
    with page.expect_download() as info:
        page.click("#export")
    download = info.value
    assert download.suggested_filename.endswith(".jsonl")
    lines = Path(download.path()).read_text(encoding="utf-8").splitlines()
    events = [json.loads(line) for line in lines]
    assert len(events) == BURST and {(e["action"], e["outcome"], e["target"]) for e in events} == {
        ("login.failure", "denied", subject)}

    # The alert for the burst, with a link to the account's refused events.
    page.click("#nav-alerts")
    arrive(page, live_idp.issuer, "/admin/alerts", page_log)
    alert = page.locator(f'tr[data-kind="login_failures_account"][data-key="{subject}"]')
    assert alert.count() == 1 and alert.locator(".count").inner_text().strip() == str(BURST)
    alert.locator("a").click()
    arrive(page, live_idp.issuer, "/admin/audit", page_log)
    assert page.locator("#events tbody tr").count() == BURST

    # The chain: verify now (the one POST an auditor has) and see the result.
    page.click("#chain-link")
    arrive(page, live_idp.issuer, "/admin/audit/chain", page_log)
    page.click("#verify-now")
    page.wait_for_selector("#done")
    page_log.collect_csp(page)
    assert page.get_attribute("#last-verification", "data-ok") == "yes"

    # No change controls anywhere: every area of the navigation, a client's page, and
    # each page of the audit area.
    visited = []
    for area in sorted(nav_areas(page)):
        page.click(f"#nav-{area}")
        page.wait_for_load_state("load")
        page_log.collect_csp(page)
        visited.append(urlsplit(page.url).path)
        assert change_controls(page) == [], (area, change_controls(page))
    assert "/admin/clients" in visited
    for path in (f"/admin/clients/{portal['client_id']}", "/admin/audit/chain", "/admin/"):
        page.goto(live_idp.issuer + path)
        page.wait_for_load_state("load")
        page_log.collect_csp(page)
        assert change_controls(page) == [], (path, change_controls(page))
    assert page.locator("#client-new").count() == 0
    page_log.assert_clean()
