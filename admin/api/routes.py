"""The admin API's route table: each entry names its method, path, permission, request
and response schemas and handler. The blueprint registers its URL rules from this table
and the OpenAPI 3.1 document is generated from it, so they cannot drift apart."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from common.errors import ValidationError
from idp.clients import ClientService
from idp.models import Client, SigningKey
from idp.sessions import SsoSession

from ..accounts import AccountDetail, AccountPage, AccountSummary, SearchBy
from ..actor import Actor
from ..audit import AuditQuery, parse_audit_query
from ..roles import Permission
from ..service import AdminServices
from ..sessions import EndedSessions
from .ca_legal import (
    ca_json,
    credential_json,
    crl_bytes,
    crl_json,
    legal_person_detail_json,
    legal_person_json,
    mandate_json,
    preview_json,
)
from .schemas import COMPONENTS

PREFIX = "/admin/api/v1"
NDJSON = "application/x-ndjson"


@dataclass(frozen=True)
class Param:
    name: str
    location: str  # "path" | "query"
    schema: dict[str, Any]
    description: str = ""

    @property
    def required(self) -> bool:
        return self.location == "path"


@dataclass(frozen=True)
class Call:
    """One parsed request: who, the operations, the validated body and parameters."""

    actor: Actor
    admin: AdminServices
    body: dict[str, Any]
    query: dict[str, Any]
    path: dict[str, str]


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any] | None
    headers: dict[str, str] = field(default_factory=dict)
    # A streamed body (e.g. the audit export) instead of ``body``, sent as ``media_type``.
    stream: Iterator[str] | None = None
    media_type: str = "application/json"
    # Steps run after the transaction committed (then committed in turn): notifications
    # that must not go out for a change that could still roll back (back-channel logout).
    after_commit: tuple[Callable[[], object], ...] = ()


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # OpenAPI template, relative to PREFIX
    operation_id: str
    summary: str
    # None: any administrator (the caller's own profile).
    permission: Permission | None
    handler: Callable[[Call], Reply]
    success: tuple[int, str | None, str]  # status, response schema, description
    request: str | None = None
    request_required: bool = True
    params: tuple[Param, ...] = ()
    errors: tuple[int, ...] = (400, 401, 403, 422)
    media_type: str = "application/json"  # of the success response

    @property
    def flask_rule(self) -> str:
        return PREFIX + self.path.replace("{", "<").replace("}", ">")


# -- representations ------------------------------------------------------------------


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def client_json(row: Client) -> dict[str, Any]:
    return {
        "client_id": row.client_id,
        **ClientService.registration_of(row),
        "sector_identifier": row.sector_identifier,
        "enabled": bool(row.enabled),
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


def key_json(row: SigningKey, published: set[str]) -> dict[str, Any]:
    return {
        "kid": row.kid,
        "alg": row.alg,
        "state": row.state,
        "published": row.kid in published,
        "created_at": row.created_at.isoformat(),
        "activated_at": _time(row.activated_at),
        "retired_at": _time(row.retired_at),
        "unpublish_after": _time(row.unpublish_after),
    }


def _published(call: Call) -> set[str]:
    return {k.kid for k in call.admin.services.keys.published()}


# -- handlers -------------------------------------------------------------------------


def me(call: Call) -> Reply:
    return Reply(200, {"account_id": call.actor.account_id, "roles": sorted(call.actor.roles),
                       "permissions": sorted(p.value for p in call.actor.permissions)})


def list_clients(call: Call) -> Reply:
    limit = int(call.query.get("limit", 50))
    page = call.admin.clients.search(call.actor, query=call.query.get("q"), limit=limit,
                                     cursor=call.query.get("cursor"))
    headers = {}
    if page.next_cursor:
        from urllib.parse import urlencode

        args = {k: v for k, v in {"q": call.query.get("q"), "limit": limit, "cursor": page.next_cursor}.items() if v}
        # RFC 8288: the next page as a Link too, for generic clients.
        headers["Link"] = f'<{PREFIX}/clients?{urlencode(args)}>; rel="next"'
    return Reply(200, {"items": [client_json(c) for c in page.items], "next_cursor": page.next_cursor}, headers)


def create_client(call: Call) -> Reply:
    row, secret = call.admin.clients.create(call.actor, **call.body)
    return Reply(201, {"client": client_json(row), "client_secret": secret},
                 {"Location": f"{PREFIX}/clients/{row.client_id}"})


def get_client(call: Call) -> Reply:
    return Reply(200, client_json(call.admin.clients.get(call.actor, call.path["client_id"])))


def update_client(call: Call) -> Reply:
    row, secret = call.admin.clients.update(call.actor, call.path["client_id"], **call.body)
    return Reply(200, {"client": client_json(row), "client_secret": secret})


def delete_client(call: Call) -> Reply:
    call.admin.clients.delete(call.actor, call.path["client_id"])
    return Reply(204, None)


def rotate_client_secret(call: Call) -> Reply:
    secret = call.admin.clients.rotate_secret(call.actor, call.path["client_id"])
    return Reply(200, {"client_id": call.path["client_id"], "client_secret": secret})


def disable_client(call: Call) -> Reply:
    return Reply(200, client_json(call.admin.clients.set_enabled(call.actor, call.path["client_id"], False)))


def enable_client(call: Call) -> Reply:
    return Reply(200, client_json(call.admin.clients.set_enabled(call.actor, call.path["client_id"], True)))


def client_usage(call: Call) -> Reply:
    usage = call.admin.clients.usage(call.actor, call.path["client_id"])
    return Reply(200, {
        "client_id": call.path["client_id"],
        "consents": {"active": usage.consents_active, "withdrawn": usage.consents_withdrawn,
                     "expired": usage.consents_expired},
        "disclosures": {"total": usage.disclosures_total, "by_basis": usage.disclosures_by_basis,
                        "last_at": _time(usage.last_disclosure_at)},
    })


def list_keys(call: Call) -> Reply:
    rows = call.admin.keys.all(call.actor)
    published = _published(call)
    return Reply(200, {"items": [key_json(k, published) for k in rows]})


def rotate_keys(call: Call) -> Reply:
    rows = call.admin.keys.rotate(call.actor, call.body.get("alg"))
    published = _published(call)
    return Reply(200, {"items": [key_json(k, published) for k in rows]})


def retire_key(call: Call) -> Reply:
    row = call.admin.keys.retire(call.actor, call.path["kid"], unpublish=bool(call.body.get("unpublish")))
    return Reply(200, key_json(row, _published(call)))


# -- audit trail (issue 6, 电子监察) ---------------------------------------------------------

_AUDIT_FILTERS = ("since", "until", "actor", "target", "action", "client_id", "outcome")


def _audit_query(call: Call) -> AuditQuery:
    # RFC 3339 §5.6: API date-times carry their offset; none is assumed.
    return parse_audit_query({k: call.query.get(k) for k in _AUDIT_FILTERS})


def list_audit_events(call: Call) -> Reply:
    limit = int(call.query.get("limit", 50))
    page = call.admin.audit.search(call.actor, _audit_query(call), cursor=call.query.get("cursor"), limit=limit)
    headers = {}
    if page.next_cursor:
        args = {**{k: call.query[k] for k in _AUDIT_FILTERS if k in call.query}, "limit": limit,
                "cursor": page.next_cursor}
        # RFC 8288: the next page as a Link too, for generic clients.
        headers["Link"] = f'<{PREFIX}/audit/events?{urlencode(args)}>; rel="next"'
    return Reply(200, {"items": [e.as_dict() for e in page.events], "next_cursor": page.next_cursor}, headers)


def export_audit_events(call: Call) -> Reply:
    lines = call.admin.audit.export(call.actor, _audit_query(call))
    return Reply(200, None, {"Content-Disposition": 'attachment; filename="audit-events.jsonl"'}, stream=lines,
                 media_type=NDJSON)


def audit_status(call: Call) -> Reply:
    return Reply(200, call.admin.audit.status(call.actor).as_dict())


def verify_audit_trail(call: Call) -> Reply:
    return Reply(200, call.admin.audit.verify(call.actor).as_dict())


def list_alerts(call: Call) -> Reply:
    return Reply(200, {"items": [a.as_dict() for a in call.admin.audit.alerts(call.actor)]})


# -- certificate authorities and legal persons (issue 6) ---------------------------------


def _id(call: Call, name: str) -> int:
    # The path parameter's pattern (1-18 digits) is checked before the handler runs.
    return int(call.path[name])


def list_cas(call: Call) -> Reply:
    return Reply(200, {"items": [ca_json(v) for v in call.admin.cas.all(call.actor)]})


def create_ca(call: Call) -> Reply:
    b = call.body
    view = call.admin.cas.add(call.actor, name=b["name"], province=b["province"], pem_bundle=b["pem_bundle"],
                              profile=b.get("profile"), crl_urls=b.get("crl_urls") or [], ocsp_url=b.get("ocsp_url"))
    return Reply(201, ca_json(view), {"Location": f"{PREFIX}/cas/{view.row.id}"})


def get_ca(call: Call) -> Reply:
    return Reply(200, ca_json(call.admin.cas.get(call.actor, _id(call, "ca_id"))))


def update_ca(call: Call) -> Reply:
    b = call.body
    sample = b.get("sample_pem")
    view = call.admin.cas.update(call.actor, _id(call, "ca_id"), name=b.get("name"), province=b.get("province"),
                                 profile=b.get("profile"), sample=sample.encode("utf-8") if sample else None)
    return Reply(200, ca_json(view))


def disable_ca(call: Call) -> Reply:
    return Reply(200, ca_json(call.admin.cas.set_enabled(call.actor, _id(call, "ca_id"), False)))


def enable_ca(call: Call) -> Reply:
    return Reply(200, ca_json(call.admin.cas.set_enabled(call.actor, _id(call, "ca_id"), True)))


def upload_crl(call: Call) -> Reply:
    return Reply(200, crl_json(call.admin.cas.load_crl(call.actor, _id(call, "ca_id"), crl_bytes(call.body))))


def preview_mapping(call: Call) -> Reply:
    b = call.body
    preview = call.admin.cas.preview(call.actor, b["certificate_pem"].encode("utf-8"), profile=b.get("profile"),
                                     ca_id=b.get("ca_id"))
    return Reply(200, preview_json(preview))


def list_legal_persons(call: Call) -> Reply:
    limit = int(call.query.get("limit", 50))
    page = call.admin.legal.search(call.actor, query=call.query.get("q"), limit=limit, cursor=call.query.get("cursor"))
    headers = {}
    if page.next_cursor:
        args = {k: v for k, v in {"q": call.query.get("q"), "limit": limit, "cursor": page.next_cursor}.items() if v}
        # RFC 8288: the next page as a Link too, for generic clients.
        headers["Link"] = f'<{PREFIX}/legal-persons?{urlencode(args)}>; rel="next"'
    return Reply(200, {"items": [legal_person_json(p) for p in page.items], "next_cursor": page.next_cursor},
                 headers)


def get_legal_person(call: Call) -> Reply:
    return Reply(200, legal_person_detail_json(call.admin.legal.get(call.actor, _id(call, "legal_person_id"))))


def unbind_credential(call: Call) -> Reply:
    view = call.admin.legal.unbind(call.actor, _id(call, "legal_person_id"), _id(call, "credential_id"))
    return Reply(200, credential_json(view))


def reinstate_credential(call: Call) -> Reply:
    view = call.admin.legal.reinstate(call.actor, _id(call, "legal_person_id"), _id(call, "credential_id"))
    return Reply(200, credential_json(view))


def revoke_mandate(call: Call) -> Reply:
    view = call.admin.legal.revoke_mandate(call.actor, _id(call, "legal_person_id"), _id(call, "mandate_id"))
    return Reply(200, mandate_json(view))


_DB_ID = {"type": "string", "pattern": "^[0-9]{1,18}$"}
_CA_ID = Param("ca_id", "path", _DB_ID, "CA id")
_LEGAL_PERSON_ID = Param("legal_person_id", "path", _DB_ID, "Legal person id")
_CREDENTIAL_ID = Param("credential_id", "path", _DB_ID, "Credential id (of this legal person)")
_MANDATE_ID = Param("mandate_id", "path", _DB_ID, "Mandate id (of this legal person)")
_CONFLICT = (400, 401, 403, 404, 409, 422)


# -- accounts and sessions (issue 6) ---------------------------------------------------


def _epoch(value: int) -> str:
    return datetime.fromtimestamp(value, UTC).isoformat()


def account_summary_json(row: AccountSummary) -> dict[str, Any]:
    return {"account_id": row.account_id, "kind": row.kind, "username": row.username, "status": row.status,
            "id_number_masked": row.id_number_masked, "created_at": row.created_at.isoformat()}


def account_json(d: AccountDetail) -> dict[str, Any]:
    return {
        "account_id": d.account_id, "kind": d.kind, "username": d.username, "status": d.status, "level": d.level,
        "created_at": d.created_at.isoformat(), "updated_at": d.updated_at.isoformat(),
        "last_login_at": _time(d.last_login_at), "masked_name": d.masked_name, "masked_phone": d.masked_phone,
        "phone_verified": d.phone_verified, "id_number_masked": d.id_number_masked,
        "identity_verified_at": _time(d.identity_verified_at), "totp_enrolled": d.totp_enrolled,
        "recovery_codes_left": d.recovery_codes_left, "active_sessions": d.active_sessions,
        "administrator": d.administrator,
        "consents": [{"client_id": c.client_id, "client_name": c.client_name, "claims": list(c.claims),
                      "granted_at": c.granted_at.isoformat(), "expires_at": c.expires_at.isoformat(),
                      "state": c.state} for c in d.consents],
    }


def session_json(s: SsoSession) -> dict[str, Any]:
    return {"sid": s.sid, "account_id": s.account_id, "created_at": _epoch(s.created_at),
            "auth_time": _epoch(s.auth_time), "last_seen": _epoch(s.last_seen), "amr": list(s.amr), "acr": s.acr,
            "clients": list(s.clients)}


def _account_id(call: Call) -> int:
    return int(call.path["account_id"])  # the path pattern admits 1-18 digits only


def _account_page(page: AccountPage, headers: dict[str, str] | None = None) -> Reply:
    return Reply(200, {"items": [account_summary_json(a) for a in page.items], "next_cursor": page.next_cursor,
                       "matched_by": page.by.value}, headers or {})


def list_accounts(call: Call) -> Reply:
    limit = int(call.query.get("limit", 50))
    q = call.query.get("q")
    if call.admin.accounts.classify(q) in (SearchBy.PHONE, SearchBy.ID_NUMBER):
        # Policy: personal data stays out of URLs (proxy logs, histories): POST /accounts/search.
        raise ValidationError("personal data in a query string", public_message=(
            "Search by phone or ID number with POST /admin/api/v1/accounts/search."))
    page = call.admin.accounts.search(call.actor, query=q, limit=limit, cursor=call.query.get("cursor"))
    headers = {}
    if page.next_cursor:
        args = {k: v for k, v in {"q": q, "limit": limit, "cursor": page.next_cursor}.items() if v}
        # RFC 8288: the next page as a Link too, for generic clients.
        headers["Link"] = f'<{PREFIX}/accounts?{urlencode(args)}>; rel="next"'
    return _account_page(page, headers)


def search_accounts(call: Call) -> Reply:
    b = call.body
    return _account_page(call.admin.accounts.search(call.actor, query=b.get("q"), limit=int(b.get("limit", 50)),
                                                    cursor=b.get("cursor")))


def get_account(call: Call) -> Reply:
    return Reply(200, account_json(call.admin.accounts.get(call.actor, _account_id(call))))


def lock_account(call: Call) -> Reply:
    account_id = _account_id(call)
    result = call.admin.accounts.lock(call.actor, account_id)
    ended = result.ended
    return Reply(200, {"account_id": account_id, "status": "locked", "changed": result.changed,
                       "sessions_ended": len(ended), "deliveries_scheduled": len(ended.deliveries)},
                 after_commit=(lambda: call.admin.sessions.deliver(ended),))


def unlock_account(call: Call) -> Reply:
    account_id = _account_id(call)
    changed = call.admin.accounts.unlock(call.actor, account_id)
    return Reply(200, {"account_id": account_id, "status": "active", "changed": changed, "sessions_ended": 0,
                       "deliveries_scheduled": 0})


def reset_account_mfa(call: Call) -> Reply:
    account_id = _account_id(call)
    return Reply(200, {"account_id": account_id,
                       "changed": call.admin.accounts.reset_second_factor(call.actor, account_id)})


def reveal_id_number(call: Call) -> Reply:
    account_id = _account_id(call)
    number = call.admin.accounts.reveal_id_number(call.actor, account_id, call.body["reason"])
    return Reply(200, {"account_id": account_id, "id_number": number})


def reidentify_subject(call: Call) -> Reply:
    b = call.body
    found = call.admin.accounts.reidentify(call.actor, b["client_id"], b["sub"], reason=b["reason"],
                                           requested_by=b["requested_by"])
    return Reply(200, {"matched": found is not None, "account": found.as_dict() if found else None})


def list_account_sessions(call: Call) -> Reply:
    account_id = _account_id(call)
    rows = call.admin.sessions.for_account(call.actor, account_id)
    return Reply(200, {"account_id": account_id, "items": [session_json(s) for s in rows]})


def _ended_reply(call: Call, account_id: int, ended: EndedSessions) -> Reply:
    # Back-Channel Logout §2.5, as the citizen's own logout: sent once the end is committed.
    return Reply(200, {"account_id": account_id, "ended": list(ended.sids),
                       "deliveries_scheduled": len(ended.deliveries)},
                 after_commit=(lambda: call.admin.sessions.deliver(ended),))


def end_account_session(call: Call) -> Reply:
    account_id = _account_id(call)
    return _ended_reply(call, account_id, call.admin.sessions.end(call.actor, account_id, call.path["sid"]))


def end_account_sessions(call: Call) -> Reply:
    account_id = _account_id(call)
    return _ended_reply(call, account_id, call.admin.sessions.end_all(call.actor, account_id))


# -- the table ------------------------------------------------------------------------

_CLIENT_ID = Param("client_id", "path", {"type": "string", "minLength": 1, "maxLength": 64})
_KID = Param("kid", "path", {"type": "string", "minLength": 1, "maxLength": 64})
_NOT_FOUND = (400, 401, 403, 404, 422)

_AUDIT_ID = {"type": "string", "minLength": 1, "maxLength": 96,
             "pattern": "^(account|client|admin|legal_person|credential|delivery):[A-Za-z0-9_.@:-]{1,80}$"
                        "|^(system|anonymous)$"}
_AUDIT_PARAMS = (
    Param("since", "query", {"type": "string", "format": "date-time", "maxLength": 64},
          "First moment included (RFC 3339 date-time with offset)"),
    Param("until", "query", {"type": "string", "format": "date-time", "maxLength": 64}, "End, excluded"),
    Param("actor", "query", _AUDIT_ID, "Exact actor, a pseudonymous id (account:42, client:<id>, system)"),
    Param("target", "query", _AUDIT_ID, "Exact target, a pseudonymous id"),
    Param("action", "query", {"type": "string", "minLength": 1, "maxLength": 64},
          "Action prefix: login. finds login.success and login.failure"),
    Param("client_id", "query", {"type": "string", "minLength": 1, "maxLength": 64}, "Exact client_id"),
    Param("outcome", "query", {"type": "string", "enum": ["ok", "denied", "error"]}, "Outcome"),
)

_ACCOUNT_ID = Param("account_id", "path", {"type": "string", "pattern": "^[0-9]{1,18}$"})
_SID = Param("sid", "path", {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[A-Za-z0-9_-]+$"})

ROUTES: tuple[Route, ...] = (
    Route("GET", "/me", "getMe", "The calling administrator's roles and permissions", None, me,
          (200, "Me", "The caller")),
    Route("GET", "/clients", "listClients", "Search clients (keyset pagination)", Permission.CLIENTS_READ,
          list_clients, (200, "ClientPage", "One page of clients; next_cursor and a Link rel=next when more"),
          params=(
              Param("q", "query", {"type": "string", "maxLength": 200},
                    "Part of the name (any case), or an exact client_id"),
              Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 200}, "Page size (default 50)"),
              Param("cursor", "query", {"type": "string", "pattern": "^[0-9]{1,18}$"},
                    "next_cursor of the previous page"),
          )),
    Route("POST", "/clients", "createClient", "Register a client; its secret is returned once",
          Permission.CLIENTS_WRITE, create_client, (201, "ClientWithSecret", "Created"), request="ClientCreate"),
    Route("GET", "/clients/{client_id}", "getClient", "One client", Permission.CLIENTS_READ, get_client,
          (200, "Client", "The client"), params=(_CLIENT_ID,), errors=_NOT_FOUND),
    Route("PATCH", "/clients/{client_id}", "updateClient",
          "Change fields of a client; a new secret is returned when the change needs one",
          Permission.CLIENTS_WRITE, update_client, (200, "ClientWithSecret", "Updated"), request="ClientUpdate",
          params=(_CLIENT_ID,), errors=_NOT_FOUND),
    Route("DELETE", "/clients/{client_id}", "deleteClient", "Delete a client", Permission.CLIENTS_WRITE,
          delete_client, (204, None, "Deleted"), params=(_CLIENT_ID,), errors=_NOT_FOUND),
    Route("POST", "/clients/{client_id}/secret", "rotateClientSecret",
          "New client secret, returned once; the old one stops working", Permission.CLIENTS_WRITE,
          rotate_client_secret, (200, "ClientSecret", "The new secret"), params=(_CLIENT_ID,), errors=_NOT_FOUND),
    Route("POST", "/clients/{client_id}/disable", "disableClient", "Disable a client (no logins, no tokens)",
          Permission.CLIENTS_WRITE, disable_client, (200, "Client", "Disabled"), params=(_CLIENT_ID,),
          errors=_NOT_FOUND),
    Route("POST", "/clients/{client_id}/enable", "enableClient", "Enable a disabled client",
          Permission.CLIENTS_WRITE, enable_client, (200, "Client", "Enabled"), params=(_CLIENT_ID,),
          errors=_NOT_FOUND),
    Route("GET", "/clients/{client_id}/usage", "getClientUsage", "Consent and disclosure counts of a client",
          Permission.CLIENTS_READ, client_usage, (200, "ClientUsage", "Counts"), params=(_CLIENT_ID,),
          errors=_NOT_FOUND),
    Route("GET", "/keys", "listKeys", "Signing keys with their state", Permission.KEYS_READ, list_keys,
          (200, "KeyList", "Every key")),
    Route("POST", "/keys/rotate", "rotateKeys", "Promote the next key(s); returns the newly active keys",
          Permission.KEYS_WRITE, rotate_keys, (200, "KeyList", "Newly active keys"), request="KeyRotate",
          request_required=False, errors=_NOT_FOUND),
    Route("POST", "/keys/{kid}/retire", "retireKey", "Retire one key ahead of schedule", Permission.KEYS_WRITE,
          retire_key, (200, "Key", "The retired key"), request="KeyRetire", request_required=False,
          params=(_KID,), errors=(*_NOT_FOUND, 409)),
    Route("GET", "/audit/events", "listAuditEvents",
          "Search the audit trail, newest first (keyset pagination); the search is itself audited",
          Permission.AUDIT_READ, list_audit_events,
          (200, "AuditEventPage", "One page of events; next_cursor and a Link rel=next when more"),
          params=(*_AUDIT_PARAMS,
                  Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 500},
                        "Page size (default 50)"),
                  Param("cursor", "query", {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,200}$"},
                        "next_cursor of the previous page"))),
    Route("GET", "/audit/export", "exportAuditEvents",
          "Export matching events as JSON lines (one AuditEvent per line), oldest first, streamed; audited",
          Permission.AUDIT_READ, export_audit_events,
          (200, "AuditEvent", "application/x-ndjson: one AuditEvent object per line"), params=_AUDIT_PARAMS,
          media_type=NDJSON),
    Route("GET", "/audit/status", "getAuditStatus",
          "Chains, events kept, last signed checkpoint, last prune and last verification (cheap)",
          Permission.AUDIT_READ, audit_status, (200, "AuditTrailStatus", "The summary"), errors=(400, 401, 403)),
    Route("POST", "/audit/verify", "verifyAuditTrail",
          "Verify every chain now against the signed checkpoints in the database. Expensive: reads the whole "
          "trail; run on demand, not on a schedule (cron runs `flask audit verify --record`). Audited",
          Permission.AUDIT_READ, verify_audit_trail,
          (200, "AuditVerification", "The report (ok false names each broken link)"), errors=(400, 401, 403)),
    Route("GET", "/alerts", "listAlerts",
          "Active alerts: failed-login bursts, verification volume, revoked certificates, failing logouts",
          Permission.AUDIT_READ, list_alerts, (200, "AlertList", "Every alert active now"), errors=(400, 401, 403)),
    Route("GET", "/cas", "listCas", "Registered certificate authorities with certificates and revocation state",
          Permission.CAS_READ, list_cas, (200, "CaList", "Every CA")),
    Route("POST", "/cas", "createCa",
          "Register a CA from a PEM bundle (roots + intermediates) and a mapping profile; the bundle is checked "
          "(CA flags, keyCertSign, validity, chaining) before anything is saved", Permission.CAS_WRITE, create_ca,
          (201, "Ca", "Registered"), request="CaCreate", errors=(400, 401, 403, 409, 422)),
    Route("GET", "/cas/{ca_id}", "getCa", "One CA", Permission.CAS_READ, get_ca, (200, "Ca", "The CA"),
          params=(_CA_ID,), errors=_NOT_FOUND),
    Route("PATCH", "/cas/{ca_id}", "updateCa", "Rename a CA or replace its mapping profile", Permission.CAS_WRITE,
          update_ca, (200, "Ca", "Updated"), request="CaUpdate", params=(_CA_ID,), errors=_CONFLICT),
    Route("POST", "/cas/{ca_id}/disable", "disableCa", "Stop trusting a CA (its certificates are refused)",
          Permission.CAS_WRITE, disable_ca, (200, "Ca", "Disabled"), params=(_CA_ID,), errors=_NOT_FOUND),
    Route("POST", "/cas/{ca_id}/enable", "enableCa", "Trust a disabled CA again", Permission.CAS_WRITE, enable_ca,
          (200, "Ca", "Enabled"), params=(_CA_ID,), errors=_NOT_FOUND),
    Route("POST", "/cas/{ca_id}/crl", "uploadCrl",
          "Load a CRL (PEM text or base64 DER, up to the 1 MiB request limit): signed by this CA, current, not "
          "older than the loaded one (RFC 5280 §5.2.3)", Permission.CAS_WRITE, upload_crl,
          (200, "CrlState", "The CRL now loaded"), request="CrlUpload", params=(_CA_ID,), errors=_NOT_FOUND),
    Route("POST", "/cas/mapping-preview", "previewMapping",
          "Map a sample certificate with a profile (or a CA's saved profile) and show the trail; saves nothing",
          Permission.CAS_READ, preview_mapping, (200, "MappingPreview", "What the profile finds, and why"),
          request="MappingPreviewRequest", errors=_NOT_FOUND),
    Route("GET", "/legal-persons", "listLegalPersons", "Search legal persons by USCC (exact) or name (part)",
          Permission.LEGAL_READ, list_legal_persons,
          (200, "LegalPersonPage", "One page of legal persons; next_cursor and a Link rel=next when more"),
          params=(
              Param("q", "query", {"type": "string", "maxLength": 200}, "A USCC, or part of the name (any case)"),
              Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 200}, "Page size (default 50)"),
              Param("cursor", "query", {"type": "string", "pattern": "^[0-9]{1,18}$"},
                    "next_cursor of the previous page"),
          )),
    Route("GET", "/legal-persons/{legal_person_id}", "getLegalPerson",
          "A legal person with its bound certificates, agents and mandates", Permission.LEGAL_READ,
          get_legal_person, (200, "LegalPersonDetail", "The legal person"), params=(_LEGAL_PERSON_ID,),
          errors=_NOT_FOUND),
    Route("POST", "/legal-persons/{legal_person_id}/credentials/{credential_id}/unbind", "unbindCredential",
          "Unbind a certificate: its credential is revoked and the certificate no longer logs in (permanent)",
          Permission.LEGAL_WRITE, unbind_credential, (200, "Credential", "Unbound (revoked)"),
          params=(_LEGAL_PERSON_ID, _CREDENTIAL_ID), errors=_CONFLICT),
    Route("POST", "/legal-persons/{legal_person_id}/credentials/{credential_id}/reinstate", "reinstateCredential",
          "Clear the flag of a credential after reviewing the conflict", Permission.LEGAL_WRITE,
          reinstate_credential, (200, "Credential", "Active again"), params=(_LEGAL_PERSON_ID, _CREDENTIAL_ID),
          errors=_CONFLICT),
    Route("POST", "/legal-persons/{legal_person_id}/mandates/{mandate_id}/revoke", "revokeMandate",
          "End an agent's mandate now", Permission.LEGAL_WRITE, revoke_mandate, (200, "Mandate", "Revoked"),
          params=(_LEGAL_PERSON_ID, _MANDATE_ID), errors=_CONFLICT),
    # -- accounts and sessions (issue 6) --
    Route("GET", "/accounts", "listAccounts",
          "List accounts, or search by #id or part of a username; ID numbers are shown masked only. A phone or "
          "ID number is refused here (422): personal data stays out of URLs, use searchAccounts",
          Permission.ACCOUNTS_READ, list_accounts,
          (200, "AccountPage", "One page of accounts; next_cursor and a Link rel=next when more"),
          params=(
              Param("q", "query", {"type": "string", "maxLength": 200}, "#account_id, or part of a username"),
              Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 200}, "Page size (default 50)"),
              Param("cursor", "query", {"type": "string", "pattern": "^[0-9]{1,18}$"},
                    "next_cursor of the previous page"),
          )),
    Route("POST", "/accounts/search", "searchAccounts",
          "Search accounts by a mainland mobile number or a full ID number (exact, through their blind indexes), "
          "#id or part of a username; ID numbers are shown masked only. Look-ups by phone or ID number are audited",
          Permission.ACCOUNTS_READ, search_accounts, (200, "AccountPage", "One page of accounts"),
          request="AccountSearch"),
    Route("GET", "/accounts/{account_id}", "getAccount",
          "An account: state, level, factors, masked personal data, session count, consents",
          Permission.ACCOUNTS_READ, get_account, (200, "AccountDetail", "The account"), params=(_ACCOUNT_ID,),
          errors=_NOT_FOUND),
    Route("POST", "/accounts/{account_id}/lock", "lockAccount",
          "Lock an account (no logins, no token refreshes) and end its sessions; back-channel logout is sent to "
          "their clients. An administrator's account: superadmins only", Permission.ACCOUNTS_WRITE, lock_account,
          (200, "AccountStatusChange", "Locked"), params=(_ACCOUNT_ID,), errors=(*_NOT_FOUND, 409)),
    Route("POST", "/accounts/{account_id}/unlock", "unlockAccount", "Unlock a locked account",
          Permission.ACCOUNTS_WRITE, unlock_account, (200, "AccountStatusChange", "Active"), params=(_ACCOUNT_ID,),
          errors=(*_NOT_FOUND, 409)),
    Route("POST", "/accounts/{account_id}/reset-mfa", "resetAccountSecondFactor",
          "Remove the account's authenticator (TOTP) and recovery codes", Permission.ACCOUNTS_WRITE,
          reset_account_mfa, (200, "SecondFactorReset", "Reset"), params=(_ACCOUNT_ID,),
          errors=(*_NOT_FOUND, 409)),
    Route("POST", "/accounts/{account_id}/reveal", "revealIdNumber",
          "The full ID number, for a stated reason; audited with a keyed hash of the reason (never its text)",
          Permission.ACCOUNTS_REVEAL, reveal_id_number, (200, "IdNumberReveal", "The number"),
          request="RevealRequest", params=(_ACCOUNT_ID,), errors=_NOT_FOUND),
    Route("GET", "/accounts/{account_id}/sessions", "listAccountSessions", "The account's live SSO sessions",
          Permission.SESSIONS_READ, list_account_sessions, (200, "SsoSessionList", "Live sessions, oldest first"),
          params=(_ACCOUNT_ID,), errors=_NOT_FOUND),
    Route("DELETE", "/accounts/{account_id}/sessions", "endAccountSessions",
          "End every session of the account; back-channel logout is sent to their clients",
          Permission.SESSIONS_WRITE, end_account_sessions, (200, "SessionsEnded", "Ended"), params=(_ACCOUNT_ID,),
          errors=_NOT_FOUND),
    Route("DELETE", "/accounts/{account_id}/sessions/{sid}", "endAccountSession",
          "End one session of the account; back-channel logout is sent to its clients", Permission.SESSIONS_WRITE,
          end_account_session, (200, "SessionsEnded", "Ended"), params=(_ACCOUNT_ID, _SID), errors=_NOT_FOUND),
    Route("POST", "/subjects/reidentify", "reidentifySubject",
          "The account behind a portal's sub, for a lawful request (reason and requester); audited",
          Permission.ACCOUNTS_REVEAL, reidentify_subject, (200, "Reidentification", "Match or no match"),
          request="ReidentifyRequest", errors=(*_NOT_FOUND, 409)),
)


# -- OpenAPI 3.1 ----------------------------------------------------------------------

_ERROR_TEXT = {400: "Malformed request (RFC 6750 invalid_request)",
               401: "Missing or unusable access token; see WWW-Authenticate (RFC 6750 §3, RFC 9470 §3)",
               403: "The token lacks the admin scope, or the roles lack the permission",
               404: "No such resource", 409: "Conflicts with the resource's state",
               415: "The body is not sent as application/json",
               422: "The request breaks its schema or a registration rule; errors name the fields"}


def _operation(route: Route) -> dict[str, Any]:
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    status, schema, text = route.success
    responses: dict[str, Any] = {str(status): {"description": text}}
    if schema:
        responses[str(status)]["content"] = {route.media_type: {"schema": {"$ref": f"#/components/schemas/{schema}"}}}
    for code in route.errors:
        responses[str(code)] = {"description": _ERROR_TEXT[code], "content": problem}
    op: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "security": [{"yiwang": ["admin"]}],
        "x-permission": route.permission.value if route.permission else None,
        "responses": responses,
    }
    if route.params:
        op["parameters"] = [{"name": p.name, "in": p.location, "required": p.required, "schema": p.schema,
                             **({"description": p.description} if p.description else {})} for p in route.params]
    if route.request:
        op["requestBody"] = {"required": route.request_required, "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{route.request}"}}}}
        responses["415"] = {"description": _ERROR_TEXT[415], "content": problem}
    return op


def openapi_document(issuer: str) -> dict[str, Any]:
    """The OpenAPI 3.1 description of ``ROUTES``."""
    paths: dict[str, Any] = {}
    for route in ROUTES:
        paths.setdefault(PREFIX + route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Yiwang administration API",
            "version": "1",
            "description": "Bearer access tokens from this provider with the admin scope, for an administrator "
                           "who logged in with a second factor. Errors are RFC 9457 problem details. Lists "
                           "use keyset pagination: ?limit= and ?cursor= (next_cursor, Link rel=next).",
        },
        "servers": [{"url": issuer}],
        "paths": paths,
        "components": {
            "schemas": COMPONENTS,
            "securitySchemes": {"yiwang": {"type": "oauth2", "flows": {"authorizationCode": {
                "authorizationUrl": f"{issuer}/authorize", "tokenUrl": f"{issuer}/token",
                "scopes": {"admin": "Administer Yiwang (administrators with a second factor only)"}}}}},
        },
    }
