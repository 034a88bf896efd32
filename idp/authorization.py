"""The authorization endpoint's decision as one service (issue 11): given a validated
request (``idp.authorize.AuthorizationRequest``) and the browser's SSO session, what
happens next — a page to show (login, consent, step-up, whom to act for), an error for
the client, or an authorization code. The view validates with Authlib, calls ``decide``
once and renders the outcome; the rules (OIDC Core §3.1.2, issues 4, 5, 17) live here and
in the pure ``idp.authorize``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from common.errors import DomainError

from .authorize import AuthorizationRequest, decide
from .models import Account
from .oauth_errors import AuthorizationResponseError, AuthorizationServerError
from .protocol import ADMIN_SCOPE
from .release import ConsentChoices, ConsentState, choices, released, requested_claims
from .tokens import AuthorizationCode

if TYPE_CHECKING:
    from .provider import Services

Page = Literal["login", "consent", "stepup", "act_as"]


@dataclass(frozen=True)
class Interaction:
    """What the authorization remembers between pages (the pending interaction record)."""

    created_at: int
    consent_done: bool = False
    confirmed: frozenset[str] = frozenset()  # sensitive claims confirmed in this authorization
    acting_for: Any = None  # the mandate chosen on the act-as page (an id), or None


@dataclass(frozen=True)
class ShowPage:
    page: Page


@dataclass(frozen=True)
class RefuseToClient:
    """An error for the client at its verified redirect URI (RFC 6749 §4.1.2.1)."""

    error: AuthorizationResponseError


@dataclass(frozen=True)
class IssueCode:
    code: str


Outcome = ShowPage | RefuseToClient | IssueCode


@dataclass(frozen=True)
class ConsentOffer:
    requested: set[str]
    state: ConsentState
    choices: ConsentChoices = field(repr=False)


class AuthorizationFlow:
    def __init__(self, services: Services) -> None:
        self._svc = services

    def consent_offer(self, req: AuthorizationRequest, account_id: int) -> ConsentOffer:
        """The claims this request asks for (after the client's policy), the citizen's
        remembered decisions, and what the consent page must ask now. With prompt=consent
        (OIDC Core §3.1.2.1) every claim is asked again."""
        requested = requested_claims(req.client, req.scope, req.claims_request)
        state = self._svc.consents.state(account_id, req.client.client_id)
        offer = choices(req.client, requested, ConsentState() if "consent" in req.prompt else state)
        return ConsentOffer(requested, state, offer)

    def decide(self, req: AuthorizationRequest, cookie: str | None, interaction: Interaction | None,
               now: int) -> Outcome:
        """What this authorization request does now. Flushes (an issued code)."""
        svc = self._svc
        client = req.client
        session = svc.sessions.get(cookie)
        account = svc.session.get(Account, session.account_id) if session else None
        if account is not None and account.status != "active":
            session, account = None, None
        created_at = interaction.created_at if interaction else now
        fresh = bool(session and interaction and session.auth_time >= created_at)

        hint_subject, hint_invalid = None, False
        if req.id_token_hint:
            # OIDC Core §3.1.2.1: only an ID token we issued is a hint (not an access token).
            claims = svc.tokens.decode_id_token(req.id_token_hint)
            if claims is None or claims.get("aud") not in (client.client_id, [client.client_id]):
                hint_invalid = True
            else:
                hint_subject = claims.get("sub")
        session_subject = svc.subject(session.subject_seed, client) if session else None
        scopes = req.scope.split()
        consent_now = bool(interaction and interaction.consent_done)
        offer = self.consent_offer(req, account.id) if account else None
        try:
            decision = decide(
                req,
                session=session,
                session_level=svc.session_acr(account.id, session.amr) if account and session else None,
                session_subject=session_subject,
                hint_subject=hint_subject,
                hint_invalid=hint_invalid,
                fresh_login=fresh,
                # Issue 5: consent is settled when no requested claim awaits a decision, or
                # the citizen decided in this very authorization (sensitive claims,
                # prompt=consent). Issue 17: the admin scope is approved explicitly in
                # every authorization.
                consent_granted=offer is not None and (not offer.choices.pending or consent_now)
                and (ADMIN_SCOPE not in scopes or consent_now),
                consent_given_now=consent_now,
                now=now,
            )
        except AuthorizationResponseError as exc:
            return RefuseToClient(exc)
        if decision.action in ("login", "consent", "stepup"):
            return ShowPage(decision.action)  # type: ignore[arg-type]
        if session is None or account is None or offer is None:  # pragma: no cover - decide() demands a login
            return RefuseToClient(AuthorizationServerError())
        # Issue 4, agents (经办人): a citizen with mandates who is asked for legal-person
        # claims picks whom to act as; the choice belongs to this authorization request.
        subject_account, context = account, dict(session.context)
        if "legal_person" in scopes and account.kind == "person":
            choice = interaction.acting_for if interaction else None
            if choice is None and "none" not in req.prompt and svc.legal.active_for(account.id):
                return ShowPage("act_as")
            if isinstance(choice, int):
                try:
                    acting = svc.legal.get_active(account.id, choice)
                except DomainError:
                    # The mandate ended while the user was choosing: ask again.
                    return ShowPage("act_as")
                subject_account = svc.accounts.get(acting.legal_person_account_id)
                context.update(agent_seed=account.subject_seed, mandate_id=acting.mandate_id)
        confirmed = set(interaction.confirmed) if interaction else set()
        code = svc.tokens.issue_code(AuthorizationCode(
            client_id=client.client_id,
            redirect_uri=req.redirect_uri,
            scope=req.scope,
            account_id=subject_account.id,
            subject_seed=subject_account.subject_seed,
            code_challenge=req.code_challenge,
            code_challenge_method=req.code_challenge_method,
            auth_time=session.auth_time,
            acr=decision.acr,
            amr=session.amr,
            sid=session.sid,
            nonce=req.nonce,
            claims_request=req.claims_request,
            # requested ∩ policy ∩ (remembered consent ∪ statutory), plus sensitive
            # claims confirmed in this authorization only.
            claims=sorted(released(client, offer.requested, offer.state, confirmed)),
            context=context or None,
        ))
        return IssueCode(code)
