"""Token issuance (issue 11): what a successful code exchange or refresh hands out, in one
service the grants call — the pairwise subject, the claims the token releases, the access,
refresh and ID tokens, the disclosure record, the audit event and the metric. The Authlib
grants in idp/server.py keep only the protocol glue (validation, Authlib's hooks).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749 import scope_to_list

from .claims import id_token_claim_names
from .clients import RegisteredClient
from .errors import AccountNotFoundError
from .release import asked_claims, for_token, refreshable

if TYPE_CHECKING:
    from .provider import Services

log = logging.getLogger("yiwang.idp")


@dataclass(frozen=True)
class LoginContext:
    """The authentication behind a grant (OIDC Core §2 ID token claims): when, at which
    level, by which methods (RFC 8176), in which SSO session."""

    auth_time: int
    acr: str | None
    amr: tuple[str, ...]
    sid: str | None


@dataclass(frozen=True)
class Grant:
    """What a grant (code exchange or refresh) asks issuance for."""

    client: RegisteredClient
    account_id: int
    subject_seed: str
    scope: str
    login: LoginContext
    nonce: str | None
    claims_request: dict[str, Any] | None
    granted: frozenset[str]  # the grant's consented claims
    grant_id: str  # the refresh token family
    refresh: bool  # issue a refresh token
    family_expires_at: datetime | None = None
    context: Mapping[str, Any] | None = field(default=None)  # the login's context (certificate CA, agent)


@dataclass(frozen=True)
class Issued:
    body: dict[str, Any]  # the token response (RFC 6749 §5.1, OIDC Core §3.1.3.3)
    jti: str  # the access token's id


class IssuanceService:
    def __init__(self, services: Services) -> None:
        self._svc = services

    def issue(self, grant: Grant, *, grant_type: str) -> Issued:
        """Issue the tokens of ``grant``; records the disclosure and the audit event.
        Flushes."""
        svc = self._svc
        client, login = grant.client, grant.login
        amr = list(login.amr)
        sub = svc.subject(grant.subject_seed, client)
        # Issue 5: this token releases the grant's consented claims, narrowed to its scope
        # and to the client's current policy (an administrator may have reduced it).
        # Issue 11: and only those the account has a value for now, computed once: the
        # same set goes into the token (userinfo), the ID token and the disclosure record,
        # so the record says exactly what the portal can receive.
        token_names = for_token(set(grant.granted), client, grant.scope, grant.claims_request)
        # What tokens say about this login beyond the subject: the CA of a certificate
        # login, and the agent acting for a legal person as a pairwise sub at this client.
        context = dict(grant.context or {})
        token_context: dict[str, Any] = {}
        if context.get("cert_issuer"):
            token_context["cert_issuer"] = context["cert_issuer"]
        if context.get("agent_seed"):
            token_context["act"] = {"sub": svc.subject(context["agent_seed"], client)}
        values: dict[str, Any] = {}
        if token_names:
            source = svc.claim_source(grant.account_id)
            if source is None:
                raise AccountNotFoundError(f"account {grant.account_id}")
            values = svc.userinfo.values(source, token_names, token_context)
            token_names = set(values)
        access, jti, expires_in = svc.tokens.issue_access_token(
            client_id=client.client_id, sub=sub, scope=grant.scope, account_id=grant.account_id,
            grant_id=grant.grant_id, auth_time=login.auth_time, acr=login.acr, amr=amr, sid=login.sid,
            claims_released=sorted(token_names) or None, context=token_context or None,
        )
        body: dict[str, Any] = {"access_token": access, "token_type": "Bearer", "expires_in": expires_in,
                                "scope": grant.scope}
        if grant.refresh:
            body["refresh_token"] = svc.tokens.issue_refresh_token(
                family_id=grant.grant_id, client_id=client.client_id, account_id=grant.account_id,
                scope=grant.scope, auth_time=login.auth_time, acr=login.acr, amr=amr, sid=login.sid,
                claims_request=grant.claims_request, family_expires_at=grant.family_expires_at,
                context=context or None, claims=sorted(refreshable(set(grant.granted))),
            )
        if "openid" in scope_to_list(grant.scope):
            # DESIGN.md §4: a minimal ID token; a claim goes in only when claims.id_token
            # names it (OIDC Core §5.5) and this token may release it at all.
            names = id_token_claim_names(grant.scope, grant.claims_request) & token_names
            extra = {k: v for k, v in values.items() if k in names}
            if "act" in token_context:
                # RFC 8693 §4.1: who is acting is part of the authentication result.
                extra["act"] = token_context["act"]
            body["id_token"] = svc.tokens.issue_id_token(
                client_id=client.client_id, sub=sub, auth_time=login.auth_time,
                alg=client.id_token_signed_response_alg, nonce=grant.nonce, acr=login.acr, amr=amr,
                sid=login.sid, access_token=access, extra=extra,
            )
        # Issue 5 / PIPL Art. 17: every token that can release claims is a disclosure (the
        # code exchange and every refresh). Names only, never values; with the sub the
        # portal received, for the audited re-identification tool.
        released = {"sub"} | token_names | ({"act"} & set(token_context))
        asked = asked_claims(grant.scope, grant.claims_request)
        if grant_type == "authorization_code" and not asked <= client.allowed_claims(asked):
            # Reduced silently for the portal (never an error that leaks the policy),
            # visible to administrators.
            log.info("claims reduced by policy", extra={"client_id": client.client_id})
        svc.disclosures.record(account_id=grant.account_id, client_id=client.client_id, claim_names=released,
                               purpose=client.purpose_of(released), legal_basis=client.basis_of(released),
                               grant_id=grant.grant_id, token_id=jti, subject=sub)
        svc.p.metrics.token_issued(grant_type)
        svc.audit.record("token.issue", actor=f"client:{client.client_id}", target=f"account:{grant.account_id}",
                         client_id=client.client_id,
                         details={"grant_type": grant_type, "jti": jti, "scopes": scope_to_list(grant.scope) or [],
                                  "refresh_token_issued": grant.refresh, "id_token_issued": "id_token" in body,
                                  # Issue 6 "claim releases": names, never values.
                                  "claims": sorted(released)})
        return Issued(body, jti)
