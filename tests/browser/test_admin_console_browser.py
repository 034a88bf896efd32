"""The administration console in a real browser (issue 6): Debian's chromium against a
gunicorn-served IdP. Administrators are bootstrapped as an operator would (``users
create``, ``admins grant``), enrol an authenticator on /account, and log in to /admin
through Yiwang itself with password and TOTP (the console is an OIDC client of its own
IdP, OIDC Core §3.1). A superadmin registers a client; an auditor sees but can change
nothing (no buttons, and a forged POST is refused by the server); a client-admin cannot
reach the key or account areas."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyotp
import pytest
from playwright.sync_api import BrowserContext, Page

from .conftest import PageLog
from .pages import Traffic, arrive

pytestmark = [pytest.mark.browser, pytest.mark.live]

PASSWORD = "console admin passphrase"
MakeContext = Callable[..., BrowserContext]


@dataclass
class Administrator:
    username: str
    secret: str
    used_step: int


def bootstrap(idp: Any, username: str, role: str) -> None:
    """README "Administration": an account, then a role from the server's command line."""
    idp.cli("users", "create", "--username", username, "--password", PASSWORD)
    granted = idp.cli("admins", "grant", "--username", username, "--role", role)
    assert granted["changed"] is True, granted


def idp_password(page: Page, idp: Any, username: str, log: PageLog) -> None:
    arrive(page, idp.issuer, "/login", log)
    page.fill("#identifier", username)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")


def enrol_authenticator(page: Page, idp: Any, username: str, log: PageLog) -> Administrator:
    """What the console's refusal page asks for: an authenticator enrolled at /account."""
    page.goto(idp.issuer + "/account")
    idp_password(page, idp, username, log)
    arrive(page, idp.issuer, "/account", log)
    page.goto(idp.issuer + "/account/totp")
    arrive(page, idp.issuer, "/account/totp", log)
    secret = page.inner_text("#totp-secret").strip()
    step = int(time.time()) // 30
    page.fill("#code", pyotp.TOTP(secret).at(step * 30))
    page.click("#totp-submit")
    page.wait_for_selector("#recovery-codes li")
    log.collect_csp(page)
    return Administrator(username, secret, step)


def console_login(page: Page, idp: Any, admin: Administrator, log: PageLog) -> None:
    """/admin/login → Yiwang's login page → the authenticator → back on /admin/."""
    page.goto(idp.issuer + "/admin/login")
    idp_password(page, idp, admin.username, log)
    arrive(page, idp.issuer, "/login/mfa", log)
    # RFC 6238 §5.2: the enrolment code is spent; the next step is within the drift.
    now_step = int(time.time()) // 30
    step = now_step if now_step != admin.used_step else now_step + 1
    page.fill("#totp", pyotp.TOTP(admin.secret).at(step * 30))
    page.click("#mfa-submit")
    arrive(page, idp.issuer, "/admin/", log)
    assert admin.username in page.inner_text("#who")


def new_admin(idp: Any, new_context: MakeContext, log: PageLog, username: str, role: str,
              locale: str = "en") -> tuple[Page, Traffic]:
    bootstrap(idp, username, role)
    context = new_context(locale=locale)
    traffic = Traffic(context)
    page = context.new_page()
    admin = enrol_authenticator(page, idp, username, log)
    console_login(page, idp, admin, log)
    return page, traffic


def nav_areas(page: Page) -> set[str]:
    ids = page.eval_on_selector_all("nav.areas a", "links => links.map(a => a.id)")
    return {i.removeprefix("nav-") for i in ids} - {"home"}


def expect_refusals(log: PageLog, idp: Any, paths: list[str]) -> None:
    """Chromium reports each 403 page on the console: exactly those, nothing else."""
    expected = {f"status of 403 (FORBIDDEN) ({idp.issuer}{p})" for p in paths}
    unexpected = [e for e in log.console_errors if not any(e.endswith(x) for x in expected)]
    assert unexpected == [], log.console_errors
    log.console_errors.clear()


