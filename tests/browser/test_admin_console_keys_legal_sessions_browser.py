"""The console's Keys, Legal persons and Sessions areas in a real browser (issue 6):
Debian's chromium against a gunicorn-served IdP, administrators logging in through
Yiwang itself with password and TOTP. A superadmin rotates the ES256 key and unpublishes
the retired one, and the IdP's public /jwks.json follows (RFC 7517 §5); a ca-admin finds
a company by its USCC, revokes its agent's mandate and unbinds the certificate it logged
in with, which then no longer logs in; a user-admin has no legal-person area, and ends a
citizen's SSO session so that the citizen has to log in again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Page

from tests.support.pki import Province, make_crl, three_provinces

from .conftest import PageLog
from .pages import Traffic, arrive, land_on_rp
from .relying_party import RelyingParty
from .test_admin_console_browser import MakeContext, expect_refusals, nav_areas, new_admin
from .test_certificate_login_browser import (
    USCC,
    certificate_login,
    load_crl,
    open_certificate_page,
    pem,
    sign_with_tool,
    submit_certificate,
)

pytestmark = [pytest.mark.browser, pytest.mark.live]

MakeRp = Callable[..., RelyingParty]
CITIZEN, CITIZEN_PASSWORD = "citizen", "a citizen's long passphrase"


def key_rows(page: Page) -> dict[str, dict[str, str]]:
    """The keys table by kid: state, algorithm and the page's "published" column."""
    rows = page.eval_on_selector_all(
        "#keys tbody tr",
        "rs => rs.map(r => ({kid: r.dataset.kid, state: r.dataset.state,"
        " alg: r.cells[1].innerText.trim(), published: r.querySelector('.published').innerText.trim()}))",
    )
    return {r["kid"]: r for r in rows}


def the_active(rows: dict[str, dict[str, str]], alg: str) -> str:
    [kid] = [k for k, r in rows.items() if r["alg"] == alg and r["state"] == "active"]
    return kid


def public_kids(idp: Any) -> set[str]:
    """What a relying party verifying our tokens sees (RFC 7517 §5), fetched without the browser."""
    resp = requests.get(idp.issuer + "/jwks.json", timeout=30)
    assert resp.status_code == 200, resp.status_code
    return {k["kid"] for k in resp.json()["keys"]}


def test_superadmin_rotates_the_es256_key_and_unpublishes_the_old_one(
    live_idp: Any, new_context: MakeContext, page_log: PageLog
) -> None:
    page, _ = new_admin(live_idp, new_context, page_log, "rootadmin", "superadmin")
    page.click("#nav-keys")
    arrive(page, live_idp.issuer, "/admin/keys", page_log)
    before = key_rows(page)
    old = the_active(before, "ES256")
    [upcoming] = [k for k, r in before.items() if r["alg"] == "ES256" and r["state"] == "next"]
    assert {old, upcoming} <= public_kids(live_idp)

    page.click("#rotate-ES256")
    page.wait_for_selector('#done[data-done="rotated"]')
    page_log.collect_csp(page)
    after = key_rows(page)
    # DESIGN.md §4: next → active → retired; the retired key stays published for the overlap.
    new = the_active(after, "ES256")
    assert new == upcoming != old
    assert (after[old]["state"], after[old]["published"]) == ("retired", "yes")
    assert after[new]["published"] == "yes"
    # A fresh next key was published ahead, and RS256 was left alone.
    [fresh] = [k for k, r in after.items() if r["alg"] == "ES256" and r["state"] == "next"]
    assert fresh not in before and after[fresh]["published"] == "yes"
    assert the_active(after, "RS256") == the_active(before, "RS256")
    published = public_kids(live_idp)
    assert {new, old} <= published

    # Retire ahead of schedule and take it out of the key set (a compromised key).
    page.click(f"#unpublish-{old}")
    page.wait_for_selector('#done[data-done="retired"]')
    page_log.collect_csp(page)
    final = key_rows(page)
    assert (final[old]["state"], final[old]["published"]) == ("retired", "no")
    assert page.locator(f"#unpublish-{old}").count() == 0 and page.locator(f"#retire-{old}").count() == 0
    assert the_active(final, "ES256") == new
    published = public_kids(live_idp)
    assert old not in published and new in published
    page_log.assert_clean()


# -- legal persons ------------------------------------------------------------------------


