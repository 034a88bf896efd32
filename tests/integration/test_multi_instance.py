"""Two IdP instances (two gunicorn processes on different ports) sharing PostgreSQL and
Redis behave as one service: a session started on one is honoured on the other, a code
issued by one is redeemed at the other (DESIGN.md §7: stateless instances)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
import requests

from tests.helpers import pkce_pair, query_of
from tests.live import free_port

pytestmark = pytest.mark.live


def _field(html: str, name: str) -> str:
    m = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert m
    return m.group(1)


def _code_request(client_id: str) -> tuple[str, dict[str, str]]:
    """A PKCE verifier and the authorization request of the portal registered in a test."""
    verifier, challenge = pkce_pair()
    return verifier, {"response_type": "code", "client_id": client_id, "redirect_uri": "https://rp.example.test/cb",
                      "scope": "openid", "state": "s", "code_challenge": challenge, "code_challenge_method": "S256"}


def _log_in(browser: requests.Session, base: str, params: dict[str, str], username: str) -> None:
    """Start the authorization request at ``base`` and log in there with the password."""
    r = browser.get(base + "/authorize", params=params, allow_redirects=False)
    assert r.status_code == 302
    page = browser.get(base + r.headers["Location"])
    r = browser.post(base + "/login", data={"csrf_token": _field(page.text, "csrf_token"),
                                            "interaction": _field(page.text, "interaction"),
                                            "identifier": username, "password": "a long enough secret"},
                     allow_redirects=False)
    assert r.status_code == 303


def test_session_and_code_cross_instances(live_idp, tmp_path):
    second = live_idp.start_instance(free_port(), tmp_path)
    first = live_idp.base_url
    client = live_idp.cli("clients", "create", "--name", "Portal", "--redirect-uri", "https://rp.example.test/cb")
    live_idp.cli("users", "create", "--username", "carol", "--password", "a long enough secret")

    verifier, params = _code_request(client["client_id"])
    browser = requests.Session()
    # Start on instance 1, log in there.
    _log_in(browser, first, params, "carol")
    # The instances run on different ports of one host: the browser sends the cookie to
    # both (cookies ignore ports), as it would to instances behind one load balancer.
    r = browser.get(second + "/authorize", params=params, allow_redirects=False)
    assert r.status_code == 302, r.text
    location = r.headers["Location"]
    assert urlsplit(location).netloc == "rp.example.test", "instance 2 did not honour the session"
    code = query_of(location)["code"]

    # Redeem at instance 1 the code instance 2 issued.
    token = requests.post(first + "/token", data={"grant_type": "authorization_code", "code": code,
                                                  "redirect_uri": "https://rp.example.test/cb",
                                                  "code_verifier": verifier},
                          auth=(client["client_id"], client["client_secret"]), timeout=10)
    assert token.status_code == 200, token.text
    # And the access token works at instance 2.
    info = requests.get(second + "/userinfo", headers={"Authorization": "Bearer " + token.json()["access_token"]},
                        timeout=10)
    assert info.status_code == 200
    # A replay at instance 2 fails: codes are single use across the cluster.
    replay = requests.post(second + "/token", data={"grant_type": "authorization_code", "code": code,
                                                    "redirect_uri": "https://rp.example.test/cb",
                                                    "code_verifier": verifier},
                           auth=(client["client_id"], client["client_secret"]), timeout=10)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"


def test_a_lock_on_one_instance_refuses_userinfo_on_the_other(live_idp, tmp_path):
    # Issue 12: instance 2 caches what userinfo reads of the account; the lock committed
    # through instance 1's CLI must still refuse its very next request.
    second = live_idp.start_instance(free_port(), tmp_path)
    client = live_idp.cli("clients", "create", "--name", "Portal", "--redirect-uri", "https://rp.example.test/cb")
    live_idp.cli("users", "create", "--username", "dave", "--password", "a long enough secret")
    verifier, params = _code_request(client["client_id"])
    browser = requests.Session()
    first = live_idp.base_url
    _log_in(browser, first, params, "dave")
    r = browser.get(first + "/authorize", params=params, allow_redirects=False)
    code = query_of(r.headers["Location"])["code"]
    token = requests.post(first + "/token", data={"grant_type": "authorization_code", "code": code,
                                                  "redirect_uri": "https://rp.example.test/cb",
                                                  "code_verifier": verifier},
                          auth=(client["client_id"], client["client_secret"]), timeout=10).json()["access_token"]
    headers = {"Authorization": "Bearer " + token}
    for _ in range(3):  # both of instance 2's workers have the account cached
        assert requests.get(second + "/userinfo", headers=headers, timeout=10).status_code == 200
    live_idp.cli("users", "lock", "dave")
    for _ in range(3):
        assert requests.get(second + "/userinfo", headers=headers, timeout=10).status_code == 401
