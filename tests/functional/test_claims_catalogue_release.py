"""Every claim of the catalogue (issue 5): who can get it and when consent is needed. A
client whose policy lists the claim gets it after consent (or, with a statutory basis,
after being told), a client whose policy does not list it never does. Legal-person
claims (uscc, legal_person_name, cert_issuer, act) need a certificate login and are
covered in test_certificate_login.py (certificate login and agents)."""

from __future__ import annotations

import re
from datetime import date

import pytest

from common.db import db
from idp.catalogue import CATALOGUE, Sensitivity, Source
from realname.idnumbers import check_character
from realname.service import parse_identity_input
from tests.helpers import Browser, RegisteredTestClient, pkce_pair, query_of
from tests.helpers import TestUser as Credentials

REDIRECT = "https://every-claim.example.test/cb"
PERSON_CLAIMS = sorted(n for n, c in CATALOGUE.items() if c.source in (Source.ACCOUNT, Source.REALNAME))


@pytest.fixture
def citizen(services, clock) -> Credentials:
    first17 = f"510104{date(1984, 2, 29):%Y%m%d}045"
    account = services.accounts.create(username="wuliu", password="a long enough secret", name="吴六",
                                       phone="13700137000")
    name, rid = parse_identity_input("吴六", first17 + check_character(first17), today=clock.now().date())
    services.realname.bind_identity(account.id, name, rid)
    db.session.commit()
    return Credentials("wuliu", "a long enough secret")


def _client(services, claim: str, basis: str = "consent") -> RegisteredTestClient:
    scope = CATALOGUE[claim].scopes[0]
    row, secret = services.clients.create(
        name="Every claim", redirect_uris=[REDIRECT], scopes=["openid", scope],
        claim_policy={claim: {"purpose": "测试", "basis": basis}},
        sensitive_claims_allowed=CATALOGUE[claim].sensitivity is Sensitivity.SENSITIVE,
    )
    db.session.commit()
    return RegisteredTestClient(row.client_id, secret, REDIRECT)


def _release(http, client, citizen, scope: str) -> tuple[dict, str]:
    """Run the flow; returns userinfo and the consent page's HTML ('' when none was shown)."""
    browser = Browser(http)
    verifier, challenge = pkce_pair()
    resp = browser.authorize(client, challenge=challenge, scope=scope)
    consent_html = ""
    while resp.status_code == 200 or not resp.headers["Location"].startswith(REDIRECT):
        if resp.status_code == 200:
            html = resp.get_data(as_text=True)
            if 'name="password"' in html:
                resp = browser.login(resp, citizen)
            else:
                consent_html = html
                resp = browser.consent(resp, confirm_sensitive=True)
        else:
            resp = browser.follow(resp)
    code = query_of(resp.headers["Location"])["code"]
    tokens = http.post("/token", data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                                       "code_verifier": verifier}, auth=client.auth).get_json()
    return http.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]}).get_json(), consent_html


def _section(html: str, claim: str) -> str | None:
    for section in ("required", "statutory", "optional", "sensitive"):
        match = re.search(rf'<fieldset id="consent-{section}".*?</fieldset>', html, re.S)
        if match and f'data-claim="{claim}"' in match.group(0):
            return section
    return None


@pytest.mark.parametrize("claim", PERSON_CLAIMS)
def test_claim_released_after_consent_to_a_client_whose_policy_lists_it(http, services, citizen, claim):
    client = _client(services, claim)
    info, consent = _release(http, client, citizen, "openid " + CATALOGUE[claim].scopes[0])
    sensitive = CATALOGUE[claim].sensitivity is Sensitivity.SENSITIVE
    assert _section(consent, claim) == ("sensitive" if sensitive else "optional")
    assert info.get(claim) is not None, info
    assert set(info) == {"sub", claim}


@pytest.mark.parametrize("claim", [n for n in PERSON_CLAIMS if CATALOGUE[n].sensitivity is not Sensitivity.SENSITIVE])
def test_statutory_claim_is_announced_not_asked(http, services, citizen, claim):
    client = _client(services, claim, basis="statutory")
    info, consent = _release(http, client, citizen, "openid " + CATALOGUE[claim].scopes[0])
    assert _section(consent, claim) == "statutory" and f'value="{claim}"' not in consent
    assert info.get(claim) is not None


def _sibling(claim: str) -> str | None:
    """Another ordinary claim of the same scope, for a policy that omits ``claim``."""
    return next((n for n in PERSON_CLAIMS if n != claim and CATALOGUE[n].scopes == CATALOGUE[claim].scopes
                 and CATALOGUE[n].sensitivity is not Sensitivity.SENSITIVE), None)


# id_number is alone in its scope: a client without it in its policy is covered in
# test_consent_per_claim.py (no policy, no flag → never released).
@pytest.mark.parametrize("claim", [n for n in PERSON_CLAIMS if _sibling(n)])
def test_claim_never_released_to_a_client_whose_policy_omits_it(http, services, citizen, claim):
    client = _client(services, _sibling(claim) or "")
    info, consent = _release(http, client, citizen, "openid " + CATALOGUE[claim].scopes[0])
    assert claim not in info and f'data-claim="{claim}"' not in consent
