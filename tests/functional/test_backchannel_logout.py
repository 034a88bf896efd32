"""OpenID Connect Back-Channel Logout 1.0 (§2.4-§2.7) with a real HTTP receiver on a
loopback port, delivery records and retries; Front-Channel Logout 1.0 §3-§4 iframes."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select

from common.db import db
from idp.logout import MAX_ATTEMPTS
from idp.models import LogoutDelivery
from tests.helpers import Browser, verify_jwt

from ._support import (
    BACKCHANNEL_EVENT,
    ISSUER,
    backchannel_receiver,
    iframe_sources,
    isolate_requests,
    query_params,
    register_client,
)


@pytest.fixture(autouse=True)
def _request_contexts(app):
    isolate_requests(app)


def _client(services, url, name="BC Portal", host="bc.example.test", **kw):
    return register_client(services, name=name, redirect_uri=f"https://{host}/cb",
                           post_logout_redirect_uris=[f"https://{host}/bye"], backchannel_logout_uri=url, **kw)


def _logout(http, client, id_token):
    return http.get("/logout", query_string={"id_token_hint": id_token,
                                             "post_logout_redirect_uri": client.redirect_uri.replace("/cb", "/bye")})


def _deliveries(client_id):
    db.session.expire_all()
    return list(db.session.scalars(select(LogoutDelivery).where(LogoutDelivery.client_id == client_id)))


def _verify_logout_token(http, token):
    keys = KeySet.import_key_set(http.get("/jwks.json").get_json())
    parsed = jwt.decode(token, keys, algorithms=["ES256", "RS256"])
    return dict(parsed.header), dict(parsed.claims)


def test_logout_token_is_delivered_and_valid(http, services, user, clock):
    with backchannel_receiver() as rx:
        client = _client(services, rx.url)
        tokens = Browser(http).tokens(client, user, nonce="login-nonce")
        _, id_claims = verify_jwt(http, tokens["id_token"])
        resp = _logout(http, client, tokens["id_token"])
        assert resp.status_code == 303

        # §2.5: the OP POSTs the logout token to the registered URI, form-encoded.
        assert len(rx.posts) == 1
        post = rx.posts[0]
        assert post["path"] == "/backchannel-logout"
        assert post["content_type"] == "application/x-www-form-urlencoded"
        header, claims = _verify_logout_token(http, rx.logout_tokens()[0])

    # §2.4: typ logout+jwt (explicit typing, RFC 8725 §3.11); signed with a published key.
    assert header["typ"] == "logout+jwt"
    assert header["alg"] in ("ES256", "RS256") and header["kid"]
    assert claims["iss"] == ISSUER
    assert claims["aud"] in (client.client_id, [client.client_id])
    now = clock.timestamp()
    assert abs(claims["iat"] - now) <= 5
    # §2.4 exp: "recommended to keep the expiration time short" (two minutes or so).
    assert 0 < claims["exp"] - claims["iat"] <= 300
    assert isinstance(claims["jti"], str) and len(claims["jti"]) >= 16
    assert claims["events"] == {BACKCHANNEL_EVENT: {}}
    # §2.4: sid and sub identify the session and user of the ID token the RP holds.
    assert claims["sid"] == id_claims["sid"]
    assert claims["sub"] == id_claims["sub"]
    # §2.4: a logout token MUST NOT contain a nonce (so it cannot pass as an ID token).
    assert "nonce" not in claims

    rows = _deliveries(client.client_id)
    # §2.7 delivery recorded: delivered at the first attempt.
    assert [(r.state, r.attempts) for r in rows] == [("delivered", 1)]
    assert rows[0].delivered_at is not None
    assert rows[0].sid == id_claims["sid"]


def test_every_client_of_the_session_is_notified(http, services, user):
    with backchannel_receiver() as rx_a, backchannel_receiver() as rx_b:
        a = _client(services, rx_a.url, name="Portal A", host="a.example.test")
        b = _client(services, rx_b.url, name="Portal B", host="b.example.test")
        silent = register_client(services, name="No BCL", redirect_uri="https://c.example.test/cb")
        browser = Browser(http)
        tokens_a = browser.tokens(a, user)
        tokens_b = browser.tokens(b, None)  # SSO: no second login
        browser.tokens(silent, None)
        assert _logout(http, a, tokens_a["id_token"]).status_code == 303
        # §2.7: every RP that registered a back-channel URI and took part in the session.
        assert len(rx_a.posts) == 1 and len(rx_b.posts) == 1
        _, claims_a = _verify_logout_token(http, rx_a.logout_tokens()[0])
        _, claims_b = _verify_logout_token(http, rx_b.logout_tokens()[0])
    _, id_a = verify_jwt(http, tokens_a["id_token"])
    _, id_b = verify_jwt(http, tokens_b["id_token"])
    assert claims_a["aud"] in (a.client_id, [a.client_id])
    assert claims_b["aud"] in (b.client_id, [b.client_id])
    # Pairwise subjects (OIDC Core §8.1): each RP gets the sub it knows.
    assert claims_a["sub"] == id_a["sub"] and claims_b["sub"] == id_b["sub"]
    assert claims_a["sub"] != claims_b["sub"]
    assert claims_a["sid"] == claims_b["sid"] == id_a["sid"] == id_b["sid"]
    assert claims_a["jti"] != claims_b["jti"]
    assert _deliveries(silent.client_id) == []


def test_failed_delivery_is_retried_then_given_up(http, services, user, clock):
    with backchannel_receiver(status=500) as rx:
        client = _client(services, rx.url)
        tokens = Browser(http).tokens(client, user)
        assert _logout(http, client, tokens["id_token"]).status_code == 303
        assert len(rx.posts) == 1

        (row,) = _deliveries(client.client_id)
        # §2.8: a non-200 answer is a failure; the OP keeps the delivery to retry it.
        assert row.state == "pending" and row.attempts == 1
        assert row.last_status == "500"
        assert row.next_attempt_at > clock.now()

        # Not due yet: nothing is sent.
        assert services.logout.deliver_due() == (0, 0)
        db.session.commit()
        assert len(rx.posts) == 1

        clock.advance((row.next_attempt_at - clock.now()).total_seconds() + 1)
        assert services.logout.deliver_due() == (0, 1)
        db.session.commit()
        (row,) = _deliveries(client.client_id)
        assert row.state == "pending" and row.attempts == 2
        assert len(rx.posts) == 2

        for _ in range(MAX_ATTEMPTS * 2):
            (row,) = _deliveries(client.client_id)
            if row.state != "pending":
                break
            clock.advance((row.next_attempt_at - clock.now()).total_seconds() + 1)
            services.logout.deliver_due()
            db.session.commit()
        (row,) = _deliveries(client.client_id)
        assert row.state == "failed"
        assert row.attempts == MAX_ATTEMPTS
        assert len(rx.posts) == MAX_ATTEMPTS
        jtis = [_verify_logout_token(http, t)[1]["jti"] for t in rx.logout_tokens()]
        # §2.4 jti unique per token: every attempt is a fresh token.
        assert len(set(jtis)) == MAX_ATTEMPTS

        # Given up means given up: no more attempts, however much time passes.
        clock.advance(timedelta(days=1).total_seconds())
        assert services.logout.deliver_due() == (0, 0)
        assert len(rx.posts) == MAX_ATTEMPTS


def test_retry_succeeds_when_receiver_recovers(http, services, user, clock):
    with backchannel_receiver(status=503) as rx:
        client = _client(services, rx.url)
        tokens = Browser(http).tokens(client, user)
        _, id_claims = verify_jwt(http, tokens["id_token"])
        _logout(http, client, tokens["id_token"])
        (row,) = _deliveries(client.client_id)
        assert row.state == "pending"
        rx.status = 200
        clock.advance(3600)
        assert services.logout.deliver_due() == (1, 1)
        db.session.commit()
        (row,) = _deliveries(client.client_id)
        assert row.state == "delivered" and row.attempts == 2
        _, claims = _verify_logout_token(http, rx.logout_tokens()[-1])
        assert claims["sid"] == id_claims["sid"]
        # The retried token is fresh: issued now, not expired on arrival.
        assert claims["iat"] == clock.timestamp()


def test_unreachable_receiver_does_not_break_logout(http, services, user):
    with backchannel_receiver() as rx:
        url = rx.url
    # The receiver is gone: the port is closed.
    client = _client(services, url)
    tokens = Browser(http).tokens(client, user)
    resp = _logout(http, client, tokens["id_token"])
    assert resp.status_code == 303
    (row,) = _deliveries(client.client_id)
    assert row.state == "pending" and row.attempts == 1


def test_a_redirect_from_the_receiver_is_not_followed(http, services, user):
    # Security (SSRF): the provider POSTs from inside its network; a receiver answering
    # with a redirect must not make it request another address (urllib turned a 303 into
    # a GET to the Location and counted its 200 as a delivery).
    with backchannel_receiver() as elsewhere, backchannel_receiver(status=303) as rx:
        rx.location = elsewhere.url
        client = _client(services, rx.url)
        tokens = Browser(http).tokens(client, user)
        assert _logout(http, client, tokens["id_token"]).status_code == 303
        assert len(rx.posts) == 1
        assert elsewhere.posts == [] and elsewhere.gets == []
    (row,) = _deliveries(client.client_id)
    # Back-Channel Logout §2.8: only 200 is success; a redirect is a failure, retried.
    assert (row.state, row.attempts, row.last_status) == ("pending", 1, "303")


def test_production_delivery_refuses_a_non_public_address(app, http, services, user):
    # A receiver on loopback, registered in development (or before registration checked
    # addresses): once the provider runs in production, nothing is sent to it.
    with backchannel_receiver() as rx:
        client = _client(services, rx.url)
        tokens = Browser(http).tokens(client, user)
        provider = app.extensions["yiwang.provider"]
        provider.settings = replace(provider.settings, production=True)
        assert _logout(http, client, tokens["id_token"]).status_code == 303
        assert rx.posts == []
    (row,) = _deliveries(client.client_id)
    assert (row.state, row.attempts, row.last_status) == ("pending", 1, "refused")


def test_frontchannel_logout_iframe(http, services, user):
    client = register_client(services, name="FC Portal", redirect_uri="https://fc.example.test/cb",
                             post_logout_redirect_uris=["https://fc.example.test/bye"],
                             frontchannel_logout_uri="https://fc.example.test/fc-logout?x=1")
    tokens = Browser(http).tokens(client, user)
    _, id_claims = verify_jwt(http, tokens["id_token"])
    resp = http.get("/logout", query_string={"id_token_hint": tokens["id_token"],
                                             "post_logout_redirect_uri": "https://fc.example.test/bye", "state": "z"})
    # Front-Channel Logout §4: the OP renders the RPs' logout URIs in iframes, then
    # continues to the post-logout redirect.
    assert resp.status_code == 200
    (src,) = iframe_sources(resp)
    assert src.startswith("https://fc.example.test/fc-logout?")
    params = query_params(src)
    # §2 frontchannel_logout_session_required: iss and sid as query parameters.
    assert params["iss"] == [ISSUER]
    assert params["sid"] == [id_claims["sid"]]
    assert params["x"] == ["1"]  # the registered query is kept
    csp = resp.headers["Content-Security-Policy"]
    frame_src = next(d for d in csp.split(";") if d.strip().startswith("frame-src"))
    assert "https://fc.example.test" in frame_src.split()
    assert "frame-ancestors 'none'" in csp
    # The page still leads on to the verified post-logout URI with state.
    assert "https://fc.example.test/bye?state=z" in resp.get_data(as_text=True)


def test_logout_page_without_frontchannel_allows_no_frames(http, oauth_client, user):
    tokens = Browser(http).tokens(oauth_client, user)
    resp = http.get("/logout", query_string={"id_token_hint": tokens["id_token"]})
    assert resp.status_code == 200
    assert iframe_sources(resp) == []
    assert "frame-src 'none'" in resp.headers["Content-Security-Policy"]
