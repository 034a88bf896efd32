"""Operator commands (``flask --app wsgi ...``). Each command runs in one transaction:
bad input prints a clear message, exits non-zero and writes nothing."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app

from admin.actor import Actor
from admin.cli import OperatorGroup, admins_cli
from admin.clients import ClientAdminService
from admin.service import AdminServices
from common.cli import OperatorCommand, transactional
from common.db import db
from idp import protocol
from idp.provider import Services


def _services() -> Services:
    services: Services = current_app.extensions["yiwang.provider"].services(db.session)
    return services


def _emit(as_json: bool, data: dict[str, Any] | list[Any], text: str) -> None:
    click.echo(json.dumps(data, ensure_ascii=False) if as_json else text)


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


clients_cli = OperatorGroup("clients", help="Register and manage relying parties (portals).")


def _cli_actor() -> Actor:
    return Actor.cli()


def _admin() -> AdminServices:
    """The audited admin operations (admin/service.py), as the console and the API use
    them: every command that changes state goes through them acting as ``_cli_actor()``,
    so the change is checked and recorded once, as ``admin:cli`` (issue 11 defect 2)."""
    return AdminServices(_services())


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


users_cli = OperatorGroup("users", help="Create and manage accounts.")


def _read_password(value: str | None) -> str:
    """The password of ``users create``: ``-`` reads the first line of stdin; none given
    prompts (hidden, twice) when stdin is a terminal. A value on the command line stays in
    the shell history and shows in the process list, so the help steers away from it."""
    if value == "-":
        return sys.stdin.readline().rstrip("\r\n")
    if value is not None:
        return value
    if not sys.stdin.isatty():
        raise click.UsageError("No password: pass --password - and write it to stdin, or run in a terminal "
                               "to be prompted.")
    password: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@users_cli.command("create")
@click.option("--username", default=None)
@click.option("--password", default=None, metavar="PASSWORD|-",
              help="At least 8 characters, not a common password. Prefer '--password -' (reads the first line "
                   "of stdin) or leave it out to be prompted (hidden) in a terminal: a password written on the "
                   "command line stays in the shell history and shows in the process list.")
@click.option("--name", default=None, help="Display name (stored encrypted).")
@click.option("--phone", default=None, help="Mainland mobile number (stored encrypted, found by blind index).")
@click.option("--json", "as_json", is_flag=True)
@transactional
def users_create(username: str | None, password: str | None, name: str | None, phone: str | None,
                 as_json: bool) -> None:
    """Create a person account with a password (audited as admin:cli)."""
    # Read (or prompt) before any database work: no transaction waits on the operator's typing.
    secret = _read_password(password)
    account = _admin().accounts.create(_cli_actor(), username=username, password=secret, name=name, phone=phone)
    _emit(as_json, {"id": account.id, "username": account.username}, f"created account {account.id} ({account.username or 'phone login'})")


def _account_dict(a: Any) -> dict[str, Any]:
    return {"id": a.id, "username": a.username, "kind": a.kind, "status": a.status,
            "has_phone": a.phone_index is not None, "created_at": a.created_at.isoformat()}


@users_cli.command("list")
@click.option("--offset", default=0, type=click.IntRange(0))
@click.option("--limit", default=100, type=click.IntRange(1, 10000))
@click.option("--json", "as_json", is_flag=True)
@transactional
def users_list(offset: int, limit: int, as_json: bool) -> None:
    rows = _services().accounts.list(offset=offset, limit=limit)
    _emit(as_json, [_account_dict(a) for a in rows],
          "\n".join(f"{a.id}  {a.username or '-'}  {a.status}" for a in rows) or "(no accounts)")


@users_cli.command("lock")
@click.argument("identifier")
@click.option("--json", "as_json", is_flag=True)
@transactional
def users_lock(identifier: str, as_json: bool) -> None:
    """Lock an account (username): logins and token refreshes stop, its SSO sessions end
    and the portals get back-channel logout tokens (OIDC Back-Channel Logout 1.0 §2.7)."""
    admin = _admin()
    account = admin.services.accounts.get_by_username(identifier)
    result = admin.accounts.lock(_cli_actor(), account.id)
    # The logout tokens go out only once the lock is committed (as for a citizen's logout);
    # failed deliveries stay recorded for `flask logout deliver`.
    db.session.commit()
    delivered = admin.sessions.deliver(result.ended)
    data = {**_account_dict(account), "sessions_ended": len(result.ended), "logouts_delivered": delivered}
    _emit(as_json, data, f"{account.username or account.id}: locked, {len(result.ended)} session(s) ended")


@users_cli.command("unlock")
@click.argument("identifier")
@click.option("--json", "as_json", is_flag=True)
@transactional
def users_unlock(identifier: str, as_json: bool) -> None:
    """Make a locked account (username or phone) active again."""
    admin = _admin()
    account = admin.services.accounts.get_by_username(identifier)
    admin.accounts.unlock(_cli_actor(), account.id)
    _emit(as_json, _account_dict(account), f"{account.username or account.id}: {account.status}")


keys_cli = OperatorGroup("keys", help="Token signing keys.")


def _key_dict(k: Any) -> dict[str, Any]:
    return {"kid": k.kid, "alg": k.alg, "state": k.state, "created_at": k.created_at.isoformat(),
            "activated_at": k.activated_at.isoformat() if k.activated_at else None,
            "unpublish_after": k.unpublish_after.isoformat() if k.unpublish_after else None}


@keys_cli.command("list")
@click.option("--json", "as_json", is_flag=True)
@transactional
def keys_list(as_json: bool) -> None:
    rows = _services().keys.all()
    _emit(as_json, [_key_dict(k) for k in rows], "\n".join(f"{k.kid}  {k.alg}  {k.state}" for k in rows) or "(no keys)")


@keys_cli.command("ensure")
@click.option("--json", "as_json", is_flag=True)
@transactional
def keys_ensure(as_json: bool) -> None:
    """Create missing active/next keys (idempotent; run after `db upgrade`)."""
    created = _admin().keys.ensure(_cli_actor())
    _emit(as_json, {"created": created}, "keys created" if created else "keys present")


@keys_cli.command("rotate")
@click.option("--alg", type=click.Choice(["ES256", "RS256"]), default=None, help="Only this algorithm.")
@click.option("--if-due", is_flag=True, help="Only keys older than YIWANG_KEY_ROTATION_DAYS (for cron).")
@click.option("--json", "as_json", is_flag=True)
@transactional
def keys_rotate(alg: str | None, if_due: bool, as_json: bool) -> None:
    admin = _admin()
    if if_due:
        rows = admin.keys.rotate_if_due(_cli_actor(), admin.services.p.settings.key_rotation_days)
    else:
        rows = admin.keys.rotate(_cli_actor(), alg)
    _emit(as_json, [_key_dict(k) for k in rows], "\n".join(f"now active: {k.kid} ({k.alg})" for k in rows) or "nothing due")


logout_cli = OperatorGroup("logout", help="Logout notifications.")


@logout_cli.command("deliver")
@click.option("--json", "as_json", is_flag=True)
@transactional
def logout_deliver(as_json: bool) -> None:
    """Retry back-channel logout deliveries that are due (run from cron or a timer)."""
    delivered, attempted = _services().logout.deliver_due()
    _emit(as_json, {"delivered": delivered, "attempted": attempted}, f"delivered {delivered} of {attempted}")


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


realname_cli = OperatorGroup("realname", help="Real-name registry and verification data.")


@realname_cli.command("import-registry")
@click.argument("csv_file", type=click.File("r", encoding="utf-8-sig"))
@click.option("--json", "as_json", is_flag=True)
@transactional
def realname_import_registry(csv_file: Any, as_json: bool) -> None:
    """Load the local authoritative registry from CSV (name,id_number[,phone][,status]).
    Invalid rows are reported by line and skipped; re-imports update (idempotent)."""
    report = _admin().realname.import_csv(_cli_actor(), csv_file)
    data = {"imported": report.imported, "updated": report.updated, "rejected": report.rejected,
            "rejected_lines": [{"line": n, "reason": r} for n, r in report.rejected_lines]}
    text = f"imported {report.imported}, updated {report.updated}, rejected {report.rejected}" + "".join(
        f"\n  line {n}: {r}" for n, r in report.rejected_lines)
    _emit(as_json, data, text)


@realname_cli.command("generate-registry")
@click.option("--count", type=click.IntRange(1, 50_000_000), required=True)
@click.option("--out", "out", type=click.File("w", encoding="utf-8"), required=True)
@click.option("--seed", type=int, default=2026, help="Same seed, same records.")
@click.option("--json", "as_json", is_flag=True)
def realname_generate_registry(count: int, out: Any, seed: int, as_json: bool) -> None:
    """Write synthetic (invented, valid-looking) registry records as CSV for demos and
    benchmarks."""
    from datetime import date

    from realname.importer import synthetic_rows, write_csv

    n = write_csv(synthetic_rows(count, seed=seed, today=date.today()), out)  # noqa: DTZ011 - a calendar date
    _emit(as_json, {"written": n}, f"wrote {n} synthetic records")


@realname_cli.command("rotate-keys")
@click.option("--batch", type=click.IntRange(1, 100_000), default=1000, help="Rows per transaction.")
@click.option("--json", "as_json", is_flag=True)
def realname_rotate_keys(batch: int, as_json: bool) -> None:
    """Re-encrypt personal data (identities, TOTP secrets, account names and phones) and
    signing keys under the first key of YIWANG_DATA_KEYS, in short transactions, while
    the service runs. Put the new key first, keep the old one listed until this reports
    0 left, then remove the old key."""
    realname = _admin().realname
    total = 0
    try:
        # One short transaction per batch: the command commits what each step did.
        for changed in realname.rotate_data_keys(_cli_actor(), batch=batch):
            db.session.commit()
            total += changed
    except BaseException:
        db.session.rollback()
        raise
    _emit(as_json, {"reencrypted": total, "active_key": realname.active_key},
          f"re-encrypted {total} rows under key {realname.active_key}")


certificates_cli = OperatorGroup("certificates", help="Legal-person certificates: CA trust registry, CRLs, mapping.")
ca_cli = OperatorGroup("ca", help="Registered certificate authorities.")
crl_cli = OperatorGroup("crl", help="Certificate revocation lists.")
certificates_cli.add_command(ca_cli)
certificates_cli.add_command(crl_cli)


def _ca_service() -> Any:
    """The CA registry for reading (list, map); changes go through ``_admin().cas``."""
    return _services().cas


def _ca_dict(row: Any) -> dict[str, Any]:
    from cryptography import x509

    from certificates.signatures import describe_key, describe_signature

    certs = x509.load_pem_x509_certificates(row.pem_bundle.encode("utf-8"))
    return {
        "id": row.id, "name": row.name, "province": row.province, "enabled": row.enabled,
        "roots": [c.subject.rfc4514_string() for c in certs if c.subject == c.issuer],
        "intermediates": [c.subject.rfc4514_string() for c in certs if c.subject != c.issuer],
        "algorithms": [{"subject": c.subject.rfc4514_string(), "key": describe_key(c),
                        "signature": describe_signature(c.signature_algorithm_oid)} for c in certs],
        "crl_urls": row.crl_urls, "ocsp_url": row.ocsp_url,
        "crl_number": row.crl_number,
        "crl_this_update": row.crl_this_update.isoformat() if row.crl_this_update else None,
        "crl_next_update": row.crl_next_update.isoformat() if row.crl_next_update else None,
        "profile": row.profile,
    }


def _read_profile(profile_file: Any) -> Any:
    from certificates.registry import parse_profile

    try:
        text = profile_file.read()
    except UnicodeDecodeError:
        from certificates.errors import InvalidProfileError

        raise InvalidProfileError("not utf-8", public_message="The profile file is not UTF-8 JSON.") from None
    return parse_profile(text)


@ca_cli.command("add")
@click.option("--name", required=True, help="Display name of the CA.")
@click.option("--province", required=True, help="Province or region the CA serves.")
@click.option("--pem", "pem_file", type=click.File("rb"), required=True,
              help="PEM bundle: root(s) and intermediate CA certificates.")
@click.option("--profile", "profile_file", type=click.File("r", encoding="utf-8"), default=None,
              help="Mapping profile (JSON); default: the GM/T 0015 placements.")
@click.option("--crl-url", "crl_urls", multiple=True, help="CRL distribution URL (repeatable).")
@click.option("--ocsp-url", default=None, help="OCSP responder URL.")
@click.option("--sm2-signer-id", default=None,
              help="SM2 signer ID of the CA's signatures if not the GM/T 0009 default 1234567812345678 "
                   "(sets the profile's sm2_signer_id).")
@click.option("--json", "as_json", is_flag=True)
@transactional
def ca_add(name: str, province: str, pem_file: Any, profile_file: Any, crl_urls: tuple[str, ...],
           ocsp_url: str | None, sm2_signer_id: str | None, as_json: bool) -> None:
    """Register a CA (every CA is treated alike; only its mapping profile differs). RSA,
    ECDSA and SM2 (SM2-with-SM3) certificates, in any mix."""
    profile = _read_profile(profile_file) if profile_file is not None else None
    if sm2_signer_id is not None:
        from certificates.mapping import DEFAULT_PROFILE
        from certificates.registry import parse_profile

        base = profile or DEFAULT_PROFILE
        profile = parse_profile({**json.loads(base.to_json()), "sm2_signer_id": sm2_signer_id})
    row = _admin().cas.add(_cli_actor(), name=name, province=province, pem_bundle=pem_file.read(), profile=profile,
                           crl_urls=list(crl_urls), ocsp_url=ocsp_url).row
    data = _ca_dict(row)
    _emit(as_json, data, f"registered CA {row.id} ({row.name}, {row.province}): "
                         f"{len(data['roots'])} root(s), {len(data['intermediates'])} intermediate(s)")


@ca_cli.command("list")
@click.option("--json", "as_json", is_flag=True)
@transactional
def ca_list(as_json: bool) -> None:
    rows = _ca_service().all()
    _emit(as_json, [_ca_dict(r) for r in rows],
          "\n".join(f"{r.id}  {r.name}  {r.province}  {'enabled' if r.enabled else 'disabled'}"
                    f"  CRL {r.crl_number or '-'} until {r.crl_next_update.isoformat() if r.crl_next_update else '-'}"
                    for r in rows) or "(no CAs)")


def _set_ca_enabled(ca_id: int, enabled: bool, as_json: bool) -> None:
    row = _admin().cas.set_enabled(_cli_actor(), ca_id, enabled).row
    _emit(as_json, {"id": row.id, "enabled": row.enabled}, f"CA {row.id} ({row.name}): {'enabled' if enabled else 'disabled'}")


@ca_cli.command("disable")
@click.argument("ca_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@transactional
def ca_disable(ca_id: int, as_json: bool) -> None:
    """Stop trusting a CA (its certificates are refused with CA_DISABLED)."""
    _set_ca_enabled(ca_id, False, as_json)


@ca_cli.command("enable")
@click.argument("ca_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@transactional
def ca_enable(ca_id: int, as_json: bool) -> None:
    _set_ca_enabled(ca_id, True, as_json)


@crl_cli.command("load")
@click.option("--ca", "ca_id", type=int, required=True, help="CA id (see `certificates ca list`).")
@click.argument("crl_file", type=click.File("rb"))
@click.option("--json", "as_json", is_flag=True)
@transactional
def crl_load(ca_id: int, crl_file: Any, as_json: bool) -> None:
    """Load a CRL (DER or PEM) for a CA: it must be signed by that CA and not older than
    the CRL it replaces."""
    from certificates.errors import InvalidCrlError
    from certificates.registry import MAX_CRL_BYTES

    data = crl_file.read(MAX_CRL_BYTES + 1)
    if len(data) > MAX_CRL_BYTES:
        raise InvalidCrlError("too large", public_message="The CRL is larger than 64 MiB.")
    state = _admin().cas.load_crl(_cli_actor(), ca_id, data)
    out = {"ca_id": state.ca_id, "issuer": state.issuer, "crl_number": state.crl_number,
           "this_update": state.this_update.isoformat(),
           "next_update": state.next_update.isoformat() if state.next_update else None, "entries": state.entries}
    _emit(as_json, out, f"CA {state.ca_id}: CRL {state.crl_number} with {state.entries} entries, "
                        f"next update {out['next_update'] or '-'}")


@certificates_cli.command("map")
@click.argument("cert_file", type=click.File("rb"))
@click.option("--ca", "ca_id", type=int, default=None, help="Only this CA's profile (default: every enabled CA).")
@click.option("--profile", "profile_file", type=click.File("r", encoding="utf-8"), default=None,
              help="Try an unsaved profile (JSON) instead of the registered ones.")
@click.option("--json", "as_json", is_flag=True)
@transactional
def certificates_map(cert_file: Any, ca_id: int | None, profile_file: Any, as_json: bool) -> None:
    """Print what a certificate maps to under each profile, and why (the trail). This
    reads the certificate only; it does not validate it."""
    from certificates.registry import try_profile

    sample = cert_file.read()
    results: list[tuple[int | None, str, bool | None, Any]] = []
    if profile_file is not None:
        results.append((None, f"profile {profile_file.name}", None, try_profile(_read_profile(profile_file), sample)))
    else:
        for ca, mapping, issuer_match in _ca_service().map_sample(sample, ca_id=ca_id):
            results.append((ca.ca_id, ca.name, issuer_match, mapping))
    data = [
        {"ca_id": cid, "ca_name": label, "issuer_match": match,
         "identifier": ({"kind": m.identifier.kind, "value": m.identifier.value} if m.identifier else None),
         "name": m.name, "reason": m.reason, "trail": m.trail}
        for cid, label, match, m in results
    ]
    lines = []
    for item in data:
        found = item["identifier"]
        head = f"{item['ca_name']}" + ("" if item["issuer_match"] is None else
                                       " (issuer matches)" if item["issuer_match"] else " (other issuer)")
        lines.append(f"{head}: " + (f"{found['kind']} {found['value']}" if found else str(item["reason"]))
                     + (f", name {item['name']}" if item["name"] else ""))
        lines.extend(f"  {step}" for step in item["trail"])
    _emit(as_json, data, "\n".join(lines) or "(no enabled CA to map with)")


@crl_cli.command("refresh")
@click.option("--json", "as_json", is_flag=True)
def crl_refresh(as_json: bool) -> None:
    """Fetch and store the CRL of every enabled CA that has CRL URLs (run from cron, e.g.
    hourly). Each CA commits on its own; a CA whose fetch fails keeps its last CRL and is
    reported (validation then refetches or fails closed when that CRL goes stale)."""
    from certificates.errors import InvalidCrlError
    from certificates.revocation import CrlError
    from common.http import FetchError

    admin = _admin()
    svc = admin.services
    validator = svc.p.validator()
    report: list[dict[str, Any]] = []
    for ca in svc.cas.trusted():
        if not ca.crl_urls:
            continue
        try:
            der, _ = validator.revocation.refresh(ca, production=svc.p.settings.production)
            state = admin.cas.load_crl(_cli_actor(), ca.ca_id, der)
            db.session.commit()
            report.append({"ca_id": ca.ca_id, "ok": True, "crl_number": state.crl_number, "entries": state.entries})
        except (FetchError, CrlError, InvalidCrlError) as exc:
            db.session.rollback()
            report.append({"ca_id": ca.ca_id, "ok": False, "error": str(exc)[:200]})
    _emit(as_json, report, "\n".join(
        f"CA {r['ca_id']}: " + (f"CRL {r['crl_number']} ({r['entries']} entries)" if r["ok"] else f"failed: {r['error']}")
        for r in report) or "(no CA with CRL URLs)")
    if any(not r["ok"] for r in report):
        sys.exit(1)


legal_cli = OperatorGroup("legal-person", help="Legal persons (created on first certificate login, or here).")
mandate_cli = OperatorGroup("mandate", help="Agents (经办人) acting for legal persons.")
certificates_cli.add_command(legal_cli)
certificates_cli.add_command(mandate_cli)


@legal_cli.command("create")
@click.option("--uscc", required=True, help="Unified Social Credit Code (GB 32100-2015).")
@click.option("--name", required=True)
@click.option("--reg-no", default=None, help="15-digit business registration number (alias).")
@click.option("--by", "admin", required=True, help="Administrator name (recorded).")
@click.option("--json", "as_json", is_flag=True)
@transactional
def legal_create(uscc: str, name: str, reg_no: str | None, admin: str, as_json: bool) -> None:
    person = _admin().legal.create(_cli_actor(), uscc=uscc, name=name, reg_no=reg_no, by=admin)
    _emit(as_json, {"id": person.id, "uscc": person.uscc, "name": person.name}, f"legal person {person.id}: {person.uscc}")


@mandate_cli.command("grant")
@click.option("--agent", required=True, help="The agent's username or phone.")
@click.option("--uscc", required=True)
@click.option("--scope", "scopes", multiple=True, required=True, help="What the agent may do (repeatable).")
@click.option("--days", type=click.IntRange(1, 1095), default=365, help="Validity from now, days.")
@click.option("--by", "admin", required=True, help="Administrator name (recorded).")
@click.option("--json", "as_json", is_flag=True)
@transactional
def mandate_grant(agent: str, uscc: str, scopes: tuple[str, ...], days: int, admin: str, as_json: bool) -> None:
    from datetime import timedelta

    from certificates.errors import LegalPersonNotFoundError

    operations = _admin()
    svc = operations.services
    account = svc.accounts.get_by_username(agent)
    person = svc.legal.find_by_uscc(uscc.strip().upper())
    if person is None:
        raise LegalPersonNotFoundError(uscc)
    row = operations.legal.grant_mandate(_cli_actor(), legal_person_id=person.id, agent_account_id=account.id,
                                         scope=list(scopes), valid_until=svc.p.clock.now() + timedelta(days=days),
                                         by=admin).row
    _emit(as_json, {"mandate_id": row.id, "valid_until": row.valid_until.isoformat()},
          f"mandate {row.id}: {agent} may act for {person.uscc} until {row.valid_until:%Y-%m-%d}")


@mandate_cli.command("revoke")
@click.argument("mandate_id", type=int)
@click.option("--by", "admin", required=True)
@click.option("--json", "as_json", is_flag=True)
@transactional
def mandate_revoke(mandate_id: int, admin: str, as_json: bool) -> None:
    row = _admin().legal.revoke_mandate_by_id(_cli_actor(), mandate_id, by=admin).row
    _emit(as_json, {"mandate_id": row.id, "revoked": True}, f"mandate {row.id} revoked")


@mandate_cli.command("list")
@click.option("--uscc", required=True)
@click.option("--json", "as_json", is_flag=True)
@transactional
def mandate_list(uscc: str, as_json: bool) -> None:
    from certificates.errors import LegalPersonNotFoundError

    svc = _services()
    person = svc.legal.find_by_uscc(uscc.strip().upper())
    if person is None:
        raise LegalPersonNotFoundError(uscc)
    rows = svc.legal.mandates_of(person.id)
    data: list[dict[str, Any]] = [{"mandate_id": m.id, "agent_account_id": m.agent_account_id, "scope": m.scope,
             "valid_until": m.valid_until.isoformat(), "revoked": m.revoked_at is not None} for m in rows]
    _emit(as_json, data, "\n".join(f"{d['mandate_id']}  agent {d['agent_account_id']}  {','.join(d['scope'])}  "
                                   f"until {d['valid_until'][:10]}{'  revoked' if d['revoked'] else ''}"
                                   for d in data) or "(no mandates)")


# -- subjects: audited re-identification (issue 5) -------------------------------------

subjects_cli = OperatorGroup("subjects", help="Subject identifiers: audited re-identification for lawful requests.")


@transactional
def _reidentify(client_id: str, sub: str, reason: str, requested_by: str) -> tuple[Any, str]:
    from idp.reidentification import LawfulRequest

    resolver = _services().reidentification
    lawful = LawfulRequest.parse(reason, requested_by)
    return resolver.resolve(client_id, sub, request=lawful, actor="admin:cli"), resolver.reason_hash(lawful)


@subjects_cli.command("resolve")
@click.option("--client-id", required=True, help="The portal that received the sub.")
@click.option("--sub", required=True, help="The sub the portal holds (pairwise or public).")
@click.option("--reason", required=True, help="Why (10-500 characters); audited as a keyed hash and length.")
@click.option("--requested-by", required=True, help="Requesting authority and case reference, e.g. AUTHORITY/REF.")
@click.option("--json", "as_json", is_flag=True)
def subjects_resolve(client_id: str, sub: str, reason: str, requested_by: str, as_json: bool) -> None:
    """Map a portal's sub back to the account, for a lawful request only. Every call, match
    or not, is recorded in the audit trail (subject.reidentify, actor admin:cli). Prints
    identifiers and assurance level, never the name, ID number or phone number; exits 1
    when no account has this sub at this client."""
    found, reason_hash = _reidentify(client_id, sub, reason, requested_by)
    if found is None:
        click.echo(f"no account has this sub at client {client_id} (the attempt was audited)", err=True)
        sys.exit(1)
    data = {**found.as_dict(), "reason_hash": reason_hash}
    _emit(as_json, data,
          f"account {found.account_id}  kind {found.kind}  username {found.username or '-'}  "
          f"realname_level {found.realname_level or '-'}  status {found.status}\n"
          f"disclosed to {', '.join(found.disclosed_to)} between {found.first_disclosed_at.isoformat()} and "
          f"{found.last_disclosed_at.isoformat()}\n"
          f"audited; reason recorded as keyed hash {reason_hash}")


def register_cli(app: Flask) -> None:
    for group in (clients_cli, users_cli, keys_cli, logout_cli, realname_cli, certificates_cli):
        app.cli.add_command(group)
    app.cli.add_command(subjects_cli)
    app.cli.add_command(audit_cli)
    app.cli.add_command(demo)
    app.cli.add_command(admins_cli)


# -- audit trail (DESIGN.md §7, issue 6) ------------------------------------------------

audit_cli = OperatorGroup("audit", help="The tamper-evident audit trail: verify, checkpoint (and archive), prune, export, alerts.")


def _checkpoint_verifier(svc: Services) -> Callable[[str], Any]:
    """Verified claims of a checkpoint JWS, or None (``admin.audit.checkpoint_verifier``,
    shared with the console's and API's on-demand verification)."""
    from admin.audit import checkpoint_verifier

    return checkpoint_verifier(svc.keys, svc.p.settings.issuer)


class _Moment(click.ParamType):
    """An ISO 8601 date or date-time; without an offset it is taken as UTC."""

    name = "DATE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 date or date-time (e.g. 2026-01-31 or 2026-01-31T08:00+08:00)",
                      param, ctx)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


_DATE = _Moment()


def _read_archives(paths: tuple[str, ...]) -> list[str]:
    from common.audit import read_checkpoint_archive

    jws: list[str] = []
    for path in paths:
        try:
            jws.extend(read_checkpoint_archive(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise click.UsageError(f"checkpoint archive {path}: {exc}") from exc
    return jws


@audit_cli.command("verify")
@click.option("--checkpoint", "archives", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Archived checkpoint file (one JWS per line, from `audit checkpoint --out`) kept outside the "
              "database, e.g. on WORM storage; repeatable. Detects a truncated tail even when the database "
              "checkpoints were deleted too.")
@click.option("--record", is_flag=True, help="Record the result as an `audit.verify` event (console status, metrics).")
@click.option("--json", "as_json", is_flag=True)
def audit_verify(archives: tuple[str, ...], record: bool, as_json: bool) -> None:
    """Walk every chain, recomputing hashes; check heads, retention anchors, signed
    checkpoints and archived ones. Exits 1 and names the first broken link of each chain
    when the trail was tampered with."""
    from common.audit import describe, verify_trail

    archived = _read_archives(archives)
    try:
        report = verify_trail(db.session, checkpoint_claims=_checkpoint_verifier(_services()),  # type: ignore[arg-type]
                              archived=archived)
    finally:
        db.session.rollback()
    lines = [f"audit trail {'OK' if report.ok else 'BROKEN'}: {report.events} events in {report.chains} chains, "
             f"{report.checkpoints} checkpoints, {report.archived_checkpoints} archived checkpoints, "
             f"{report.anchored_chains} pruned chains"]
    for b in sorted(report.broken, key=lambda b: (b.chain, b.seq)):
        if b.chain >= 0:
            where = f"chain {b.chain} seq {b.seq}"
        else:
            where = f"archive line {b.archive_line}" if b.archive_line else f"checkpoint {b.checkpoint_id}"
        lines.append(f"  {where}: {b.problem} ({describe(b.problem)})")
    if record:
        first = report.first_broken
        _services().audit.record("audit.verify", actor="system", outcome="ok" if report.ok else "error",
                                 reason=first.problem if first else None,
                                 details={"events": report.events, "broken_chains": len(report.broken),
                                          "archived_checkpoints": report.archived_checkpoints})
        db.session.commit()
    _emit(as_json, report.as_dict(), "\n".join(lines))
    if not report.ok:
        sys.exit(1)


@audit_cli.command("checkpoint")
@click.option("--out", "out", type=click.Path(dir_okay=False),
              help="Also append the signed checkpoint (one JWS line) to this archive file: keep it outside the "
              "database (WORM storage, another host) for `audit verify --checkpoint`.")
@click.option("--json", "as_json", is_flag=True)
@transactional
def audit_checkpoint(out: str | None, as_json: bool) -> None:
    """Sign every chain head with the active signing key and store the checkpoint (run
    from cron). Keep the JWS outside the database too (``--out``): a checkpoint the
    attacker cannot delete is what makes a consistent rewrite detectable."""
    from common.audit import CHECKPOINT_TYP, write_checkpoint

    svc = _services()
    issuer = svc.p.settings.issuer
    row = write_checkpoint(db.session, clock=svc.p.clock,  # type: ignore[arg-type]
                           sign=lambda claims: svc.tokens.sign_jwt({"typ": CHECKPOINT_TYP}, {"iss": issuer, **claims}))
    svc.audit.record("audit.checkpoint", actor="system", details={"checkpoint_id": row.id, "archived": bool(out)})
    if out:
        # Append-only and synced before the command commits: the archive never misses a
        # checkpoint the database has.
        with open(out, "a", encoding="utf-8") as fh:
            fh.write(row.jws + "\n")
            fh.flush()
            os.fsync(fh.fileno())
    _emit(as_json, {"checkpoint_id": row.id, "at": row.at.isoformat(), "jws": row.jws},
          f"checkpoint {row.id} at {row.at.isoformat()}\n{row.jws}")


@audit_cli.command("prune")
@click.option("--before", type=_DATE, default=None,
              help="Prune events up to the newest signed checkpoint taken at or before this date (ISO 8601, UTC "
              "unless an offset is given). Default: now minus YIWANG_AUDIT_RETENTION_DAYS.")
@click.option("--json", "as_json", is_flag=True)
@transactional
def audit_prune(before: datetime | None, as_json: bool) -> None:
    """Retention: delete whole chain prefixes up to a signed checkpoint, which stays as
    each chain's anchor so `audit verify` still proves what is kept. Refuses when the
    trail does not verify, or when ``--before`` would cut events still within
    YIWANG_AUDIT_RETENTION_DAYS; with retention 0 (keep forever) only an explicit
    ``--before`` prunes. The prune is itself an audit event (``audit.prune``, actor
    ``admin:cli``)."""
    admin = _admin()
    svc = admin.services
    days = current_app.config["YIWANG_SETTINGS"].audit_retention_days
    now = svc.p.clock.now()
    if before is None:
        if days == 0:
            raise click.UsageError("YIWANG_AUDIT_RETENTION_DAYS is 0 (keep forever): pass --before to prune anyway")
        before = now - timedelta(days=days)
    elif days and before > now - timedelta(days=days):
        raise click.UsageError(f"--before would prune events younger than the {days}-day retention")
    result = admin.audit.prune(_cli_actor(), before=before)
    data = {"before": before.isoformat(), "checkpoint_id": result.checkpoint_id,
            "checkpoint_at": result.checkpoint_at.isoformat() if result.checkpoint_at else None,
            "events": result.events, "chains": result.chains}
    text = (f"pruned {result.events} events from {len(result.chains)} chains up to checkpoint {result.checkpoint_id} "
            f"({data['checkpoint_at']})" if result.checkpoint_id is not None
            else f"nothing to prune: no signed checkpoint at or before {before.isoformat()}")
    _emit(as_json, data, text)


def _audit_admin(svc: Services) -> Any:
    from admin.audit import AuditAdminService

    settings = current_app.config["YIWANG_SETTINGS"]
    return AuditAdminService(db.session, clock=svc.p.clock, thresholds=settings.alert_thresholds())  # type: ignore[arg-type]


@audit_cli.command("export")
@click.option("--since", type=_DATE, default=None, help="First moment included (ISO 8601).")
@click.option("--until", type=_DATE, default=None, help="End, excluded (ISO 8601).")
@click.option("--action", default=None, help="Action prefix, e.g. `login.`.")
@click.option("--actor", default=None, help="Exact actor, e.g. `admin:3`.")
@click.option("--client-id", default=None)
@click.option("--outcome", type=click.Choice(["ok", "denied", "error"]), default=None)
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="JSON-lines file to write (`-` for stdout).")
@transactional
def audit_export(since: datetime | None, until: datetime | None, action: str | None, actor: str | None,
                 client_id: str | None, outcome: str | None, out: str) -> None:
    """Export events (oldest first) as JSON lines, with chain, seq and hashes so they can
    be checked against the chain later. The export is itself an audit event."""
    from admin.audit import AuditQuery

    svc = _services()
    query = AuditQuery(since=since, until=until, action=action, actor=actor, client_id=client_id, outcome=outcome)
    count = 0
    with click.open_file(out, "w", encoding="utf-8") as fh:
        for line in _audit_admin(svc).export(query):
            fh.write(line)
            count += 1
    svc.audit.record("audit.export", actor="system",
                     details={"since": since.isoformat() if since else None,
                              "until": until.isoformat() if until else None, "events": count})
    if out != "-":
        click.echo(f"exported {count} events to {out}")


@audit_cli.command("alerts")
@click.option("--json", "as_json", is_flag=True)
def audit_alerts(as_json: bool) -> None:
    """Active alerts: failed-login bursts per account and per IP hash, verification volume
    per client, certificates rejected for revocation, failing back-channel logouts."""
    try:
        alerts = _audit_admin(_services()).alerts()
    finally:
        db.session.rollback()
    _emit(as_json, [a.as_dict() for a in alerts],
          "\n".join(f"{a.kind}  {a.key}  {a.count} >= {a.threshold} in {a.window_seconds}s"
                    f"{'  ' + a.reason if a.reason else ''}" for a in alerts) or "(no alerts)")


@audit_cli.command("status")
@click.option("--json", "as_json", is_flag=True)
def audit_status(as_json: bool) -> None:
    """Chains, events kept, last checkpoint, last prune, last recorded verification."""
    try:
        status = _audit_admin(_services()).status()
    finally:
        db.session.rollback()
    data = status.as_dict()
    _emit(as_json, data, "\n".join(f"{k}: {v}" for k, v in data.items()))
