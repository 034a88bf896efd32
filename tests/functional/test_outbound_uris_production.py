"""Registered URIs the provider itself contacts, under the production policy, through the
admin API of an app built with ``YIWANG_ENV=production`` (issue 17): sector identifier
documents (OIDC Registration §5) and back-channel logout receivers (Back-Channel Logout
§2.2) must be https on public addresses (SSRF); front-channel logout URIs https."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from common.db import db
from idp.models import Client
from tests.conftest import make_settings
from tests.functional._admin_api import API, admin_headers

from ._support import document_server

SMS_KEY = "dGVzdC1zbXMta2V5LXRlc3Qtc21zLWtleS10ZXN0LTMy"


@pytest.fixture
def settings(tmp_path, pg_template):
    return make_settings(tmp_path, pg_template, env="production", issuer="https://id.example.test",
                         registry_adapter="local", registry_local_authoritative=True,
                         sms_sender="http", sms_url="https://sms.example.test/send", sms_key=SMS_KEY)


@pytest.fixture
def admin(http, services, clock):
    assert services.p.settings.production
    return admin_headers(services, clock)("client-admin")


def _create(http, headers, **body):
    body = {"name": "Production Portal", "redirect_uris": ["https://portal.example.test/cb"]} | body
    return http.post(f"{API}/clients", json=body, headers=headers)


def _refused(resp, message: str) -> None:
    assert resp.status_code == 422, resp.get_json()
    problem = resp.get_json()
    assert problem["code"] == "invalid_client_metadata"
    assert message in problem["detail"], problem
    db.session.expire_all()
    assert "Production Portal" not in db.session.scalars(select(Client.name)).all()


# -- sector identifier documents -----------------------------------------------------


def test_sector_document_over_http_is_refused_in_production(http, admin):
    with document_server() as docs:
        url = docs.serve_json("/sector.json", ["https://portal.example.test/cb"])
        # A listing document, but on loopback http: the development exception only.
        _refused(_create(http, admin, sector_identifier_uri=url), "must use https")
        assert docs.hits == {}


@pytest.mark.parametrize("uri", ["https://127.0.0.1:{port}/sector.json", "https://localhost:{port}/sector.json",
                                 "https://[::1]:{port}/sector.json", "https://10.0.0.8/sector.json",
                                 "https://169.254.169.254/latest/meta-data"])
def test_sector_document_on_a_non_public_address_is_not_fetched(http, admin, uri):
    with document_server() as docs:
        docs.serve_json("/sector.json", ["https://portal.example.test/cb"])
        port = docs.base.rsplit(":", 1)[1]
        _refused(_create(http, admin, sector_identifier_uri=uri.format(port=port)), "could not be fetched")
        assert docs.hits == {}


# -- logout notification URIs --------------------------------------------------------


@pytest.mark.parametrize("uri", [
    "http://127.0.0.1:9/bcl", "http://localhost/bcl", "http://bcl.example.test/logout",
    "https://127.0.0.1/bcl", "https://localhost/bcl", "https://10.1.2.3/bcl", "https://192.168.0.1/bcl",
    "https://172.16.5.4/bcl", "https://100.64.0.1/bcl", "https://169.254.169.254/latest/meta-data",
    "https://[::1]/bcl", "https://[fe80::1]/bcl", "https://[fd00::1]/bcl", "https://[::ffff:127.0.0.1]/bcl",
    "https://0.0.0.0/bcl",
])
def test_backchannel_logout_uri_must_be_https_on_a_public_address(http, admin, uri):
    # Back-Channel Logout §2.2; Security (SSRF): the provider itself POSTs to this URI.
    _refused(_create(http, admin, backchannel_logout_uri=uri), "back-channel logout URI")


def test_backchannel_logout_uri_rules_apply_to_updates(http, admin):
    created = _create(http, admin, backchannel_logout_uri="https://portal.example.test/logout?via=bcl")
    # A public name (here one that does not resolve yet) is accepted; delivery checks again.
    assert created.status_code == 201, created.get_json()
    client_id = created.get_json()["client"]["client_id"]
    resp = http.patch(f"{API}/clients/{client_id}", json={"backchannel_logout_uri": "https://127.0.0.1:8443/bcl"},
                      headers=admin)
    assert resp.status_code == 422 and resp.get_json()["code"] == "invalid_client_metadata"
    assert "back-channel logout URI" in resp.get_json()["detail"]


@pytest.mark.parametrize("uri", ["http://127.0.0.1:9/fc", "http://fc.example.test/fc"])
def test_frontchannel_logout_uri_must_be_https(http, admin, uri):
    _refused(_create(http, admin, frontchannel_logout_uri=uri), "front-channel logout URI")


def test_https_frontchannel_logout_uri_is_accepted(http, admin):
    resp = _create(http, admin, frontchannel_logout_uri="https://portal.example.test/fc")
    assert resp.status_code == 201, resp.get_json()
