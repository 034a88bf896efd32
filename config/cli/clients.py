"""``flask clients ...``: register and manage relying parties (portals); every change
through the audited client operations (admin/clients.py) as ``admin:cli``."""

from __future__ import annotations

import json
from typing import Any

import click

from admin.cli import OperatorGroup
from admin.clients import ClientAdminService
from common.cli import transactional
from idp import protocol

from . import _admin, _cli_actor, _emit, _services

clients_cli = OperatorGroup("clients", help="Register and manage relying parties (portals).")


def _client_dict(row: Any) -> dict[str, Any]:
    return {
        "client_id": row.client_id,
        "name": row.name,
        "redirect_uris": row.redirect_uris,
        "post_logout_redirect_uris": row.post_logout_redirect_uris,
        "backchannel_logout_uri": row.backchannel_logout_uri,
        "frontchannel_logout_uri": row.frontchannel_logout_uri,
        "grant_types": row.grant_types,
        "scopes": row.scopes,
        "token_endpoint_auth_method": row.token_endpoint_auth_method,
        "subject_type": row.subject_type,
        "sector_identifier": row.sector_identifier,
        "claim_policy": row.claim_policy or {},
        "sensitive_claims_allowed": row.sensitive_claims_allowed,
        "first_party": row.first_party,
        "enabled": row.enabled,
        "created_at": row.created_at.isoformat(),
    }


def _client_admin() -> ClientAdminService:
    """The audited client operations (admin/clients.py), acting as ``admin:cli``; they drop
    this instance's client cache entry after each change (ClientCache policy)."""
    return _admin().clients


@clients_cli.command("create")
@click.option("--name", required=True, help="Display name shown on login and consent pages.")
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="Exact redirect URI (repeatable).")
@click.option("--post-logout-redirect-uri", "logout_uris", multiple=True, help="Exact post-logout redirect URI (repeatable).")
@click.option("--backchannel-logout-uri", default=None, help="OIDC Back-Channel Logout endpoint of the client.")
@click.option("--frontchannel-logout-uri", default=None, help="OIDC Front-Channel Logout URI of the client.")
@click.option("--grant-type", "grant_types", multiple=True,
              type=click.Choice(list(protocol.GRANT_TYPES)),
              help="Grant type (repeatable); default authorization_code + refresh_token.")
@click.option("--scope", "scopes", multiple=True, help="Allowed scope (repeatable); default openid, profile.")
@click.option("--token-endpoint-auth-method", default=None,
              type=click.Choice(list(protocol.AUTH_METHODS)))
@click.option("--subject-type", default="pairwise", type=click.Choice(["pairwise", "public"]))
@click.option("--sector-identifier-uri", default=None, help="Groups clients on several hosts into one pairwise sector.")
@click.option("--jwks-file", type=click.File("r"), default=None, help="Public JWK set for private_key_jwt.")
@click.option("--public", is_flag=True, help="Public client (no secret; PKCE only).")
@click.option("--claim", "claims", multiple=True, metavar="NAME=PURPOSE",
              help="A claim the client may receive, with its purpose (legal basis: consent). Repeatable. "
                   "Without any, the claims of its scopes are released.")
@click.option("--required-claim", "required_claims", multiple=True, metavar="NAME=PURPOSE",
              help="Like --claim, but the service cannot work without it: the citizen cannot untick it, "
                   "only refuse the whole request.")
@click.option("--statutory-claim", "statutory_claims", multiple=True, metavar="NAME=PURPOSE",
              help="Like --claim, with a statutory duty as the legal basis.")
@click.option("--allow-sensitive-claims", is_flag=True,
              help="Administrator's flag: the policy may list sensitive claims (id_number), each released only "
                   "with the citizen's separate confirmation at every release (PIPL Art. 28-29).")
