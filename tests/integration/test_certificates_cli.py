"""The `certificates` operator commands (config/cli/certificates.py) against the test app
and real PostgreSQL: register CAs from PEM files, list, disable/enable, load CRLs, and map
a certificate with its trail. Each command is one transaction; refusals exit 2 with the
reason and write nothing. Issue 4 "CLI"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select

from certificates.models import CertificateAuthority
from common.db import db
from tests.support.pki import PRIVATE_OID, make_crl, three_provinces

USCC = "91350100M000100Y43"


@pytest.fixture(scope="module")
def provinces():
    return three_provinces()


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()

    def run(*args: str, ok: bool = True):
        result = runner.invoke(args=["certificates", *args])
        if ok:
            assert result.exit_code == 0, (result.output, result.exception)
        return result

    return run


def _json(result):
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout  # --json prints one JSON document on one line
    return json.loads(lines[0])


def _count() -> int:
    db.session.expire_all()
    return int(db.session.scalar(select(func.count()).select_from(CertificateAuthority)))


def _write(tmp_path: Path, name: str, data: bytes | str) -> str:
    path = tmp_path / name
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return str(path)


def _bundle(tmp_path: Path, p) -> str:
    return _write(tmp_path, f"{p.province}.pem",
                  b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (p.root.cert, p.intermediate.cert)))


def _add(cli, tmp_path, p, *extra: str):
    profile: tuple[str, ...] = ()
    if p.profile.sources[0].oid == PRIVATE_OID:
        profile = ("--profile", _write(tmp_path, f"{p.province}.json", p.profile.to_json()))
    return _json(cli("ca", "add", "--name", p.name, "--province", p.province, "--pem", _bundle(tmp_path, p),
                     *profile, *extra, "--json"))


def test_ca_add_and_list(cli, tmp_path, provinces):
    fujian, _, beijing = provinces
    added = _add(cli, tmp_path, fujian, "--crl-url", "http://crl.fujian.example.test/ca.crl",
                 "--ocsp-url", "http://ocsp.fujian.example.test/")
    assert added["name"] == "Fujian CA" and added["province"] == "Fujian" and added["enabled"] is True
    assert added["roots"] == [fujian.root.name.rfc4514_string()]
    assert added["intermediates"] == [fujian.intermediate.name.rfc4514_string()]
    assert added["crl_urls"] == ["http://crl.fujian.example.test/ca.crl"]
    assert added["ocsp_url"] == "http://ocsp.fujian.example.test/"
    # Without --profile: the default GM/T 0015 placements, first the 2023 USCC extension.
    assert added["profile"]["sources"][0]["oid"] == "1.2.156.10260.4.4"
    with_profile = _add(cli, tmp_path, beijing)
    assert with_profile["profile"]["sources"][0]["oid"] == PRIVATE_OID

    listed = _json(cli("ca", "list", "--json"))
    assert [c["name"] for c in listed] == ["Fujian CA", "Beijing CA"]
    text = cli("ca", "list").stdout
    assert "Fujian CA" in text and "enabled" in text


def test_ca_disable_and_enable(cli, tmp_path, provinces):
    added = _add(cli, tmp_path, provinces[0])
    assert _json(cli("ca", "disable", str(added["id"]), "--json")) == {"id": added["id"], "enabled": False}
    assert _json(cli("ca", "list", "--json"))[0]["enabled"] is False
    assert _json(cli("ca", "enable", str(added["id"]), "--json")) == {"id": added["id"], "enabled": True}
    result = cli("ca", "disable", "999999", ok=False)
    assert result.exit_code == 2 and "No such certificate authority." in result.stderr


@pytest.mark.parametrize(("what", "message"), [
    ("leaf", "is not a CA certificate"),
    ("garbage", "no readable PEM certificate"),
    ("bad profile", "mapping profile is not valid"),
    ("bad url", "CRL URL must be an http(s) URL"),
])
def test_ca_add_refusals_write_nothing(cli, tmp_path, provinces, what, message):
    p = provinces[0]
    pem = _bundle(tmp_path, p)
    extra: list[str] = []
    if what == "leaf":
        pem = _write(tmp_path, "leaf.pem", p.issue(USCC).cert.public_bytes(serialization.Encoding.PEM))
    elif what == "garbage":
        pem = _write(tmp_path, "garbage.pem", b"hello")
    elif what == "bad profile":
        extra = ["--profile", _write(tmp_path, "p.json", '{"sources": [{"kind": "extension", "oid": "x"}]}')]
    else:
        extra = ["--crl-url", "ftp://crl.example.test/a.crl"]
    result = cli("ca", "add", "--name", "X", "--province", "Y", "--pem", pem, *extra, ok=False)
    assert result.exit_code == 2, result.output
    assert message in result.stderr, result.stderr
    assert _count() == 0


def test_crl_load(cli, tmp_path, provinces):
    fujian = provinces[0]
    added = _add(cli, tmp_path, fujian)
    crl = _write(tmp_path, "fj.crl", make_crl(fujian.intermediate, [1, 2, 3], number=9))
    loaded = _json(cli("crl", "load", "--ca", str(added["id"]), crl, "--json"))
    assert (loaded["ca_id"], loaded["crl_number"], loaded["entries"]) == (added["id"], 9, 3)
    assert loaded["issuer"] == fujian.intermediate.name.rfc4514_string()
    [listed] = _json(cli("ca", "list", "--json"))
    assert listed["crl_number"] == "9" and listed["crl_next_update"] == loaded["next_update"]

    # A CRL signed with another key is refused (RFC 5280 §6.3.3 (f)) and changes nothing.
    forged = _write(tmp_path, "forged.crl", make_crl(fujian.intermediate, [], number=10,
                                                     signer_key=ec.generate_private_key(ec.SECP256R1())))
    result = cli("crl", "load", "--ca", str(added["id"]), forged, ok=False)
    assert result.exit_code == 2 and "signature does not verify" in result.stderr
    # An older one too (RFC 5280 §5.2.3).
    older = _write(tmp_path, "older.crl", make_crl(fujian.intermediate, [], number=8))
    result = cli("crl", "load", "--ca", str(added["id"]), older, ok=False)
    assert result.exit_code == 2 and "lower CRL number" in result.stderr
    assert _json(cli("ca", "list", "--json"))[0]["crl_number"] == "9"


def test_map_prints_identifier_and_trail(cli, tmp_path, provinces):
    fujian, guangdong, beijing = provinces
    for p in provinces:
        _add(cli, tmp_path, p)
    sample = _write(tmp_path, "bj.pem", beijing.issue(USCC).cert.public_bytes(serialization.Encoding.PEM))
    results = {r["ca_name"]: r for r in _json(cli("map", sample, "--json"))}
    assert set(results) == {"Fujian CA", "Guangdong CA", "Beijing CA"}
    assert results["Beijing CA"]["identifier"] == {"kind": "uscc", "value": USCC}
    assert results["Beijing CA"]["issuer_match"] is True
    assert results["Beijing CA"]["name"] == "示例科技有限公司"
    # Why the default profile finds nothing: every place it looked is in the trail.
    assert results["Fujian CA"]["identifier"] is None and results["Fujian CA"]["reason"] == "no_identifier"
    assert "extension 1.2.156.10260.4.4: absent" in results["Fujian CA"]["trail"]

    only = _json(cli("map", sample, "--ca", str(results["Fujian CA"]["ca_id"]), "--json"))
    assert [r["ca_name"] for r in only] == ["Fujian CA"]

    text = cli("map", sample).stdout
    assert f"Beijing CA (issuer matches): uscc {USCC}" in text
    assert "  extension 1.2.156.10260.4.4: absent" in text


def test_map_with_an_unsaved_profile(cli, tmp_path, provinces):
    beijing = provinces[2]
    sample = _write(tmp_path, "bj.der", beijing.issue(USCC).der)
    profile = _write(tmp_path, "try.json", beijing.profile.to_json())
    [result] = _json(cli("map", sample, "--profile", profile, "--json"))
    assert result["ca_id"] is None and result["identifier"] == {"kind": "uscc", "value": USCC}
    assert _count() == 0
    garbage = _write(tmp_path, "garbage.der", b"\x30\x00")
    result = cli("map", garbage, "--profile", profile, ok=False)
    assert result.exit_code == 2 and "could not be read" in result.stderr


def test_legal_person_and_mandate_commands(app, services, user):
    runner = app.test_cli_runner()
    made = runner.invoke(args=["certificates", "legal-person", "create", "--uscc", "91350100M000100Y43",
                               "--name", "示例科技有限公司", "--by", "root", "--json"])
    assert made.exit_code == 0, made.output
    bad = runner.invoke(args=["certificates", "legal-person", "create", "--uscc", "91350100M000100Y44",
                              "--name", "X", "--by", "root"])
    assert bad.exit_code == 2 and "USCC" in bad.output
    granted = runner.invoke(args=["certificates", "mandate", "grant", "--agent", "alice", "--uscc",
                                  "91350100M000100Y43", "--scope", "tax", "--days", "30", "--by", "root", "--json"])
    assert granted.exit_code == 0, granted.output
    mandate_id = json.loads(granted.output)["mandate_id"]
    listed = json.loads(runner.invoke(args=["certificates", "mandate", "list", "--uscc", "91350100M000100Y43",
                                            "--json"]).output)
    assert [m["mandate_id"] for m in listed] == [mandate_id] and not listed[0]["revoked"]
    assert runner.invoke(args=["certificates", "mandate", "revoke", str(mandate_id), "--by", "root"]).exit_code == 0
    listed = json.loads(runner.invoke(args=["certificates", "mandate", "list", "--uscc", "91350100M000100Y43",
                                            "--json"]).output)
    assert listed[0]["revoked"]
    unknown = runner.invoke(args=["certificates", "mandate", "grant", "--agent", "alice", "--uscc",
                                  "91110000600037341L", "--scope", "tax", "--by", "root"])
    assert unknown.exit_code == 2


def test_crl_refresh_without_urls_reports_nothing(app):
    out = app.test_cli_runner().invoke(args=["certificates", "crl", "refresh", "--json"])
    assert out.exit_code == 0 and json.loads(out.output) == []


def test_crl_refresh_fetches_and_stores(app, services):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    province = three_provinces()[0]
    crl = make_crl(province.intermediate, revoked=[4242], number=7)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            return None

        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "application/pkix-crl")
            self.send_header("Content-Length", str(len(crl)))
            self.end_headers()
            self.wfile.write(crl)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (province.root.cert,
                                                                             province.intermediate.cert))
        ca = services.cas.add(name=province.name, province=province.province, pem_bundle=pem,
                              crl_urls=[f"http://127.0.0.1:{server.server_address[1]}/ca.crl"])
        db.session.commit()
        out = app.test_cli_runner().invoke(args=["certificates", "crl", "refresh", "--json"])
    finally:
        server.shutdown()
        server.server_close()
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == [{"ca_id": ca.id, "ok": True, "crl_number": 7, "entries": 1}]
