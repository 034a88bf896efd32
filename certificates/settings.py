"""The certificate-login section of the configuration (built by config.Settings)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CertificateSettings:
    # mTLS mode (issue 4): the header a TLS-terminating proxy puts the verified client
    # certificate in, and the proxies (peer addresses) allowed to set it. No header: off.
    client_cert_header: str | None = None
    client_cert_proxies: tuple[str, ...] = ()
    # Seconds a login challenge stays usable (single use, for the browser it was shown to).
    challenge_ttl: int = 300
    # Production refuses development shortcuts (plain-http CRL and OCSP URLs).
    production: bool = False

    @property
    def mtls_enabled(self) -> bool:
        return bool(self.client_cert_header)

    def trusts_header_from(self, peer: str) -> bool:
        """Only a configured proxy may assert a client certificate in the header."""
        return self.mtls_enabled and peer in self.client_cert_proxies
