"""Interop with a relying party nobody here wrote: Apache httpd + mod_auth_openidc
protecting two portals. Authorization code + PKCE (OIDC Core §3.1, RFC 7636), SSO across
portals, RP-Initiated Logout 1.0 at one portal and Back-Channel Logout 1.0 to the other."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
import requests

from ..helpers import checked_claims, query_of
from ..live import LiveIdp
from .apache import ApacheRp, Portal

pytestmark = [pytest.mark.interop, pytest.mark.live]

USERNAME, PASSWORD = "zhangsan", "interop passphrase 42"


def _diag(rp: ApacheRp, resp: requests.Response | None = None) -> str:
    out = []
    if resp is not None:
        chain = " -> ".join(f"{r.status_code} {r.url}" for r in [*resp.history, resp])
        out.append(f"chain: {chain}\nbody: {resp.text[:1500]}")
    out.append(f"--- Apache error log ---\n{rp.log_tail()}")
    return "\n".join(out)


def _field(html: str, name: str) -> str:
    m = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert m, f"no {name} field in page"
    return m.group(1)


def _whoami(resp: requests.Response) -> dict[str, str]:
    return dict(line.split("=", 1) for line in resp.text.splitlines() if "=" in line)


def _is_login_page(resp: requests.Response, idp: LiveIdp) -> bool:
    return resp.url.startswith(idp.issuer + "/login?") and 'id="login-submit"' in resp.text


def _deliveries(idp: LiveIdp) -> list[dict[str, Any]]:
    url = idp.env["YIWANG_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT client_id, sid, state, attempts, last_status FROM idp_logout_deliveries ORDER BY id"
        ).fetchall()
    return [dict(zip(("client_id", "sid", "state", "attempts", "last_status"), r, strict=True)) for r in rows]


def _login_at(browser: requests.Session, portal: Portal, idp: LiveIdp, rp: ApacheRp) -> requests.Response:
    """First visit: portal → /authorize → login → consent → portal. Returns the portal page."""
    first = browser.get(portal.protected, allow_redirects=False, timeout=30)
    assert first.status_code == 302, _diag(rp, first)
    location = first.headers["Location"]
    assert location.startswith(idp.issuer + "/authorize?"), _diag(rp, first)
    params = query_of(location)
    # RFC 7636 §4.3: mod_auth_openidc sends an S256 challenge, which this profile requires.
    assert params["code_challenge_method"] == "S256"
    assert params["client_id"] == portal.client_id
    assert params["redirect_uri"] == portal.redirect_uri
    assert params["response_type"] == "code"
    assert set(params["scope"].split()) == {"openid", "profile"}

    page = browser.get(location, timeout=30)
    login_shown = _is_login_page(page, idp)
    assert login_shown, _diag(rp, page)
    page = browser.post(
        idp.issuer + "/login",
        data={
            "csrf_token": _field(page.text, "csrf_token"),
            "interaction": _field(page.text, "interaction"),
            "identifier": USERNAME,
            "password": PASSWORD,
        },
        timeout=30,
    )
    assert page.url.startswith(idp.issuer + "/consent?"), _diag(rp, page)
    assert 'id="consent-allow"' in page.text
    page = browser.post(
        idp.issuer + "/consent",
        data={
            "csrf_token": _field(page.text, "csrf_token"),
            "interaction": _field(page.text, "interaction"),
            "decision": "allow",
            "claim": checked_claims(page.text),
        },
        timeout=30,
    )
    return page


def _authorization_response(resp: requests.Response, portal: Portal) -> dict[str, str]:
    hops = [r for r in resp.history if r.headers.get("Location", "").startswith(portal.redirect_uri + "?")]
    assert len(hops) == 1, "exactly one authorization response to the portal"
    return query_of(hops[0].headers["Location"])


def _consent(browser: requests.Session, page: requests.Response, idp: LiveIdp) -> requests.Response:
    return browser.post(
        idp.issuer + "/consent",
        data={
            "csrf_token": _field(page.text, "csrf_token"),
            "interaction": _field(page.text, "interaction"),
            "decision": "allow",
            "claim": checked_claims(page.text),
        },
        timeout=30,
    )


@pytest.mark.parametrize("logout_at", ["A", "B"])
def test_two_portals_single_sign_on_and_backchannel_logout(
    live_idp: LiveIdp, apache_portals: ApacheRp, logout_at: str
) -> None:
    idp, rp = live_idp, apache_portals
    a, b = rp.portals["A"], rp.portals["B"]
    idp.cli("users", "create", "--username", USERNAME, "--password", PASSWORD, "--name", "张三")
    browser = requests.Session()

    # -- login at portal A ---------------------------------------------------------------
    page_a = _login_at(browser, a, idp, rp)
    assert page_a.status_code == 200 and page_a.url == a.protected, _diag(rp, page_a)
    response_a = _authorization_response(page_a, a)
    # RFC 9207 §2: iss in the authorization response (mod_auth_openidc checks it too).
    assert response_a["iss"] == idp.issuer
    assert "code" in response_a and "state" in response_a
    who_a = _whoami(page_a)
    # OIDC Core §2: the ID token's iss is the issuer; aud is the portal's client_id.
    assert who_a["OIDC_CLAIM_iss"] == idp.issuer, _diag(rp, page_a)
    assert who_a["OIDC_CLAIM_aud"] == a.client_id
    assert who_a["OIDC_CLAIM_sub"] and who_a["OIDC_CLAIM_sub"] != USERNAME
    # Back-Channel Logout §2.4: sid in the ID token lets the portal map a logout token
    # to its local session.
    assert who_a["OIDC_CLAIM_sid"], _diag(rp, page_a)
    # OIDC Core §5.4: profile scope → name, fetched by mod_auth_openidc from userinfo.
    assert who_a["OIDC_CLAIM_name"] == "张三"
    assert who_a["REMOTE_USER"] == f"{who_a['OIDC_CLAIM_sub']}@{idp.issuer}"

    # -- SSO at portal B: no login form --------------------------------------------------
    page_b = browser.get(b.protected, timeout=30)
    # OIDC Core §3.1.2.3: an authenticated End-User is not asked to log in again. Policy
    # (PIPL Art. 14, DESIGN §5): consent is per client, so B — a different portal — asks
    # for it once.
    assert page_b.url.startswith(idp.issuer + "/consent?"), _diag(rp, page_b)
    page_b = _consent(browser, page_b, idp)
    assert page_b.status_code == 200 and page_b.url == b.protected, _diag(rp, page_b)
    assert not any(r.url.startswith(idp.issuer + "/login") for r in page_b.history), _diag(rp, page_b)
    who_b = _whoami(page_b)
    assert who_b["OIDC_CLAIM_aud"] == b.client_id
    # One SSO session at the IdP → the same sid in both ID tokens (Back-Channel Logout
    # §2.1: sid identifies the OP session, not the client).
    assert who_b["OIDC_CLAIM_sid"] == who_a["OIDC_CLAIM_sid"]
    # OIDC Core §8.1: pairwise subjects are per sector, and without a
    # sector_identifier_uri the sector is the host of the redirect URI. Both portals
    # redirect to host 127.0.0.1 (the port is not part of the host), so they are one
    # sector and must receive the same sub.
    assert who_b["OIDC_CLAIM_sub"] == who_a["OIDC_CLAIM_sub"]

    # A second visit to A uses A's local session: no round trip to the IdP.
    revisit = browser.get(a.protected, timeout=30)
    assert revisit.status_code == 200 and not revisit.history, _diag(rp, revisit)
    assert _whoami(revisit)["OIDC_CLAIM_aud"] == a.client_id

    # -- RP-initiated logout at one portal ------------------------------------------------
    here, other = rp.portals[logout_at], rp.portals["B" if logout_at == "A" else "A"]
    logout = browser.get(
        f"{here.redirect_uri}?logout={quote(here.post_logout_uri, safe='')}", allow_redirects=False, timeout=30
    )
    assert logout.status_code == 302, _diag(rp, logout)
    end_session = logout.headers["Location"]
    assert end_session.startswith(idp.issuer + "/logout?"), end_session
    end_params = query_of(end_session)
    assert end_params["post_logout_redirect_uri"] == here.post_logout_uri
    assert "id_token_hint" in end_params
    done = browser.get(end_session, timeout=30)
    # RP-Initiated Logout §2: with a valid id_token_hint for the current session the OP
    # may log out without asking; §3: then it redirects to the registered
    # post_logout_redirect_uri. No confirmation page in between.
    assert [r.status_code for r in done.history] == [303], _diag(rp, done)
    assert done.status_code == 200 and done.url == here.post_logout_uri, _diag(rp, done)
    assert _whoami(done)["REMOTE_USER"] == ""

    # Back-Channel Logout §2.5: the OP POSTs a logout token to every portal of the
    # session — the one that initiated the logout included; §2.8: each answered 200, so
    # the delivery is recorded as delivered (the OP sends them before redirecting).
    rows = _deliveries(idp)
    assert {r["client_id"] for r in rows} == {a.client_id, b.client_id}, rows
    for row in rows:
        assert row["sid"] == who_a["OIDC_CLAIM_sid"], rows
        assert (row["state"], row["last_status"], row["attempts"]) == ("delivered", "200", 1), f"{rows}\n{_diag(rp)}"

    # The other portal's session is gone: the next visit goes back to the IdP, whose SSO
    # session ended too, so the login page is shown (no silent re-login).
    again = browser.get(other.protected, timeout=30)
    logged_out = _is_login_page(again, idp)
    assert logged_out, _diag(rp, again)
    assert again.history[0].url == other.protected and again.history[0].status_code == 302
    again_here = browser.get(here.protected, timeout=30)
    logged_out = _is_login_page(again_here, idp)
    assert logged_out, _diag(rp, again_here)
