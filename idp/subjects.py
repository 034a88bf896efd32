"""Subject identifiers (OIDC Core §8): public, or pairwise per sector (§8.1).

Pure: no Flask, no database. The sector of a client is its registered
``sector_identifier`` (the host of its ``sector_identifier_uri``) or, without one, the
host of its redirect URIs, which must then share one host (OIDC Core §8.1)."""

from __future__ import annotations

from urllib.parse import urlsplit

from common.crypto import KeyedHasher


class SectorError(ValueError):
    """The client's redirect URIs do not determine one sector."""


def sector_for(redirect_uris: list[str], sector_identifier_uri: str | None = None) -> str:
    # OIDC Core §8.1: without a sector_identifier_uri the redirect URIs' host is the sector;
    # with several hosts a sector_identifier_uri is required.
    if sector_identifier_uri:
        host = urlsplit(sector_identifier_uri).hostname
        if not host:
            raise SectorError("sector_identifier_uri has no host")
        return host.lower()
    hosts = {(urlsplit(uri).hostname or "").lower() for uri in redirect_uris}
    hosts.discard("")
    if len(hosts) != 1:
        raise SectorError("redirect URIs on several hosts need a sector identifier")
    return hosts.pop()


def subject_for(hasher: KeyedHasher, subject_seed: str, subject_type: str, sector: str) -> str:
    """The ``sub`` for one account at one client.

    Neither form reveals a database key or an identity number: both are keyed hashes of
    the account's random seed, so only this service can compute or reverse them.
    """
    if subject_type == "public":
        return hasher.digest("sub-public", subject_seed)
    return hasher.digest("sub-pairwise", f"{sector}\x00{subject_seed}")
