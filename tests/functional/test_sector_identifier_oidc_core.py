"""Pairwise sectors (OIDC Core §8.1, OIDC Registration §5) through the admin API: a
``sector_identifier_uri`` is fetched from a real HTTP server and must list every redirect
URI of the client, so no client can claim another portal's sector (and its citizens'
``sub``) by naming it; the sector of an update is vouched for the same way (issue 17)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from common.db import db
from idp.models import Client
from tests.functional._admin_api import API, admin_headers

from ._support import document_server, register_client


@pytest.fixture
def admin(http, services, clock):
    return admin_headers(services, clock)("client-admin")


def _create(http, headers, **body):
    return http.post(f"{API}/clients", json={"name": "Sector Portal"} | body, headers=headers)


def _refused(resp, message: str) -> None:
    assert resp.status_code == 422, resp.get_json()
    problem = resp.get_json()
    assert problem["code"] == "invalid_client_metadata"
    assert message in problem["detail"], problem
    assert "Traceback" not in resp.get_data(as_text=True)


def _names() -> list[str]:
    db.session.expire_all()
    return list(db.session.scalars(select(Client.name).order_by(Client.id)))


def test_another_portals_sector_cannot_be_claimed(http, services, admin):
    # The tax portal's citizens have pairwise subs for the sector tax.example.test.
    register_client(services, name="Tax Portal", redirect_uri="https://tax.example.test/cb")
    # Naming the tax portal's host as sector, without its document listing our redirect
    # URI, would give us the same subs. The document cannot be fetched: refused.
    resp = _create(http, admin, redirect_uris=["https://evil.example.test/cb"],
                   sector_identifier_uri="https://tax.example.test/sector.json")
    _refused(resp, "could not be fetched")
    assert "Sector Portal" not in _names()


def test_the_document_must_list_every_redirect_uri(http, admin):
    with document_server() as docs:
        url = docs.serve_json("/sector.json", ["https://a.example.test/cb"])
        resp = _create(http, admin, redirect_uris=["https://a.example.test/cb", "https://b.example.test/cb"],
                       sector_identifier_uri=url)
        _refused(resp, "does not list every redirect URI")
        assert docs.hits["/sector.json"] == 1
    assert "Sector Portal" not in _names()


def test_a_listing_document_registers_its_host_as_the_sector(http, admin):
    with document_server() as docs:
        url = docs.serve_json("/sector.json", ["https://a.example.test/cb", "https://b.example.test/cb",
                                               "https://c.example.test/other"])
        resp = _create(http, admin, redirect_uris=["https://a.example.test/cb", "https://b.example.test/cb"],
                       sector_identifier_uri=url)
        assert resp.status_code == 201, resp.get_json()
        assert docs.hits["/sector.json"] == 1
    # OIDC Core §8.1: the sector is the host of the sector_identifier_uri.
    assert resp.get_json()["client"]["sector_identifier"] == "127.0.0.1"


@pytest.mark.parametrize(("status", "body", "message"), [
    (404, b"[]", "could not be fetched"),
    (302, b"", "could not be fetched"),
    (200, b"not json", "JSON array of redirect URIs"),
    (200, b'{"redirect_uris": ["https://a.example.test/cb"]}', "JSON array of redirect URIs"),
    (200, b'["https://a.example.test/cb", 7]', "JSON array of redirect URIs"),
    (200, b'["' + b"x" * 70_000 + b'"]', "could not be fetched"),
])
def test_a_bad_document_is_refused_and_nothing_saved(http, admin, status, body, message):
    with document_server() as docs:
        docs.routes["/sector.json"] = (status, body)
        resp = _create(http, admin, redirect_uris=["https://a.example.test/cb"],
                       sector_identifier_uri=docs.url("/sector.json"))
        _refused(resp, message)
    assert "Sector Portal" not in _names()


@pytest.mark.parametrize("uri", ["http://sector.example.test/sector.json", "ftp://127.0.0.1/sector.json",
                                 "https://sector.example.test/sector.json#f"])
def test_the_sector_identifier_uri_uses_https(http, admin, uri):
    # OIDC Registration §2: https (outside production, http on loopback for local tests).
    _refused(_create(http, admin, redirect_uris=["https://a.example.test/cb"], sector_identifier_uri=uri),
             "sector identifier URI")


def test_an_update_cannot_move_redirect_uris_out_of_the_sector(http, services, admin):
    # A client registered for tax.example.test keeps that sector for ever; moving its
    # redirect URIs to other hosts would hand the tax portal's subs to them.
    tax = register_client(services, name="Tax Portal", redirect_uri="https://tax.example.test/cb")
    resp = http.patch(f"{API}/clients/{tax.client_id}", headers=admin,
                      json={"redirect_uris": ["https://tax.example.test/cb", "https://evil.example.test/cb"]})
    _refused(resp, "sector identifier URI")
    db.session.expire_all()
    assert services.clients.get(tax.client_id).redirect_uris == ["https://tax.example.test/cb"]
    # Other changes, and URIs on the sector's host, need no document.
    resp = http.patch(f"{API}/clients/{tax.client_id}", headers=admin,
                      json={"name": "Tax", "redirect_uris": ["https://tax.example.test/cb", "https://tax.example.test/cb2"]})
    assert resp.status_code == 200, resp.get_json()


def test_an_update_is_vouched_for_by_the_sector_document(http, admin):
    with document_server() as docs:
        url = docs.serve_json("/sector.json", ["https://a.example.test/cb"])
        created = _create(http, admin, redirect_uris=["https://a.example.test/cb"], sector_identifier_uri=url)
        assert created.status_code == 201, created.get_json()
        client_id = created.get_json()["client"]["client_id"]
        more = {"redirect_uris": ["https://a.example.test/cb", "https://b.example.test/cb"]}
        # A new host outside the sector, without the document: refused.
        _refused(http.patch(f"{API}/clients/{client_id}", json=more, headers=admin), "sector identifier URI")
        # With the document, which does not list it yet: refused.
        _refused(http.patch(f"{API}/clients/{client_id}", json=more | {"sector_identifier_uri": url}, headers=admin),
                 "does not list every redirect URI")
        # Once the sector's owner lists it: accepted, the sector unchanged.
        docs.serve_json("/sector.json", ["https://a.example.test/cb", "https://b.example.test/cb"])
        resp = http.patch(f"{API}/clients/{client_id}", json=more | {"sector_identifier_uri": url}, headers=admin)
        assert resp.status_code == 200, resp.get_json()
        assert resp.get_json()["client"]["sector_identifier"] == "127.0.0.1"
        assert docs.hits["/sector.json"] == 3
