"""The console's certificate-authority area in a real browser (issue 6): a ca-admin
bootstrapped from the command line registers a provincial CA from the test PKI (PEM
bundle and its own mapping profile pasted into the form), tests the profile on one of
the CA's certificates and sees the USCC, and uploads the CA's CRL as a file; a
client-admin sees no CA navigation entry and is refused (403) every CA page, even
typed by hand. No page needs JavaScript; none breaks the CSP."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import BrowserContext

from tests.support.admin_certificates import USCC, bundle_pem, pem
from tests.support.pki import PRIVATE_OID, make_crl, three_provinces

from .conftest import PageLog
from .pages import arrive
from .test_admin_console_browser import expect_refusals, nav_areas, new_admin

pytestmark = [pytest.mark.browser, pytest.mark.live]

MakeContext = Callable[..., BrowserContext]


def test_ca_admin_registers_a_ca_previews_its_profile_and_uploads_a_crl(
    live_idp: Any, new_context: MakeContext, page_log: PageLog
) -> None:
    beijing = three_provinces()[2]
    page, _ = new_admin(live_idp, new_context, page_log, "caadmin", "ca-admin")
    assert nav_areas(page) == {"cas", "legal_persons"}

    page.click("#nav-cas")
    arrive(page, live_idp.issuer, "/admin/cas", page_log)
    page.click("#ca-new")
    arrive(page, live_idp.issuer, "/admin/cas/new", page_log)
    page.fill("#name", "Beijing CA")
    page.fill("#province", "Beijing")
    page.fill("#pem_bundle", bundle_pem(beijing))
    # This CA puts the USCC in a private extension as "USCC:<code>": its own profile.
    page.fill("#profile", json.dumps({"sources": [{"kind": "extension", "oid": PRIVATE_OID,
                                                   "strip_prefixes": ["USCC:"]}]}))
    page.click("#ca-save")
    page.wait_for_selector('#done[data-done="created"]')
    page_log.collect_csp(page)
    assert page.inner_text("#ca-name").strip() == "Beijing CA"
    assert page.locator('#ca-certificates tr[data-role="root"]').count() == 1
    assert page.locator('#ca-certificates tr[data-role="intermediate"]').count() == 1
    assert page.get_attribute("#crl-status", "data-crl-status") == "none"
    ca_path = page.url.split("?")[0].removeprefix(live_idp.issuer)

    # "Test against this certificate": the saved profile finds the USCC in a leaf.
    page.click("#ca-preview")
    arrive(page, live_idp.issuer, "/admin/cas/preview", page_log)
    page.fill("#sample", pem(beijing.issue(USCC, org_name="北京示例有限公司").cert))
    page.click("#preview-submit")
    page.wait_for_selector("#preview-result")
    page_log.collect_csp(page)
    assert page.inner_text("#preview-uscc").strip() == USCC
    assert page.inner_text("#preview-name").strip() == "北京示例有限公司"
    assert PRIVATE_OID in page.inner_text("#preview-trail")

    # The CA's CRL, as the DER file a CA publishes.
    page.goto(live_idp.issuer + ca_path)
    arrive(page, live_idp.issuer, ca_path, page_log)
    page.set_input_files("#crl_file", files=[{"name": "beijing.crl", "mimeType": "application/pkix-crl",
                                              "buffer": make_crl(beijing.intermediate, [4242], number=7)}])
    page.click("#crl-submit")
    page.wait_for_selector('#done[data-done="crl_loaded"]')
    page_log.collect_csp(page)
    assert page.inner_text("#crl-number").strip() == "7"
    assert page.get_attribute("#crl-status", "data-crl-status") == "current"
    # The operator's command line sees the same registration and CRL.
    [listed] = live_idp.cli("certificates", "ca", "list")
    assert (listed["name"], listed["crl_number"]) == ("Beijing CA", "7")
    page_log.assert_clean()


def test_client_admin_has_no_ca_area(live_idp: Any, new_context: MakeContext, page_log: PageLog) -> None:
    page, _ = new_admin(live_idp, new_context, page_log, "portaladmin", "client-admin")
    assert "cas" not in nav_areas(page) and "legal_persons" not in nav_areas(page)
    refused = ["/admin/cas", "/admin/cas/new", "/admin/cas/preview", "/admin/legal-persons"]
    for path in refused:
        page.goto(live_idp.issuer + path)
        page.wait_for_selector("#forbidden")
        page_log.collect_csp(page)
    assert "cas.read" in page.inner_text("main") or "legal.read" in page.inner_text("main")
    # A forged registration from this session, with a valid CSRF token: refused by the server.
    csrf = page.get_attribute("header form input[name=csrf_token]", "value")
    assert csrf
    resp = page.request.post(live_idp.issuer + "/admin/cas/new", max_redirects=0, form={
        "csrf_token": csrf, "name": "Rogue CA", "province": "X", "pem_bundle": bundle_pem(three_provinces()[0])})
    assert resp.status == 403 and 'id="forbidden"' in resp.text()
    assert live_idp.cli("certificates", "ca", "list") == []
    expect_refusals(page_log, live_idp, refused)
    page_log.assert_clean()