def test_superadmin_logs_in_with_totp_and_registers_a_client(
    live_idp: Any, new_context: MakeContext, page_log: PageLog
) -> None:
    page, traffic = new_admin(live_idp, new_context, page_log, "rootadmin", "superadmin")
    # The login was a code flow against our own /authorize with PKCE S256 (OIDC Core §3.1.2.1).
    sent = traffic.authorization_request(live_idp.issuer)
    assert sent["client_id"] == ["yiwang-console"] and sent["code_challenge_method"] == ["S256"]
    assert sent["prompt"] == ["login"] and sent["nonce"] and sent["state"]
    assert {"clients", "keys"} <= nav_areas(page)

    page.click("#nav-clients")
    arrive(page, live_idp.issuer, "/admin/clients", page_log)
    page.click("#client-new")
    arrive(page, live_idp.issuer, "/admin/clients/new", page_log)
    page.fill("#name", "Social Security Portal")
    page.fill("#redirect_uris", "https://shebao.example.gov.cn/callback")
    page.check("#scope-realname")
    page.check("#claim-age_over_18")
    page.fill("#purpose-age_over_18", "Only adults may apply")
    page.select_option("#basis-age_over_18", "statutory")
    page.click("#client-save")
    page.wait_for_selector("#client-secret")
    page_log.collect_csp(page)
    assert re.fullmatch(r"/admin/clients/[A-Za-z0-9]{24}", page.url.split("?")[0].removeprefix(live_idp.issuer))
    secret = page.inner_text("#client-secret").strip()
    assert len(secret) >= 40
    assert "Only adults may apply" in page.inner_text("#claim-policy")
    assert page.inner_text("#client-scopes").split() == ["openid", "profile", "realname"]
    # Shown once: a reload of the same URL no longer carries it.
    page.reload()
    page.wait_for_selector("#client-name")
    assert page.locator("#client-secret").count() == 0
    # The operator's command line sees the same registration.
    client_id = page.inner_text("#client-id").strip()
    shown = live_idp.cli("clients", "show", client_id)
    assert shown["name"] == "Social Security Portal"
    page_log.assert_clean()


def test_auditor_sees_everything_and_can_change_nothing(
    live_idp: Any, new_context: MakeContext, page_log: PageLog
) -> None:
    portal = live_idp.cli("clients", "create", "--name", "Tax Portal", "--redirect-uri",
                          "https://tax.example.gov.cn/cb")
    page, _ = new_admin(live_idp, new_context, page_log, "watcher", "auditor")
    assert page.locator("#read-only").is_visible()
    assert {"clients", "keys"} <= nav_areas(page)

    page.click("#nav-clients")
    arrive(page, live_idp.issuer, "/admin/clients", page_log)
    assert page.locator("#client-new").count() == 0
    page.click(f'tr[data-client-id="{portal["client_id"]}"] a')
    arrive(page, live_idp.issuer, f"/admin/clients/{portal['client_id']}", page_log)
    assert page.locator("#client-actions").count() == 0 and page.locator("form[action*='/rotate']").count() == 0
    page.click("#nav-keys")
    arrive(page, live_idp.issuer, "/admin/keys", page_log)
    assert page.locator('tr[data-state="active"]').count() >= 1
    assert page.locator("form[action*='/keys/']").count() == 0
    active_before = page.eval_on_selector_all('tr[data-state="active"]', "rows => rows.map(r => r.dataset.kid)")

    # A forged request from the auditor's own session, with a valid CSRF token: the
    # server refuses it (403), whatever the page showed.
    csrf = page.get_attribute("header form input[name=csrf_token]", "value")
    assert csrf
    for path, form in ((f"/admin/clients/{portal['client_id']}/enabled", {"enabled": "no"}),
                       (f"/admin/clients/{portal['client_id']}/rotate", {}),
                       ("/admin/keys/rotate", {"alg": "ES256"})):
        resp = page.request.post(live_idp.issuer + path, form={"csrf_token": csrf, **form}, max_redirects=0)
        assert resp.status == 403, (path, resp.status)
        assert 'id="forbidden"' in resp.text()
    # Nothing changed: the client is still enabled and the active key is the same.
    page.goto(live_idp.issuer + f"/admin/clients/{portal['client_id']}")
    assert page.inner_text("#client-status").strip() == "enabled"
    page.goto(live_idp.issuer + "/admin/keys")
    assert page.get_attribute('tr[data-state="active"] >> nth=0', "data-kid") in active_before
    # And the page for a change is refused as well.
    page.goto(live_idp.issuer + f"/admin/clients/{portal['client_id']}/edit")
    page.wait_for_selector("#forbidden")
    page_log.collect_csp(page)
    expect_refusals(page_log, live_idp, [f"/admin/clients/{portal['client_id']}/edit"])
    page_log.assert_clean()


def test_client_admin_cannot_reach_keys_or_accounts(
    live_idp: Any, new_context: MakeContext, page_log: PageLog
) -> None:
    page, _ = new_admin(live_idp, new_context, page_log, "portaladmin", "client-admin", locale="zh-CN")
    assert nav_areas(page) == {"clients"}
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    refused = ["/admin/keys"]
    page.goto(live_idp.issuer + "/admin/keys")
    page.wait_for_selector("#forbidden")
    page_log.collect_csp(page)
    assert "keys.read" in page.inner_text("main")
    expect_refusals(page_log, live_idp, refused)
    # The clients area works for this role.
    page.click("#nav-clients")
    arrive(page, live_idp.issuer, "/admin/clients", page_log)
    assert page.locator("#client-new").is_visible()
    page_log.assert_clean()
