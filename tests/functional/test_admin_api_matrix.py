"""Authorization matrix of the admin API: every role, and an account with no role,
against every operation of the published OpenAPI document. The expected answer is
derived from the permission each operation declares (``x-permission``) and
admin/roles.py GRANTS — nothing is hard-coded per endpoint.

Tokens come from ``services.tokens.issue_access_token`` with the parameters the code
flow produces after a TOTP login (tests/functional/_admin_api.py); the login itself is
covered in test_admin_api_auth.py. Request bodies are minimal valid ones, so an allowed
call reaches the operation (any answer but 401/403/5xx)."""

from __future__ import annotations

from typing import Any

import pytest

from admin.roles import GRANTS, Permission, Role
from tests.functional._admin_api import bearer, issued_token, make_admin, make_admin_client

BODIES: dict[str, dict[str, Any]] = {
    "createClient": {"name": "Matrix Portal", "redirect_uris": ["https://matrix.example.test/cb"]},
    "updateClient": {"name": "Matrix Portal renamed"},
    "rotateKeys": {"alg": "ES256"},
    "retireKey": {},
}
SUBJECTS = [r.value for r in Role] + ["(no role)"]


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, item in document["paths"].items() for method, op in item.items()]


def _expected_allowed(subject: str, permission: str | None) -> bool:
    if subject == "(no role)":
        return False
    if permission is None:
        return True
    return Permission(permission) in GRANTS[Role(subject)]


@pytest.mark.parametrize("subject", SUBJECTS)
def test_every_role_against_every_operation(http, services, clock, oauth_client, subject):
    tool = make_admin_client(services)
    roles = () if subject == "(no role)" else (subject,)
    admin = make_admin(services, clock, "matrix", *roles)
    headers = bearer(issued_token(services, clock, tool.client_id, admin.account_id))
    kid = services.keys.active_kids()["RS256"]
    document = http.get("/admin/api/v1/openapi.json").get_json()
    operations = _operations(document)
    assert len(operations) >= 13
    seen = []
    for method, path, op in operations:
        url = path.replace("{client_id}", oauth_client.client_id).replace("{kid}", kid)
        body = BODIES.get(op["operationId"])
        resp = http.open(url, method=method, json=body, headers=headers)
        allowed = _expected_allowed(subject, op["x-permission"])
        if allowed:
            assert resp.status_code not in (401, 403) and resp.status_code < 500, (op["operationId"], resp.get_json())
        else:
            assert resp.status_code == 403, (op["operationId"], resp.status_code)
            assert resp.get_json()["code"] == "forbidden"
        seen.append((op["operationId"], allowed))
    # The matrix is not vacuous: each role (but no-role) reaches something and is refused something.
    if subject == "superadmin":
        assert all(allowed for _, allowed in seen)
    elif subject == "(no role)":
        assert not any(allowed for _, allowed in seen)
    else:
        assert any(allowed for _, allowed in seen)


def test_every_operation_declares_a_known_permission(http):
    document = http.get("/admin/api/v1/openapi.json").get_json()
    for _, _, op in _operations(document):
        assert "x-permission" in op
        assert op["x-permission"] is None or Permission(op["x-permission"])
