"""JSON representations of the certificate-authority and legal-person operations for
the admin API (issue 6), and the parsing of their uploads. Pure of Flask; the route
table (``routes``) wires them to handlers."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from certificates.errors import InvalidCrlError
from certificates.models import LegalPerson
from certificates.registry import CrlState

from ..cas import CaOverview, MappingPreview
from ..legal import CredentialView, LegalPersonDetail, MandateView


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def ca_json(view: CaOverview) -> dict[str, Any]:
    row = view.row
    return {
        "id": row.id,
        "name": row.name,
        "province": row.province,
        "enabled": bool(row.enabled),
        "anchors_sha256": row.anchors_sha256,
        "certificates": [{
            "role": c.role, "subject": c.subject, "issuer": c.issuer, "serial": c.serial,
            "not_before": c.not_before.isoformat(), "not_after": c.not_after.isoformat(), "sha256": c.sha256,
            "expired": c.expired, "key_algorithm": c.key_algorithm, "signature_algorithm": c.signature_algorithm,
        } for c in view.certificates],
        "revocation": {
            "crl_urls": list(row.crl_urls or ()),
            "ocsp_url": row.ocsp_url,
            "crl_status": view.crl_status,
            "crl_number": row.crl_number,
            "crl_this_update": _time(row.crl_this_update),
            "crl_next_update": _time(row.crl_next_update),
            "crl_loaded_at": _time(row.crl_loaded_at),
        },
        "profile": view.profile,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


def crl_json(state: CrlState) -> dict[str, Any]:
    return {
        "ca_id": state.ca_id,
        "issuer": state.issuer,
        "crl_number": str(state.crl_number) if state.crl_number is not None else None,
        "this_update": state.this_update.isoformat(),
        "next_update": _time(state.next_update),
        "entries": state.entries,
    }


def crl_bytes(body: dict[str, Any]) -> bytes:
    """The uploaded CRL: PEM text, or DER sent as base64 (RFC 4648 §4). Raises
    ``InvalidCrlError`` for base64 that does not decode."""
    if "pem" in body:
        return str(body["pem"]).encode("utf-8")
    try:
        return base64.b64decode(str(body["der_base64"]), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidCrlError("bad base64", public_message="der_base64 is not valid base64.") from None


def preview_json(preview: MappingPreview) -> dict[str, Any]:
    result = preview.result
    found = result.identifier
    return {
        "identifier": {"kind": found.kind, "value": found.value} if found is not None else None,
        "uscc": preview.uscc,
        "name": result.name,
        "reason": result.reason,
        "trail": list(result.trail),
        "profile_source": preview.profile_source,
        "ca_id": preview.ca_id,
        "issuer_match": preview.issuer_match,
        "key_algorithm": preview.key_algorithm,
        "signature_algorithm": preview.signature_algorithm,
    }


def legal_person_json(row: LegalPerson) -> dict[str, Any]:
    return {
        "id": row.id,
        "uscc": row.uscc,
        "name": row.name,
        "org_code": row.org_code,
        "reg_no": row.reg_no,
        "status": row.status,
        "account_id": row.account_id,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


def credential_json(view: CredentialView) -> dict[str, Any]:
    row = view.row
    return {
        "id": row.id,
        "ca_id": row.ca_id,
        "ca_name": view.ca_name,
        "issuer": view.issuer,
        "serial": view.serial,
        "spki_sha256": row.spki_sha256,
        "algorithm": row.algorithm,
        "not_before": row.not_before.isoformat(),
        "not_after": row.not_after.isoformat(),
        "expired": view.expired,
        "status": row.status,
        "status_detail": row.status_detail,
        "created_at": row.created_at.isoformat(),
        "last_used_at": _time(row.last_used_at),
    }


def mandate_json(view: MandateView) -> dict[str, Any]:
    row = view.row
    return {
        "id": row.id,
        "agent_account_id": row.agent_account_id,
        "agent_username": view.agent_username,
        "scope": list(row.scope or ()),
        "state": view.state,
        "valid_from": row.valid_from.isoformat(),
        "valid_until": row.valid_until.isoformat(),
        "granted_by": row.granted_by,
        "granted_at": row.granted_at.isoformat(),
        "revoked_at": _time(row.revoked_at),
        "revoked_by": row.revoked_by,
    }


def legal_person_detail_json(detail: LegalPersonDetail) -> dict[str, Any]:
    return {
        "legal_person": legal_person_json(detail.person),
        "credentials": [credential_json(c) for c in detail.credentials],
        "mandates": [mandate_json(m) for m in detail.mandates],
    }
