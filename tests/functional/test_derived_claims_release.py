"""Derived claims released through the `realname` scope (issue 5): computed from the
verified identity at release time; the full ID number is never released."""

from __future__ import annotations

from datetime import date

from common.db import db
from realname.idnumbers import check_character
from realname.service import parse_identity_input
from tests.helpers import Browser, RegisteredTestClient
from tests.helpers import TestUser as Credentials


def _client(services) -> RegisteredTestClient:
    row, secret = services.clients.create(name="Pension Portal", redirect_uris=["https://pension.example.test/cb"],
                                          scopes=["openid", "realname"])
    db.session.commit()
    return RegisteredTestClient(row.client_id, secret, "https://pension.example.test/cb")


def _verified_user(services, clock, birth: date) -> tuple[Credentials, str]:
    first17 = f"440305{birth:%Y%m%d}013"
    number = first17 + check_character(first17)
    account = services.accounts.create(username="olduser", password="a long enough secret")
    name, rid = parse_identity_input("王五", number, today=clock.now().date())
    services.realname.bind_identity(account.id, name, rid)
    db.session.commit()
    return Credentials("olduser", "a long enough secret"), number


def test_derived_claims_for_a_verified_person(http, services, clock):
    today = clock.now().date()
    birth = date(today.year - 60, today.month, today.day) if not (today.month == 2 and today.day == 29) \
        else date(today.year - 60, 3, 1)
    user, number = _verified_user(services, clock, birth)
    client = _client(services)
    tokens = Browser(http).tokens(client, user, scope="openid realname")
    resp = http.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]})
    info = resp.get_json()
    assert info["realname_verified"] is True and info["realname_level"] == "cn-l1"
    assert info["age_over_18"] is True and info["age_over_60"] is (birth <= today.replace(year=today.year - 60))
    assert info["region_code"] == "440305" and info["id_number_masked"] == number[:6] + "********" + number[-4:]
    body = resp.get_data(as_text=True)
    assert number not in body and birth.strftime("%Y%m%d") not in body and "王五" not in body


def test_unverified_person_gets_only_the_flags(http, services, user):
    client = _client(services)
    tokens = Browser(http).tokens(client, user, scope="openid realname")
    info = http.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]}).get_json()
    assert info["realname_verified"] is False and info["realname_level"] == "cn-l0"
    assert "age_over_18" not in info and "id_number_masked" not in info
