"""A disclosure record describes exactly what was released (issue 11, defect 5): the
claim names of the record, the ID token's claims and userinfo come from one computed
claim set, for every person claim of the catalogue; and a citizen who registered with
their real name has that name released (it was never set on the account)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from common.db import db
from idp.catalogue import CATALOGUE, Sensitivity
from idp.models import Disclosure
from tests.helpers import Browser, RegisteredTestClient, pkce_pair, query_of
from tests.helpers import TestUser as Credentials

from .test_claims_catalogue_release import PERSON_CLAIMS, REDIRECT, citizen  # noqa: F401 - fixture
from .test_realname_flows import NUMBER, register, registry  # noqa: F401 - fixture


def _client(services, claims: list[str], scopes: list[str]) -> RegisteredTestClient:
    row, secret = services.clients.create(
        name="Disclosure check", redirect_uris=[REDIRECT], scopes=["openid", *scopes],
        claim_policy={c: {"purpose": "测试", "basis": "consent"} for c in claims},
        sensitive_claims_allowed=any(CATALOGUE[c].sensitivity is Sensitivity.SENSITIVE for c in claims),
    )
    db.session.commit()
    return RegisteredTestClient(row.client_id, secret, REDIRECT)


def _tokens(http, client, user: Credentials | None, scope: str, claims_request: str | None = None) -> dict:
    browser = Browser(http)
    verifier, challenge = pkce_pair()
    extra = {"claims": claims_request} if claims_request else {}
    resp = browser.authorize(client, challenge=challenge, scope=scope, **extra)
    while resp.status_code == 200 or not resp.headers["Location"].startswith(REDIRECT):
        if resp.status_code == 200:
            html = resp.get_data(as_text=True)
            resp = browser.login(resp, user) if 'name="password"' in html else browser.consent(
                resp, confirm_sensitive=True)
        else:
            resp = browser.follow(resp)
    code = query_of(resp.headers["Location"])["code"]
    tokens = http.post("/token", data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                                       "code_verifier": verifier}, auth=client.auth)
    assert tokens.status_code == 200, tokens.get_json()
    return tokens.get_json()


def _disclosed(client_id: str) -> set[str]:
    db.session.expire_all()
    rows = list(db.session.scalars(select(Disclosure).where(Disclosure.client_id == client_id)))
    assert len(rows) == 1
    return set(rows[0].claim_names)


@pytest.mark.parametrize("claim", PERSON_CLAIMS)
def test_disclosure_record_equals_userinfo_for_every_claim(http, services, citizen, claim):  # noqa: F811
    client = _client(services, [claim], list(CATALOGUE[claim].scopes[:1]))
    tokens = _tokens(http, client, citizen, "openid " + CATALOGUE[claim].scopes[0])
    info = http.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]}).get_json()
    assert _disclosed(client.client_id) == set(info), (claim, info)


def test_a_claim_without_a_value_is_not_recorded_as_disclosed(http, services, other_user):
    # Bob has no phone and no verified identity: nothing of phone/realname can be released.
    claims = ["phone_number", "phone_number_verified", "realname_verified", "name"]
    client = _client(services, claims, ["phone", "realname", "profile"])
    tokens = _tokens(http, client, other_user, "openid phone realname profile")
    info = http.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]}).get_json()
    assert _disclosed(client.client_id) == set(info) == {"sub"} | ({"realname_verified"} & set(info))


def test_registered_citizens_name_is_released(http, app, services, registry):  # noqa: F811
    assert register(http, app, name="张三", number=NUMBER, phone="13800138001", username="zhangsan").status_code == 303
    client = _client(services, ["name"], ["profile"])
    tokens = _tokens(http, client, None, "openid profile")
    info = http.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]}).get_json()
    assert info.get("name") == "张三"
    assert _disclosed(client.client_id) == {"sub", "name"}
