"""``flask certificates ...``: the CA trust registry (``ca``), CRLs (``crl``, RFC 5280
§5), certificate mapping (``map``), legal persons and their agents' mandates."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from typing import Any

import click

from admin.cli import OperatorGroup
from common.cli import transactional
from common.db import db

from . import _admin, _cli_actor, _emit, _services

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
