"""CRL and OCSP revocation over real HTTP on loopback (RFC 5280 §6.3, RFC 6960): fetched
only from configured URLs, never from private/loopback/link-local addresses in production,
bounded in size, cached so a look-up costs one set membership, refreshed with time."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from certificates import revocation
from certificates.revocation import RevocationChecker, RevocationStatus, fetch_crl
from certificates.trust import CertificateRejectedError, RejectionReason
from certificates.validation import CertificateValidator
from common.clock import FrozenClock
from common.http import FetchError
from tests.support.pki import make_crl, make_large_crl, three_provinces

USCC = "91350100M000100Y43"


class _Server:
    """A loopback HTTP server answering GET with ``routes[path]`` and POST (OCSP) with
    ``ocsp(body)``; counts hits per path."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, bytes, dict[str, str]]] = {}
        self.hits: dict[str, int] = {}
        self.ocsp = None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                outer.hits[self.path] = outer.hits.get(self.path, 0) + 1
                status, body, headers = outer.routes.get(self.path, (404, b"", {}))
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                outer.hits[self.path] = outer.hits.get(self.path, 0) + 1
                body = self.rfile.read(int(self.headers["Content-Length"]))
                answer = outer.ocsp(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/ocsp-response")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.close()


@pytest.fixture(scope="module")
def province():
    return three_provinces()[0]


@pytest.fixture
def clock():
    return FrozenClock()


def test_crl_fetched_from_the_configured_url_and_cached(server, province, clock):
    good, bad = province.issue(USCC), province.issue(USCC)
    server.routes["/ca.crl"] = (200, make_crl(province.intermediate, [bad.cert.serial_number]), {})
    ca = province.trusted(1, crl_urls=(server.url + "/ca.crl",))
    checker = RevocationChecker(clock)
    validator = CertificateValidator(clock, checker)
    for _ in range(5):
        assert validator.validate(good.der, [], [ca], production=False).mapping.identifier.value == USCC
    with pytest.raises(CertificateRejectedError) as info:
        validator.validate(bad.der, [], [ca], production=False)
    assert info.value.reason == RejectionReason.REVOKED
    # Fetched once, parsed once: later look-ups are set membership on the cached CRL.
    assert server.hits["/ca.crl"] == 1
    assert checker.parse_count == 1


def test_refetched_after_the_refresh_interval(server, province, clock):
    leaf = province.issue(USCC)
    server.routes["/ca.crl"] = (200, make_crl(province.intermediate, [], next_update=clock.now() + timedelta(days=30)), {})
    ca = province.trusted(1, crl_urls=(server.url + "/ca.crl",))
    validator = CertificateValidator(clock, RevocationChecker(clock))
    validator.validate(leaf.der, [], [ca], production=False)
    # The CA revokes the certificate and publishes a new CRL.
    server.routes["/ca.crl"] = (200, make_crl(province.intermediate, [leaf.cert.serial_number], number=2,
                                              now=clock.now(), next_update=clock.now() + timedelta(days=30)), {})
    clock.advance(revocation.REFETCH_SECONDS - 1)
    validator.validate(leaf.der, [], [ca], production=False)
    assert server.hits["/ca.crl"] == 1
    clock.advance(2)
    with pytest.raises(CertificateRejectedError) as info:
        validator.validate(leaf.der, [], [ca], production=False)
    assert info.value.reason == RejectionReason.REVOKED
    assert server.hits["/ca.crl"] == 2


def test_stale_uploaded_crl_falls_back_to_the_url(server, province, clock):
    leaf = province.issue(USCC)
    stale = make_crl(province.intermediate, [], now=clock.now() - timedelta(days=10),
                     next_update=clock.now() - timedelta(days=3))
    server.routes["/ca.crl"] = (200, make_crl(province.intermediate, [leaf.cert.serial_number]), {})
    ca = province.trusted(1, crl_der=stale, crl_urls=(server.url + "/ca.crl",))
    with pytest.raises(CertificateRejectedError) as info:
        CertificateValidator(clock, RevocationChecker(clock)).validate(leaf.der, [], [ca], production=False)
    assert info.value.reason == RejectionReason.REVOKED


def test_unreachable_or_broken_crl_url_fails_closed(server, province, clock):
    leaf = province.issue(USCC)
    server.routes["/junk.crl"] = (200, b"not a crl", {})
    server.routes["/moved.crl"] = (302, b"", {"Location": server.url + "/ca.crl"})
    for path in ("/missing.crl", "/junk.crl", "/moved.crl"):
        ca = province.trusted(1, crl_urls=(server.url + path,))
        with pytest.raises(CertificateRejectedError) as info:
            CertificateValidator(clock, RevocationChecker(clock)).validate(leaf.der, [], [ca], production=False)
        # Unknown revocation status fails closed (issue 4); redirects are not followed.
        assert info.value.reason == RejectionReason.REVOCATION_UNKNOWN, path


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/ca.crl",
        "http://localhost:9/ca.crl",
        "http://10.1.2.3/ca.crl",
        "http://192.168.0.1/ca.crl",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:9/ca.crl",
        "http://[fe80::1]/ca.crl",
        "http://[::ffff:127.0.0.1]/ca.crl",
        "http://0.0.0.0/ca.crl",
    ],
)
def test_production_refuses_private_loopback_and_link_local_addresses(url):
    # Security (SSRF): a CRL URL must not reach the internal network. The address is checked
    # before any connection, so nothing listens at these addresses during the test.
    with pytest.raises(FetchError, match="refused non-public address"):
        fetch_crl(url, production=True)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://crl.example/ca.crl", "ldap://ca.example/cn=CRL",
                                 "http://user:pw@crl.example/ca.crl", "http:///ca.crl"])
