"""Claim values and the userinfo response (OIDC Core §5.1, §5.3.2): the one place that
computes what an account's claims are now, for issuance (the token's ``clm``, the ID
token) and for userinfo (which releases exactly those names still allowed)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from realname.idnumbers import parse_id_number
from realname.levels import account_level

from .catalogue import derived_claims
from .oauth_errors import InsufficientScopeError, InvalidTokenError

if TYPE_CHECKING:
    from .claim_sources import ClaimSource
    from .provider import Services
    from .tokens import AccessTokenClaims

# Computed from the verified identity (issue 5), never stored as such.
_DERIVED = frozenset({"realname_verified", "realname_level", "id_number_masked", "age_over_18", "age_over_60",
                      "region_code", "gender", "birthdate"})


class UserinfoService:
    def __init__(self, services: Services) -> None:
        self._svc = services

    def response(self, token: AccessTokenClaims) -> dict[str, Any]:
        """The userinfo body of a validated access token: ``sub``, the token's released
        claims (``clm``) that the client's current policy still allows, with values
        computed now, and ``act`` for an agent. At most one database read (DESIGN.md §7),
        none while the account's and the client's cached rows are current (issue 12:
        their versions came with the token check, ``AccessTokenClaims.versions``).

        Raises ``InsufficientScopeError`` for a token without a user or the openid scope,
        ``InvalidTokenError`` when its account is gone or not active."""
        if token.account_id is None or "openid" not in token.scope.split():
            raise InsufficientScopeError("no account or no openid scope", scope="openid",
                                         public_message="The token does not carry the openid scope.")
        svc = self._svc
        account = svc.claim_source(token.account_id, seen=token.seen(svc.p.claim_cache.keys(token.account_id)))
        if account is None or account.status != "active":
            raise InvalidTokenError("account not active")
        # OIDC Core §5.3.2: sub is always returned and equals the ID token's sub.
        body: dict[str, Any] = {"sub": token.sub}
        # Issue 5: the names were fixed at issuance (consented ∩ allowed ∩ having a value);
        # an administrator may have narrowed the client's policy since. Values are
        # computed now, so derived claims are right on the day of the request.
        released = token.raw.get("clm")
        names = {n for n in released if isinstance(n, str)} if isinstance(released, list) else set()
        client = svc.client(token.client_id, seen=token.seen(svc.p.client_cache.keys(token.client_id)))
        names = client.allowed_claims(names) if client is not None else set()
        context = token.raw.get("ctx")
        body.update(self.values(account, names, context if isinstance(context, dict) else None))
        if isinstance(token.raw.get("act"), dict):
            # RFC 8693 §4.1: who is acting for the subject.
            body["act"] = token.raw["act"]
        return body

    def values(self, account: ClaimSource, names: set[str], context: dict[str, Any] | None = None) -> dict[str, Any]:
        """The claims among ``names`` that the account has a value for now (absent ones are
        omitted, never null). Only ``names`` are computed, so a request decrypts nothing it
        does not release; nothing here reads the database. ``context`` is the token's
        login context (certificate issuer)."""
        svc = self._svc
        accounts = svc.accounts
        out: dict[str, Any] = {}
        if names & {"uscc", "legal_person_name"} and account.kind == "organization":
            out["uscc"] = account.uscc
            out["legal_person_name"] = account.legal_person_name
        if "cert_issuer" in names and context and context.get("cert_issuer"):
            out["cert_issuer"] = context["cert_issuer"]
        if names & (_DERIVED | {"id_number"}) and account.kind == "person":
            # Issue 5: computed now from the verified identity. The number itself leaves
            # this function only as the sensitive claim id_number, which the release
            # policy admits only for flagged clients with the citizen's confirmation.
            today = svc.p.clock.now().date()
            number = svc.realname.decrypt_id_number(account.id_number_enc) if account.id_number_enc else None
            rid = parse_id_number(number, today=today) if number else None
            if names & _DERIVED:
                level = account_level(proofing_level=account.proofing_level, has_totp=account.has_totp,
                                      phone_bound=account.phone_bound) if "realname_level" in names else None
                out.update(derived_claims(rid, level=level, today=today))
            if "id_number" in names and rid is not None:
                out["id_number"] = rid.number
        if "name" in names:
            out["name"] = accounts.name_of(account)
        if "preferred_username" in names:
            out["preferred_username"] = account.username
        if "updated_at" in names:
            out["updated_at"] = int(account.updated_at.timestamp())
        if names & {"phone_number", "phone_number_verified"}:
            phone = accounts.phone_of(account)
            out["phone_number"] = f"+86{phone}" if phone else None
            # OIDC Core §5.1: true once the user proved possession (SMS one-time code).
            out["phone_number_verified"] = (account.phone_verified_at is not None) if phone else None
        return {k: v for k, v in out.items() if k in names and v is not None}
