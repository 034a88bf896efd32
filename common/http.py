"""Outbound HTTP to URLs we did not write ourselves (CRL and OCSP locations, sector
identifier documents, back-channel logout receivers): one guarded client against SSRF.

Security: in production every address a host resolves to must be public (no private,
loopback, link-local, multicast or reserved address), the connection goes to the vetted
address and is not re-resolved (DNS rebinding), redirects are never followed, and every
exchange has a size cap and an overall deadline. Pure of Flask and the database.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_MAX_BYTES = 1024 * 1024
DEFAULT_TIMEOUT_SECONDS = 10.0


class FetchError(Exception):
    """An outbound request was refused or failed. The message is for logs; ``reason`` is a
    short stable word for records (``refused``, ``unresolvable``, ``too-large``,
    ``timeout``, an HTTP status, or the name of the network error)."""

    def __init__(self, message: str, *, reason: str = "failed") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes  # read (within the size cap) for 2xx answers only


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (``address``) and what to ask for."""

    scheme: str
    host: str
    port: int
    path: str
    address: str


def address_refused(address: str) -> bool:
    """True for an address a production fetch must not reach: anything not globally
    routable (private, loopback, link-local, multicast, reserved, unspecified), also
    when written as an IPv4-mapped IPv6 address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved
            or ip.is_unspecified or not ip.is_global)


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (an IP literal resolves to itself, without DNS).
    Raises ``FetchError`` (reason ``unresolvable``)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"cannot resolve {host}: {exc}", reason="unresolvable") from None
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise FetchError(f"{host} has no address", reason="unresolvable")
    return addresses


def resolve_allowed(url: str, *, production: bool) -> Target:
    """Check a URL (http/https, a host, no credentials) and resolve its host, refusing in
    production any non-public address. Raises ``FetchError``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise FetchError(f"refused scheme {parts.scheme!r}", reason="refused")
    if not parts.hostname or parts.username or parts.password:
        raise FetchError("refused URL without a host or with credentials", reason="refused")
    host = parts.hostname
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise FetchError("bad port", reason="refused") from None
    addresses = resolve(host, port)
    if production:
        refused = [a for a in addresses if address_refused(a)]
        if refused:
            raise FetchError(f"refused non-public address {refused[0]} for {host}", reason="refused")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(parts.scheme, host, port, path, addresses[0])


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        self._ssl_context = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self._ssl_context)
        self._address = address

    def connect(self) -> None:
        # The TLS name check is against the URL's host, the TCP connection to the vetted address.
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._ssl_context.wrap_socket(sock, server_hostname=self.host)


def http_request(url: str, *, production: bool, body: bytes | None = None, content_type: str | None = None,
                 accept: str = "*/*", max_bytes: int = DEFAULT_MAX_BYTES,
                 timeout: float = DEFAULT_TIMEOUT_SECONDS) -> HttpResponse:
    """GET (or POST ``body``) one URL with the address guard, a size bound and an overall
    deadline. Any status is returned, a redirect included: it is never followed (a
    redirect could lead anywhere, the internal network too). Raises ``FetchError``."""
    target = resolve_allowed(url, production=production)
    cls = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    conn = cls(target.host, target.port, target.address, timeout)
    deadline = time.monotonic() + timeout
    try:
        headers = {"Accept": accept, "Connection": "close"}
        if content_type:
            headers["Content-Type"] = content_type
        conn.request("POST" if body is not None else "GET", target.path, body=body, headers=headers)
        resp = conn.getresponse()
        if not 200 <= resp.status < 300:
            return HttpResponse(resp.status, b"")
        length = resp.getheader("Content-Length")
        if length is not None and length.isdigit() and int(length) > max_bytes:
            raise FetchError(f"{url} is larger than {max_bytes} bytes", reason="too-large")
        chunks: list[bytes] = []
        total = 0
        while True:
            if time.monotonic() > deadline:
                raise FetchError(f"{url} took longer than {timeout} s", reason="timeout")
            chunk = resp.read(65536)
            if not chunk:
                break
            total += len(chunk)
            if total > max_bytes:
                raise FetchError(f"{url} is larger than {max_bytes} bytes", reason="too-large")
            chunks.append(chunk)
        return HttpResponse(resp.status, b"".join(chunks))
    except (OSError, http.client.HTTPException) as exc:
        reason = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
        raise FetchError(f"fetching {url} failed: {exc.__class__.__name__}: {exc}", reason=reason) from None
    finally:
        conn.close()


def http_fetch(url: str, *, production: bool, body: bytes | None = None, content_type: str | None = None,
               accept: str = "*/*", max_bytes: int = DEFAULT_MAX_BYTES,
               timeout: float = DEFAULT_TIMEOUT_SECONDS) -> bytes:
    """The body of a 200 answer to ``http_request``; any other status (a redirect too) is
    a ``FetchError`` whose reason is the status."""
    resp = http_request(url, production=production, body=body, content_type=content_type, accept=accept,
                        max_bytes=max_bytes, timeout=timeout)
    if resp.status != 200:
        raise FetchError(f"{url} answered HTTP {resp.status}", reason=str(resp.status))
    return resp.body