@pytest.fixture
def province(live_idp: Any, tmp_path: Path) -> Province:
    """One provincial CA registered as an operator would, with a current empty CRL."""
    fujian = three_provinces()[0]
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(pem(fujian.root.cert) + pem(fujian.intermediate.cert))
    added = live_idp.cli(
        "certificates", "ca", "add", "--name", fujian.name, "--province", fujian.province, "--pem", str(bundle)
    )
    loaded = load_crl(live_idp, tmp_path, added["id"], make_crl(fujian.intermediate))
    assert loaded["entries"] == 0, loaded
    return fujian


def company_logs_in(page: Page, idp: Any, portal: RelyingParty, leaf: Any, log: PageLog, tmp_path: Path) -> None:
    """The company's certificate login at a portal: the legal person is created and the
    certificate bound to it (issue 4)."""
    certificate_login(page, idp, portal, leaf, log, tmp_path)
    if page.locator("#consent-allow").count():
        page.click("#consent-allow")
    login = land_on_rp(page, portal, log)
    assert login.userinfo is not None and login.userinfo["uscc"] == USCC


def test_ca_admin_finds_a_company_by_uscc_revokes_the_mandate_and_unbinds_the_certificate(
    live_idp: Any,
    province: Province,
    relying_party: MakeRp,
    new_context: MakeContext,
    page_log: PageLog,
    tmp_path: Path,
) -> None:
    portal = relying_party("企业服务门户", scopes=("openid", "legal_person"))
    leaf = province.issue(USCC)
    company_logs_in(new_context(locale="zh-CN").new_page(), live_idp, portal, leaf, page_log, tmp_path)
    live_idp.cli("users", "create", "--username", "agent", "--password", CITIZEN_PASSWORD)
    granted = live_idp.cli(
        "certificates", "mandate", "grant", "--agent", "agent", "--uscc", USCC, "--scope", "tax.filing", "--by", "setup"
    )
    mandate_id = granted["mandate_id"]

    page, _ = new_admin(live_idp, new_context, page_log, "caadmin", "ca-admin")
    page.click("#nav-legal_persons")
    arrive(page, live_idp.issuer, "/admin/legal-persons", page_log)
    page.fill("#q", USCC.lower())  # any case: the USCC is matched exactly, upper-cased
    page.click("#search")
    page.wait_for_selector("#legal-persons")
    page_log.collect_csp(page)
    rows = page.locator("#legal-persons tbody tr")
    assert rows.count() == 1 and rows.first.get_attribute("data-uscc") == USCC
    person_id = rows.first.get_attribute("data-legal-person-id")
    rows.first.locator("a").click()
    detail = f"/admin/legal-persons/{person_id}"
    arrive(page, live_idp.issuer, detail, page_log)
    assert page.inner_text("#legal-person-uscc").strip() == USCC
    mandate = page.locator(f'#mandates tr[data-mandate-id="{mandate_id}"]')
    assert mandate.get_attribute("data-state") == "active" and "agent" in mandate.inner_text()
    [credential] = page.eval_on_selector_all("#credentials tbody tr", "rs => rs.map(r => r.dataset.credentialId)")
    assert page.get_attribute(f'tr[data-credential-id="{credential}"]', "data-status") == "active"
    assert format(leaf.cert.serial_number, "x") in page.inner_text("#credentials").lower()

    page.click(f"#revoke-mandate-{mandate_id}")
    page.wait_for_selector('#done[data-done="mandate_revoked"]')
    page_log.collect_csp(page)
    assert mandate.get_attribute("data-state") == "revoked"
    assert page.locator(f"#revoke-mandate-{mandate_id}").count() == 0
    [listed] = live_idp.cli("certificates", "mandate", "list", "--uscc", USCC)
    assert (listed["mandate_id"], listed["revoked"]) == (mandate_id, True)

    # Unbinding is permanent: the server acts only on a ticked confirmation box (the
    # browser insists on it too), so a POST without it changes nothing.
    csrf = page.get_attribute("header form input[name=csrf_token]", "value")
    assert csrf
    unconfirmed = page.request.post(
        live_idp.issuer + f"{detail}/credentials/{credential}/unbind", form={"csrf_token": csrf}, max_redirects=0
    )
    assert unconfirmed.status == 303, unconfirmed.status
    page.reload()
    page.wait_for_selector("#credentials")
    assert page.get_attribute(f'tr[data-credential-id="{credential}"]', "data-status") == "active"
    page.check(f"#unbind-confirm-{credential}")
    page.click(f"#unbind-{credential}")
    page.wait_for_selector('#done[data-done="unbound"]')
    page_log.collect_csp(page)
    assert page.get_attribute(f'tr[data-credential-id="{credential}"]', "data-status") == "revoked"
    assert page.locator(f"#unbind-{credential}").count() == 0

    # The unbound certificate no longer logs in, although its CA still vouches for it.
    company = new_context(locale="zh-CN")
    traffic = Traffic(company)
    again = company.new_page()
    challenge = open_certificate_page(again, live_idp, portal, page_log)
    with again.expect_console_message(lambda msg: msg.type == "error"):
        submit_certificate(again, leaf, sign_with_tool(leaf, challenge, tmp_path))
    arrive(again, live_idp.issuer, "/login/certificate", page_log)
    again.locator("#form-error").wait_for(state="visible")
    assert not any(r.url.startswith(portal.base_url + "/callback") for r in traffic.requests)
    refused = f"status of 403 (FORBIDDEN) ({live_idp.issuer}/login/certificate)"
    assert [e for e in page_log.console_errors if not e.endswith(refused)] == [], page_log.console_errors
    page_log.console_errors.clear()
    page_log.assert_clean()


