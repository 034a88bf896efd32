"""``flask demo``: a demo client, user and registry entries for development."""

from __future__ import annotations

import click

from common.cli import OperatorCommand, transactional

from . import _admin, _cli_actor, _emit

DEMO_USER = "demo"
DEMO_PASSWORD = "yiwang-demo-2026"  # noqa: S105 - documented demo account, development only
DEMO_REDIRECT = "http://127.0.0.1:8080/callback"
DEMO_IDENTITIES = (("张三", "11010519491231002X", "13800138000"), ("李四", "440524188001010014", None))


@click.command("demo", cls=OperatorCommand)
@click.option("--json", "as_json", is_flag=True)
@transactional
def demo(as_json: bool) -> None:
    """Create (or refresh) a demo client and a demo user. Development only."""
    from common.errors import ValidationError
    from idp.models import Client

    admin, actor = _admin(), _cli_actor()
    svc = admin.services
    if svc.p.settings.production:
        raise ValidationError("demo in production", public_message="The demo data is for development only.")
    if svc.accounts.find_by_identifier(DEMO_USER) is None:
        admin.accounts.create(actor, username=DEMO_USER, password=DEMO_PASSWORD, name="演示用户", phone="13900000000")
    existing = [c for c in svc.clients.list() if c.name == "Demo Portal"]
    if existing:
        client: Client = existing[0]
        secret = admin.clients.rotate_secret(actor, client.client_id)
    else:
        client, created_secret = admin.clients.create(
            actor,
            name="Demo Portal",
            redirect_uris=[DEMO_REDIRECT],
            post_logout_redirect_uris=["http://127.0.0.1:8080/"],
            scopes=["openid", "profile", "phone", "offline_access"],
        )
        secret = created_secret or ""
    # Two registry entries (GB 11643-1999's own example numbers), so registration at
    # /register can be tried: the first with a carrier-registered phone (reaches cn-l2).
    from realname.importer import RegistryRow

    admin.realname.import_rows(actor, [RegistryRow(*identity) for identity in DEMO_IDENTITIES])
    issuer = svc.p.settings.issuer
    data = {"issuer": issuer, "client_id": client.client_id, "client_secret": secret,
            "redirect_uri": DEMO_REDIRECT, "username": DEMO_USER, "password": DEMO_PASSWORD,
            "registry_samples": [list(x) for x in DEMO_IDENTITIES]}
    text = (
        "Demo data ready\n"
        f"  issuer        {issuer}  (discovery: {issuer}/.well-known/openid-configuration)\n"
        f"  client_id     {client.client_id}\n"
        f"  client_secret {secret}\n"
        f"  redirect_uri  {DEMO_REDIRECT}\n"
        f"  user          {DEMO_USER} / {DEMO_PASSWORD}\n"
        f"  register at   {issuer}/register with 张三 / 11010519491231002X / 13800138000 (SMS code in this log)"
    )
    _emit(as_json, data, text)
