"""Minimization end to end (issue 5): random client policies, requests and consent-page
choices through the real authorization, token and userinfo endpoints. Released claims
⊆ requested ∩ policy ∩ (ticked ∪ required ∪ statutory ∪ confirmed sensitive), and the
ID token never carries more than userinfo."""

from __future__ import annotations

import json
from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.db import db
from idp.claims import SCOPE_CLAIMS
from realname.idnumbers import check_character
from realname.service import parse_identity_input
from tests.helpers import Browser, RegisteredTestClient, checked_claims, decode_unverified, pkce_pair, query_of
from tests.helpers import TestUser as Credentials

SCOPES = ("profile", "phone", "realname", "id_number")
CLAIMS = sorted(n for s in SCOPES for n in SCOPE_CLAIMS[s])
REDIRECT = "https://random.example.test/cb"
# Claims the ID token may carry besides these (OIDC Core §2, DESIGN.md §4).
PROTOCOL = {"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid", "azp", "at_hash", "jti"}

names = st.sets(st.sampled_from(CLAIMS))
policies = st.dictionaries(
    st.sampled_from(CLAIMS),
    st.fixed_dictionaries({"purpose": st.just("办事"), "basis": st.sampled_from(["consent", "statutory"]),
                           "required": st.booleans()}),
)


def _citizen(services, clock) -> Credentials:
    if services.accounts.find_by_identifier("zhou") is None:
        first17 = f"320102{date(1950, 2, 28):%Y%m%d}033"
        account = services.accounts.create(username="zhou", password="a long enough secret", phone="13900139000")
        name, rid = parse_identity_input("周七", first17 + check_character(first17), today=clock.now().date())
        services.realname.bind_identity(account.id, name, rid)
        db.session.commit()
    return Credentials("zhou", "a long enough secret")


@given(policy=policies, sensitive=st.booleans(), scopes=st.sets(st.sampled_from(SCOPES)), in_userinfo=names,
       in_id_token=names, untick=names, confirm=st.booleans())
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_released_claims_within_policy_request_and_consent(http, services, clock, policy, sensitive, scopes,
                                                           in_userinfo, in_id_token, untick, confirm):
    for name, spec in policy.items():
        if name == "id_number":
            spec["required"] = False
    scopes = set(scopes) | {s for n in policy for s in SCOPES if n in SCOPE_CLAIMS[s]}
    if not sensitive:
        policy.pop("id_number", None)
    citizen = _citizen(services, clock)
    row, secret = services.clients.create(name="Random", redirect_uris=[REDIRECT], scopes=["openid", *sorted(scopes)],
                                          claim_policy=policy, sensitive_claims_allowed=sensitive)
    db.session.commit()
    client = RegisteredTestClient(row.client_id, secret, REDIRECT)
    scope = " ".join(["openid", *sorted(scopes)])
    claims = json.dumps({"userinfo": dict.fromkeys(in_userinfo), "id_token": dict.fromkeys(in_id_token)})

    browser = Browser(http)
    verifier, challenge = pkce_pair()
    resp = browser.authorize(client, challenge=challenge, scope=scope, claims=claims)
    ticked: set[str] = set()
    shown: set[str] = set()
    for _ in range(8):
        if resp.status_code == 200:
            html = resp.get_data(as_text=True)
            if 'name="password"' in html:
                resp = browser.login(resp, citizen)
                continue
            shown = set(checked_claims(html))
            ticked = shown - untick
            resp = browser.consent(resp, untick=untick, confirm_sensitive=confirm)
            continue
        if resp.headers["Location"].startswith(REDIRECT):
            break
        resp = browser.follow(resp)
    query = query_of(resp.headers["Location"])
    tokens = http.post("/token", data={"grant_type": "authorization_code", "code": query["code"],
                                       "redirect_uri": REDIRECT, "code_verifier": verifier}, auth=client.auth).get_json()
    info = http.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]}).get_json()
    released = set(info) - {"sub"}

    requested = {n for s in scopes for n in SCOPE_CLAIMS[s]} | ((in_userinfo | in_id_token) & set(CLAIMS))
    requested &= {n for s in scopes for n in SCOPE_CLAIMS[s]}  # claims parameter works within the scopes
    allowed = set(policy) if policy else set(CLAIMS) - {"id_number"}
    consented = ticked | {n for n, spec in policy.items() if spec["required"] or spec["basis"] == "statutory"}
    if confirm:
        consented.add("id_number")
    assert released <= requested & allowed & consented, (released, requested, allowed, consented)
    assert not released & (shown - ticked)
    extra = set(decode_unverified(tokens["id_token"])) - PROTOCOL
    assert extra <= set(info) and extra <= in_id_token