def test_user_admin_has_no_legal_person_area(live_idp: Any, new_context: MakeContext, page_log: PageLog) -> None:
    page, _ = new_admin(live_idp, new_context, page_log, "useradmin", "user-admin")
    assert "legal_persons" not in nav_areas(page) and page.locator("#nav-legal_persons").count() == 0
    page.goto(live_idp.issuer + "/admin/legal-persons")
    page.wait_for_selector("#forbidden")
    page_log.collect_csp(page)
    assert "legal.read" in page.inner_text("main")
    expect_refusals(page_log, live_idp, ["/admin/legal-persons"])
    page_log.assert_clean()


# -- sessions -----------------------------------------------------------------------------


def test_user_admin_ends_a_citizens_sso_session(
    live_idp: Any, relying_party: MakeRp, new_context: MakeContext, page_log: PageLog
) -> None:
    created = live_idp.cli("users", "create", "--username", CITIZEN, "--password", CITIZEN_PASSWORD)
    account_id = created["id"]
    portal = relying_party("社保服务 Portal")

    # The citizen logs in at a portal, in a browser of their own: an SSO session at Yiwang.
    citizen = new_context(locale="zh-CN").new_page()
    citizen.goto(portal.login_url())
    arrive(citizen, live_idp.issuer, "/login", page_log)
    citizen.fill("#identifier", CITIZEN)
    citizen.fill("#password", CITIZEN_PASSWORD)
    citizen.click("#login-submit")
    citizen.wait_for_selector("#consent-allow, #rp")
    if citizen.locator("#consent-allow").count():
        citizen.click("#consent-allow")
    login = land_on_rp(citizen, portal, page_log)
    assert login.id_token is not None
    sid = login.id_token["sid"]
    # The session is live: the account page opens without a login.
    citizen.goto(live_idp.issuer + "/account")
    arrive(citizen, live_idp.issuer, "/account", page_log)

    page, _ = new_admin(live_idp, new_context, page_log, "useradmin", "user-admin")
    page.goto(live_idp.issuer + f"/admin/accounts/{account_id}")
    arrive(page, live_idp.issuer, f"/admin/accounts/{account_id}", page_log)
    assert page.inner_text("#account-sessions").strip() == "1"
    page.click("#account-sessions-link")
    arrive(page, live_idp.issuer, f"/admin/accounts/{account_id}/sessions", page_log)
    # OIDC Back-Channel Logout 1.0 §2.1: the sid the portal got in its ID token names this session.
    assert page.eval_on_selector_all("#sessions tbody tr", "rs => rs.map(r => r.dataset.sid)") == [sid]
    assert portal.client.client_id in page.inner_text(f'tr[data-sid="{sid}"]')

    page.click(f"#end-{sid}")
    page.wait_for_selector('#done[data-done="session_ended"]')
    page_log.collect_csp(page)
    assert page.locator("#no-sessions").is_visible() and page.locator(f'tr[data-sid="{sid}"]').count() == 0
    # The citizen's next request needs a login again.
    citizen.goto(live_idp.issuer + "/account")
    arrive(citizen, live_idp.issuer, "/login", page_log)
    page_log.assert_clean()
