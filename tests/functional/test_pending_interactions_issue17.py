"""Issue 17, Medium 7 and a low item: the pending authorization request kept in the shared
store while the citizen logs in holds only the parameters the provider reads, each size
capped, encrypted; new ones are rate-limited per client IP. The review stored a 1 MB key
for 900 s with one ``POST /authorize`` and found ``login_hint`` in plaintext in Redis.
Each test failed before the fix."""

from __future__ import annotations

import dataclasses

import pytest

from tests.helpers import pkce_pair, query_of


def _params(client, **extra):
    _, challenge = pkce_pair()
    return {"response_type": "code", "client_id": client.client_id, "redirect_uri": client.redirect_uri,
            "scope": "openid", "state": "s-1", "nonce": "n-1", "code_challenge": challenge,
            "code_challenge_method": "S256", **extra}


def _interaction_values(store) -> list[bytes]:
    raw = store._redis  # the test's own key prefix: nothing else lives under it
    keys = [k for k in raw.scan_iter(match=store._prefix + "interaction:*")]
    return [raw.get(k) for k in keys]


def test_unknown_parameters_are_not_kept(http, store, oauth_client):
    resp = http.post("/authorize", data=_params(oauth_client, junk="x" * 500_000))
    assert resp.status_code == 303 and "/login?interaction=" in resp.headers["Location"]
    [value] = _interaction_values(store)
    assert len(value) < 4096, len(value)


def test_an_oversized_parameter_is_refused_and_nothing_kept(http, store, oauth_client):
    resp = http.post("/authorize", data=_params(oauth_client, login_hint="a" * 10_000))
    assert resp.status_code == 303
    q = query_of(resp.headers["Location"])
    assert q["error"] == "invalid_request" and q["state"] == "s-1" and q["iss"] == "http://127.0.0.1:5000"
    assert _interaction_values(store) == []


def test_the_pending_request_is_encrypted(http, store, oauth_client):
    resp = http.get("/authorize", query_string=_params(oauth_client, login_hint="13800138000"))
    assert "/login?interaction=" in resp.headers["Location"]
    [value] = _interaction_values(store)
    assert b"13800138000" not in value and oauth_client.client_id.encode() not in value
    # The login page still reads it (and pre-fills the hint).
    page = http.get(resp.headers["Location"])
    assert page.status_code == 200 and 'value="13800138000"' in page.get_data(as_text=True)


@pytest.fixture
def low_limit(app):
    provider = app.extensions["yiwang.provider"]
    original = provider.settings
    provider.settings = dataclasses.replace(original, interaction_max_per_ip_hour=10)
    yield 10
    provider.settings = original


def test_new_interactions_are_rate_limited_per_ip(http, store, oauth_client, low_limit):
    for _ in range(low_limit):
        assert "/login?interaction=" in http.get("/authorize", query_string=_params(oauth_client)).headers["Location"]
    resp = http.get("/authorize", query_string=_params(oauth_client))
    q = query_of(resp.headers["Location"])
    # RFC 6749 §4.1.2.1: the verified client hears it, with state and iss.
    assert q["error"] == "temporarily_unavailable" and q["state"] == "s-1"
    assert len(_interaction_values(store)) == low_limit
    # Another client IP is not affected.
    other = http.get("/authorize", query_string=_params(oauth_client), environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert "/login?interaction=" in other.headers["Location"]
