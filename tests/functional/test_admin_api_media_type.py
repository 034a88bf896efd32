"""Admin API request bodies must be ``application/json`` (issue 17): a body sent as
``text/plain`` (a "simple" request any web page can make without a CORS preflight), as a
form, or without a Content-Type is refused with 415 and an RFC 9457 problem, before
anything is read or changed."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from common.db import db
from idp.models import Client
from tests.functional._admin_api import API, admin_headers

BODY = json.dumps({"name": "Housing Portal", "redirect_uris": ["https://housing.example.test/cb"]})


@pytest.fixture
def as_admin(http, services, clock):
    return admin_headers(services, clock)


def _clients() -> int:
    db.session.expire_all()
    return int(db.session.scalar(select(func.count()).select_from(Client)) or 0)


def _assert_415(resp) -> None:
    # RFC 9110 §15.5.16 Unsupported Media Type, as an RFC 9457 §3 problem.
    assert resp.status_code == 415, (resp.status_code, resp.get_data(as_text=True)[:300])
    assert resp.mimetype == "application/problem+json"
    body = resp.get_json()
    assert body["status"] == 415 and body["type"] == "about:blank"
    assert body["title"] == "Unsupported Media Type" and body["code"] == "unsupported_media_type"
    assert resp.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("content_type", ["text/plain", "text/plain;charset=UTF-8",
                                          "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                                          "application/json-seq", "application/problem+json", None])
def test_create_with_another_media_type_is_415(http, as_admin, content_type):
    headers = dict(as_admin("client-admin"))
    before = _clients()
    if content_type is None:
        resp = http.post(f"{API}/clients", data=BODY.encode(), headers=headers)
        assert "Content-Type" not in resp.request.headers
    else:
        resp = http.post(f"{API}/clients", data=BODY.encode(), headers={**headers, "Content-Type": content_type})
    _assert_415(resp)
    assert _clients() == before


def test_patch_with_text_plain_is_415(http, as_admin):
    headers = as_admin("client-admin")
    created = http.post(f"{API}/clients", json=json.loads(BODY), headers=headers)
    assert created.status_code == 201
    client_id = created.get_json()["client"]["client_id"]
    resp = http.patch(f"{API}/clients/{client_id}", data=json.dumps({"name": "Changed"}),
                      headers={**headers, "Content-Type": "text/plain"})
    _assert_415(resp)
    assert http.get(f"{API}/clients/{client_id}", headers=headers).get_json()["name"] == "Housing Portal"


def test_json_with_charset_is_accepted(http, as_admin):
    # Positive control: application/json with parameters is still JSON.
    resp = http.post(f"{API}/clients", data=BODY.encode(),
                     headers={**as_admin("client-admin"), "Content-Type": "application/json; charset=utf-8"})
    assert resp.status_code == 201


def test_bodyless_post_needs_no_content_type(http, as_admin):
    headers = as_admin("client-admin")
    client_id = http.post(f"{API}/clients", json=json.loads(BODY), headers=headers).get_json()["client"]["client_id"]
    # Positive control: an action without a body (rotate the secret) sends no Content-Type.
    assert http.post(f"{API}/clients/{client_id}/secret", headers=headers).status_code == 200


def test_media_type_is_checked_after_authentication(http):
    resp = http.post(f"{API}/clients", data=BODY, headers={"Content-Type": "text/plain"})
    # RFC 6750 §3: no token is a 401 challenge, whatever the body.
    assert resp.status_code == 401


def test_openapi_documents_415_for_operations_with_a_body(http):
    document = http.get(f"{API}/openapi.json").get_json()
    for item in document["paths"].values():
        for operation in item.values():
            if "requestBody" in operation:
                assert "415" in operation["responses"], operation["operationId"]
