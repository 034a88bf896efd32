"""Fixtures for interop tests: independent relying parties run against a live IdP."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from ..live import LiveIdp, free_port
from .apache import OIDC_MODULE, ApacheRp, Portal, apache_binary, make_root


@pytest.fixture
def apache_portals(live_idp: LiveIdp) -> Iterator[ApacheRp]:
    """Apache httpd + mod_auth_openidc serving portals A and B on two loopback ports,
    each a separately registered client of ``live_idp`` with back-channel logout."""
    # Missing software is a failure, not a skip: the interop issue must not pass silently.
    if apache_binary() is None or not OIDC_MODULE.exists():
        pytest.fail("apache2 / libapache2-mod-auth-openidc missing: run scripts/bootstrap --dev")
    portals = {}
    for name in ("A", "B"):
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        creds = live_idp.cli(
            "clients", "create", "--name", f"Portal {name}",
            "--redirect-uri", f"{base}/protected/redirect_uri",
            "--post-logout-redirect-uri", f"{base}/loggedout",
            "--backchannel-logout-uri", f"{base}/protected/redirect_uri?logout=backchannel",
        )
        assert isinstance(creds, dict)
        portals[name] = Portal(name, port, creds["client_id"], creds["client_secret"])
    rp = ApacheRp(root=make_root(), portals=portals)
    try:
        rp.start(live_idp.issuer + "/.well-known/openid-configuration")
        yield rp
    finally:
        rp.stop()
        shutil.rmtree(rp.root, ignore_errors=True)
