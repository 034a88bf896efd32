"""Admin API: clients and keys through HTTP — create (secret once), search with keyset
pagination, get, update, rotate the secret, disable/enable, usage, delete; keys list,
rotate, retire. Validation failures are 422 problems naming the field; every change is
audited with the administrator's pseudonymous id."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from common.db import db
from common.models import AuditEvent
from tests.functional._admin_api import API, admin_headers


@pytest.fixture
def as_admin(http, services, clock):
    return admin_headers(services, clock)


def _create(http, headers, **extra):
    body = {"name": "Housing Portal", "redirect_uris": ["https://housing.example.test/cb"]} | extra
    return http.post(f"{API}/clients", json=body, headers=headers)


def _actions(prefix: str) -> list[tuple[str, str, str | None]]:
    db.session.expire_all()
    rows = db.session.scalars(select(AuditEvent).where(AuditEvent.action.like(prefix + "%")).order_by(AuditEvent.id))
    return [(e.action, e.outcome, e.target) for e in rows]


def test_client_lifecycle(http, as_admin):
    h = as_admin("client-admin")
    created = _create(http, h, scopes=["openid", "profile"], post_logout_redirect_uris=["https://housing.example.test/bye"],
                      claim_policy={"name": {"purpose": "Address you on the site", "basis": "consent"}})
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    client_id = body["client"]["client_id"]
    assert body["client_secret"] and created.headers["Location"] == f"{API}/clients/{client_id}"
    assert body["client"]["claim_policy"]["name"]["purpose"] == "Address you on the site"
    assert http.get(f"{API}/clients/{client_id}", headers=h).get_json()["name"] == "Housing Portal"
    # The secret is never shown again.
    shown = http.get(f"{API}/clients/{client_id}", headers=h)
    assert "client_secret" not in shown.get_json() and body["client_secret"] not in shown.get_data(as_text=True)

    patched = http.patch(f"{API}/clients/{client_id}", json={"name": "Housing", "backchannel_logout_uri":
                                                             "https://housing.example.test/bcl"}, headers=h)
    assert patched.status_code == 200 and patched.get_json()["client"]["name"] == "Housing"
    assert patched.get_json()["client_secret"] is None

    rotated = http.post(f"{API}/clients/{client_id}/secret", headers=h)
    assert rotated.status_code == 200 and rotated.get_json()["client_secret"] != body["client_secret"]
    token = http.post("/token", data={"grant_type": "client_credentials"},
                      auth=(client_id, rotated.get_json()["client_secret"]))
    assert token.status_code in (200, 400)  # authenticated (grant may not be registered)
    assert http.post("/token", data={"grant_type": "client_credentials"},
                     auth=(client_id, body["client_secret"])).status_code == 401

    assert http.post(f"{API}/clients/{client_id}/disable", headers=h).get_json()["enabled"] is False
    assert http.post(f"{API}/clients/{client_id}/enable", headers=h).get_json()["enabled"] is True
    usage = http.get(f"{API}/clients/{client_id}/usage", headers=h).get_json()
    assert usage["consents"] == {"active": 0, "withdrawn": 0, "expired": 0} and usage["disclosures"]["total"] == 0

    deleted = http.delete(f"{API}/clients/{client_id}", headers=h)
    assert deleted.status_code == 204 and deleted.get_data() == b""
    missing = http.get(f"{API}/clients/{client_id}", headers=h)
    assert missing.status_code == 404 and missing.get_json()["code"] == "client_not_found"
    assert missing.mimetype == "application/problem+json"

    target = f"client:{client_id}"
    assert _actions("admin.clients.") == [
        (f"admin.clients.{v}", "ok", target)
        for v in ("create", "update", "rotate_secret", "disable", "enable", "delete")
    ]


def test_search_and_pagination(http, as_admin):
    writer, reader = as_admin("client-admin"), as_admin("auditor")
    ids = [_create(http, writer, name=f"Tax Office {i}").get_json()["client"]["client_id"] for i in range(3)]
    _create(http, writer, name="Unrelated")
    first = http.get(f"{API}/clients", query_string={"q": "tax office", "limit": 2}, headers=reader)
    page = first.get_json()
    assert [c["client_id"] for c in page["items"]] == ids[:2] and page["next_cursor"]
    assert first.headers["Link"].endswith('rel="next"') and f"cursor={page['next_cursor']}" in first.headers["Link"]
    second = http.get(f"{API}/clients", query_string={"q": "tax office", "limit": 2, "cursor": page["next_cursor"]},
                      headers=reader).get_json()
    assert [c["client_id"] for c in second["items"]] == ids[2:] and second["next_cursor"] is None
    exact = http.get(f"{API}/clients", query_string={"q": ids[1]}, headers=reader).get_json()
    assert [c["client_id"] for c in exact["items"]] == [ids[1]]


@pytest.mark.parametrize(("body", "field"), [
    ({"redirect_uris": ["https://x.example.test/cb"]}, "name"),
    ({"name": "X", "redirect_uris": "https://x.example.test/cb"}, "redirect_uris"),
    ({"name": "X", "redirect_uris": [7]}, "redirect_uris/0"),
    ({"name": "X", "redirect_uris": ["https://x.example.test/cb"], "grant_types": ["password"]}, "grant_types/0"),
    ({"name": "X", "redirect_uris": ["https://x.example.test/cb"], "colour": "red"}, "colour"),
    ({"name": "X\u0000", "redirect_uris": ["https://x.example.test/cb"]}, "name"),
    ({"name": "X", "redirect_uris": ["https://x.example.test/cb"],
      "claim_policy": {"name": {"basis": "consent"}}}, "claim_policy/name/purpose"),
])
def test_schema_violations_name_the_field(http, as_admin, body, field):
    resp = http.post(f"{API}/clients", json=body, headers=as_admin("client-admin"))
    assert resp.status_code == 422, resp.get_json()
    problem = resp.get_json()
    assert problem["code"] == "invalid_input" and field in [e["field"] for e in problem["errors"]]


def test_registration_rules_are_422_problems_without_exception_text(http, as_admin):
    h = as_admin("client-admin")
    for extra in ({"redirect_uris": ["https://x.example.test/cb#f"]}, {"redirect_uris": ["http://[::1"]},
                  {"scopes": ["openid", "everything"]}, {"token_endpoint_auth_method": "private_key_jwt"},
                  {"jwks": {"keys": [{"kty": "EC"}]}}, {"sector_identifier_uri": "https://["},
                  {"grant_types": ["refresh_token"]}):
        resp = _create(http, h, **extra)
        assert resp.status_code == 422, (extra, resp.get_json())
        assert resp.get_json()["code"] == "invalid_client_metadata"
        assert "Traceback" not in resp.get_data(as_text=True)


def test_malformed_json_and_bad_parameters(http, as_admin):
    h = as_admin("superadmin")
    resp = http.post(f"{API}/clients", data="{not json", headers={**h, "Content-Type": "application/json"})
    assert resp.status_code == 422 and resp.get_json()["errors"][0]["field"] == "body"
    # Nested deeper than the JSON parser's recursion limit: still a 422, not a 500.
    deep = "[" * 100_000 + "]" * 100_000
    resp = http.post(f"{API}/clients", data=deep, headers={**h, "Content-Type": "application/json"})
    assert resp.status_code == 422 and resp.get_json()["errors"][0]["field"] == "body"
    assert http.post(f"{API}/clients", headers=h).status_code == 422
    for args in ({"limit": "abc"}, {"limit": "0"}, {"limit": "9999"}, {"cursor": "x"}):
        resp = http.get(f"{API}/clients", query_string=args, headers=h)
        assert resp.status_code == 422, args
    assert http.patch(f"{API}/clients/nope", json={}, headers=h).status_code == 422
    assert http.patch(f"{API}/clients/nope", json={"name": "y"}, headers=h).status_code == 404


def test_forbidden_operations_are_refused_before_validation_and_audited(http, as_admin):
    resp = http.post(f"{API}/clients", json={"bogus": True}, headers=as_admin("auditor"))
    assert resp.status_code == 403 and resp.get_json()["code"] == "forbidden"
    assert ("admin.api.createClient", "denied", None) in _actions("admin.api.")


def test_keys_list_rotate_retire(http, as_admin, services):
    h, reader = as_admin("superadmin"), as_admin("auditor")
    keys = http.get(f"{API}/keys", headers=reader).get_json()["items"]
    assert sorted(k["state"] for k in keys) == ["active", "active", "next", "next"]
    assert all(k["published"] for k in keys)
    rotated = http.post(f"{API}/keys/rotate", json={"alg": "RS256"}, headers=h)
    assert rotated.status_code == 200
    [new_active] = rotated.get_json()["items"]
    assert new_active["state"] == "active" and new_active["alg"] == "RS256"
    old = next(k for k in http.get(f"{API}/keys", headers=h).get_json()["items"]
               if k["alg"] == "RS256" and k["state"] == "retired")
    assert old["published"] is True  # still verifying tokens it signed
    retired = http.post(f"{API}/keys/{old['kid']}/retire", json={"unpublish": True}, headers=h)
    assert retired.status_code == 200 and retired.get_json()["published"] is False
    assert old["kid"] not in {k["kid"] for k in http.get("/jwks.json").get_json()["keys"]}
    again = http.post(f"{API}/keys/{old['kid']}/retire", json={"unpublish": True}, headers=h)
    assert again.status_code == 409 and again.get_json()["code"] == "key_already_retired"
    assert http.post(f"{API}/keys/unknown-kid/retire", headers=h).status_code == 404
    assert http.post(f"{API}/keys/rotate", json={"alg": "HS256"}, headers=h).status_code == 422
    assert [a for a, _, _ in _actions("admin.keys.")] == ["admin.keys.rotate", "admin.keys.retire"]
