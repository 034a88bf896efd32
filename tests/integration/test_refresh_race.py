"""Two simultaneous refreshes with the same refresh token: at most one may win, and the
race counts as reuse, so the family dies (RFC 9700 §4.14.2). Regression test for a
non-atomic rotation found by the benchmark (both requests got new, working tokens)."""

from __future__ import annotations

import re
import threading
from urllib.parse import urlsplit

import pytest
import requests

from tests.helpers import pkce_pair, query_of

pytestmark = pytest.mark.live

REDIRECT = "https://rp.example.test/cb"


def _field(html: str, name: str) -> str:
    m = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert m
    return m.group(1)


def test_concurrent_refresh_cannot_fork_the_family(live_idp):
    base = live_idp.base_url
    client = live_idp.cli("clients", "create", "--name", "Racer", "--redirect-uri", REDIRECT, "--scope", "openid")
    live_idp.cli("users", "create", "--username", "racer", "--password", "a long enough secret")
    auth = (client["client_id"], client["client_secret"])
    browser = requests.Session()

    def new_refresh_token() -> str:
        verifier, challenge = pkce_pair()
        params = {"response_type": "code", "client_id": client["client_id"], "redirect_uri": REDIRECT,
                  "scope": "openid", "code_challenge": challenge, "code_challenge_method": "S256"}
        r = browser.get(base + "/authorize", params=params, allow_redirects=False)
        if urlsplit(r.headers["Location"]).path == "/login":
            page = browser.get(base + r.headers["Location"])
            r = browser.post(base + "/login", data={"csrf_token": _field(page.text, "csrf_token"),
                                                    "interaction": _field(page.text, "interaction"),
                                                    "identifier": "racer", "password": "a long enough secret"},
                             allow_redirects=False)
            r = browser.get(base + r.headers["Location"], allow_redirects=False)
        code = query_of(r.headers["Location"])["code"]
        tok = requests.post(base + "/token", data={"grant_type": "authorization_code", "code": code,
                                                   "redirect_uri": REDIRECT, "code_verifier": verifier},
                            auth=auth, timeout=10)
        assert tok.status_code == 200, tok.text
        return str(tok.json()["refresh_token"])

    for _ in range(12):
        token = new_refresh_token()
        barrier = threading.Barrier(2)
        results: list[requests.Response] = []

        def refresh(rt: str, gate: threading.Barrier, out: list[requests.Response]) -> None:
            gate.wait()
            out.append(requests.post(base + "/token", data={"grant_type": "refresh_token", "refresh_token": rt},
                                     auth=auth, timeout=10))

        threads = [threading.Thread(target=refresh, args=(token, barrier, results)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [r for r in results if r.status_code == 200]
        assert len(winners) <= 1, "both concurrent refreshes succeeded"
        for r in results:
            if r.status_code != 200:
                assert r.json()["error"] == "invalid_grant"
        if len(winners) == 1 and len(results) == 2 and results[0].status_code != results[1].status_code:
            # A race happened: the winner's new token belongs to a revoked family.
            again = requests.post(base + "/token", data={"grant_type": "refresh_token",
                                                         "refresh_token": winners[0].json()["refresh_token"]},
                                  auth=auth, timeout=10)
            assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