def test_only_plain_http_and_https_urls(url):
    with pytest.raises(FetchError, match="refused"):
        fetch_crl(url, production=False)


def test_loopback_allowed_outside_production_only(server, province):
    server.routes["/ca.crl"] = (200, make_crl(province.intermediate), {})
    assert fetch_crl(server.url + "/ca.crl", production=False).startswith(b"\x30")
    with pytest.raises(FetchError, match="refused non-public address"):
        fetch_crl(server.url + "/ca.crl", production=True)
    assert server.hits["/ca.crl"] == 1


def test_size_bound(server):
    server.routes["/big.crl"] = (200, b"\x30" * 5000, {})
    with pytest.raises(FetchError, match="larger than"):
        fetch_crl(server.url + "/big.crl", production=False, max_bytes=4096)


def test_lookup_in_a_100k_entry_crl_is_cached_membership(province, clock):
    leaf = province.issue(USCC)
    revoked = province.issue(USCC)
    big = make_large_crl(province.intermediate, 100_000, extra=(revoked.cert.serial_number,))
    ca = province.trusted(1, crl_der=big)
    checker = RevocationChecker(clock, allow_fetch=False)
    validator = CertificateValidator(clock, checker)
    for _ in range(20):
        validator.validate(leaf.der, [], [ca], production=False)
    with pytest.raises(CertificateRejectedError) as info:
        validator.validate(revoked.der, [], [ca], production=False)
    assert info.value.reason == RejectionReason.REVOKED
    assert checker.parse_count == 1
    # A TrustedCa rebuilt by the registry (same CRL, new bytes object) hits the digest cache.
    validator.validate(leaf.der, [], [replace(ca, crl_der=bytes(bytearray(big)))], production=False)
    assert checker.parse_count == 1


# ---- OCSP (RFC 6960)


def _ocsp_responder(province, clock, status_for, *, signer=None):
    def answer(body: bytes) -> bytes:
        request = ocsp.load_der_ocsp_request(body)
        serial = request.serial_number
        cert = status_for["certs"][serial]
        status = status_for["status"].get(serial, ocsp.OCSPCertStatus.GOOD)
        responder_cert, key = signer or (province.intermediate.cert, province.intermediate.key)
        builder = ocsp.OCSPResponseBuilder().add_response(
            cert=cert, issuer=province.intermediate.cert, algorithm=hashes.SHA1(),  # noqa: S303 - RFC 5019 CertID
            cert_status=status, this_update=clock.now() - timedelta(minutes=1),
            next_update=clock.now() + timedelta(hours=1),
            revocation_time=clock.now() - timedelta(hours=1) if status == ocsp.OCSPCertStatus.REVOKED else None,
            revocation_reason=None,
        ).responder_id(ocsp.OCSPResponderEncoding.HASH, responder_cert)
        return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    return answer


def test_ocsp_answers_when_no_crl_is_available(server, province, clock):
    good, bad = province.issue(USCC), province.issue(USCC)
    server.ocsp = _ocsp_responder(province, clock, {
        "certs": {good.cert.serial_number: good.cert, bad.cert.serial_number: bad.cert},
        "status": {bad.cert.serial_number: ocsp.OCSPCertStatus.REVOKED},
    })
    ca = province.trusted(1, ocsp_url=server.url + "/ocsp")
    validator = CertificateValidator(clock, RevocationChecker(clock))
    assert validator.validate(good.der, [], [ca], production=False)
    assert validator.validate(good.der, [], [ca], production=False)
    assert server.hits["/ocsp"] == 1  # cached until nextUpdate
    with pytest.raises(CertificateRejectedError) as info:
        validator.validate(bad.der, [], [ca], production=False)
    assert info.value.reason == RejectionReason.REVOKED


def test_ocsp_response_signed_by_a_stranger_is_no_answer(server, province, clock):
    leaf = province.issue(USCC)
    other = three_provinces()[1].intermediate
    stranger = (other.cert, other.key)
    server.ocsp = _ocsp_responder(province, clock, {"certs": {leaf.cert.serial_number: leaf.cert}, "status": {}},
                                  signer=stranger)
    ca = province.trusted(1, ocsp_url=server.url + "/ocsp")
    checker = RevocationChecker(clock)
    issuer = province.intermediate.cert
    # RFC 6960 §3.2 (2): the response must be signed by the issuer or its delegated responder.
    result = checker.check(leaf.cert, issuer, ca, production=False)
    assert result.status == RevocationStatus.UNKNOWN and "responder" in result.detail
    with pytest.raises(CertificateRejectedError) as info:
        CertificateValidator(clock, checker).validate(leaf.der, [], [ca], production=False)
    assert info.value.reason == RejectionReason.REVOCATION_UNKNOWN


def test_registry_refresh_returns_the_verified_crl(server, province, clock):
    server.routes["/ca.crl"] = (200, make_crl(province.intermediate, [7], number=5), {})
    ca = province.trusted(1, crl_urls=(server.url + "/missing.crl", server.url + "/ca.crl"))
    der, parsed = RevocationChecker(clock).refresh(ca, production=False)
    assert parsed.crl_number == 5 and 7 in parsed.revoked
    assert x509.load_der_x509_crl(der).issuer == province.intermediate.name
    with pytest.raises(FetchError):
        RevocationChecker(clock).refresh(province.trusted(2), production=False)