@click.option("--first-party", is_flag=True,
              help="A first-party administration tool of this deployment: the only kind of client that may have "
                   "the admin scope (the admin API). Superadmins only (issue 17).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@transactional
def clients_create(name: str, redirect_uris: tuple[str, ...], logout_uris: tuple[str, ...],
                   backchannel_logout_uri: str | None, frontchannel_logout_uri: str | None,
                   grant_types: tuple[str, ...], scopes: tuple[str, ...], token_endpoint_auth_method: str | None,
                   subject_type: str, sector_identifier_uri: str | None, jwks_file: Any, public: bool,
                   claims: tuple[str, ...], required_claims: tuple[str, ...], statutory_claims: tuple[str, ...],
                   allow_sensitive_claims: bool, first_party: bool, as_json: bool) -> None:
    from common.errors import ValidationError

    # Issue 11 defect 6: the loop's names must not shadow a parameter (``claim``, not
    # ``name``, which renamed the client).
    policy: dict[str, dict[str, Any]] = {}
    for basis, required, items in (("consent", False, claims), ("consent", True, required_claims),
                                   ("statutory", False, statutory_claims)):
        for item in items:
            claim, sep, purpose = item.partition("=")
            if not sep:
                raise ValidationError(item, public_message=f"Write claims as NAME=PURPOSE: {item!r}.")
            policy[claim.strip()] = {"purpose": purpose.strip(), "basis": basis, "required": required}
    jwks = None
    if jwks_file is not None:
        try:
            jwks = json.load(jwks_file)
        except ValueError:
            from common.errors import ValidationError

            raise ValidationError("jwks", public_message="The JWKS file is not JSON.") from None
    # Through the audited operations, as the console and the API (actor admin:cli).
    row, secret = _client_admin().create(
        _cli_actor(),
        name=name,
        redirect_uris=list(redirect_uris),
        post_logout_redirect_uris=list(logout_uris),
        backchannel_logout_uri=backchannel_logout_uri,
        frontchannel_logout_uri=frontchannel_logout_uri,
        grant_types=list(grant_types) or None,
        scopes=list(scopes) or None,
        token_endpoint_auth_method=token_endpoint_auth_method,
        subject_type=subject_type,
        sector_identifier_uri=sector_identifier_uri,
        public=public,
        jwks=jwks,
        claim_policy=policy,
        sensitive_claims_allowed=allow_sensitive_claims,
        first_party=first_party,
    )
    out: dict[str, Any] = {"client_id": row.client_id}
    if secret:
        out["client_secret"] = secret
    text = f"client_id: {row.client_id}" + (f"\nclient_secret: {secret}  (shown once; store it now)" if secret else "")
    _emit(as_json, out, text)


@clients_cli.command("list")
@click.option("--json", "as_json", is_flag=True)
@transactional
def clients_list(as_json: bool) -> None:
    rows = _services().clients.list()
    _emit(as_json, [_client_dict(r) for r in rows], "\n".join(f"{r.client_id}  {r.name}" for r in rows) or "(no clients)")


@clients_cli.command("show")
@click.argument("client_id")
@click.option("--json", "as_json", is_flag=True)
@transactional
def clients_show(client_id: str, as_json: bool) -> None:
    data = _client_dict(_services().clients.get(client_id))
    _emit(as_json, data, "\n".join(f"{k}: {v}" for k, v in data.items()))


@clients_cli.command("delete")
@click.argument("client_id")
@click.option("--json", "as_json", is_flag=True)
@transactional
def clients_delete(client_id: str, as_json: bool) -> None:
    _client_admin().delete(_cli_actor(), client_id)
    _emit(as_json, {"deleted": client_id}, f"deleted {client_id}")


@clients_cli.command("rotate-secret")
@click.argument("client_id")
@click.option("--json", "as_json", is_flag=True)
@transactional
def clients_rotate_secret(client_id: str, as_json: bool) -> None:
    secret = _client_admin().rotate_secret(_cli_actor(), client_id)
    _emit(as_json, {"client_id": client_id, "client_secret": secret}, f"client_secret: {secret}  (shown once)")
