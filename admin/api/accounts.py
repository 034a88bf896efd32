"""Accounts and their SSO sessions in the admin API (issue 6): list and search (phone and
ID numbers only in a body, never in a URL), detail with masked personal data, lock,
unlock, second-factor reset, the reason-bound ID number reveal, sessions, and the
re-identification of a portal's pairwise sub. Ending sessions sends back-channel logout
tokens once the change is committed (OIDC Back-Channel Logout 1.0 §2.5)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from common.errors import ValidationError
from idp.sessions import SsoSession as SessionView

from ..accounts import AccountDetail as DetailView
from ..accounts import AccountPage as PageView
from ..accounts import AccountSummary as SummaryView
from ..accounts import SearchBy
from ..roles import Permission
from ..sessions import EndedSessions
from .bodies import NO_CONTROL, Body, DbId, Omittable, OneOf, Params, QueryInt, Timestamp, sent, timestamp
from .operations import ERRORS, NOT_FOUND, Call, Page, Reply, Route, page_reply

Kind = Annotated[str, OneOf(("person", "organization"))]
Reason = Annotated[str, StringConstraints(min_length=10, max_length=500), NO_CONTROL]
REASON = "Why (PIPL Art. 6 purpose); audited as a keyed hash and length, never as text."
SearchText = Annotated[str, StringConstraints(max_length=200), NO_CONTROL]
# Ending sessions signs back-channel logout tokens: no signing key is a server fault (503).
SIGNS = (503,)


class AccountSummary(Body):
    account_id: int
    kind: Kind
    username: str | None
    status: Annotated[str, OneOf(("active", "locked", "disabled"))]
    id_number_masked: str | None = Field(description="Region and last four only (110105********002X).")
    created_at: Timestamp


class AccountSearch(Body):
    """In the body, so phone and ID numbers stay out of URLs."""

    q: Omittable[SearchText] = Field(default=None, description=(
        "A mainland mobile number, a full resident ID number, #account_id, or part of a username"))
    limit: Omittable[int] = Field(default=None, ge=1, le=200)
    cursor: Omittable[DbId] = None


class AccountPage(Page):
    items: list[AccountSummary]
    matched_by: Annotated[str, OneOf(by.value for by in SearchBy)] = Field(
        description="How the search term was read.")


class AccountConsent(Body):
    client_id: str
    client_name: str | None
    claims: list[str]
    granted_at: Timestamp
    expires_at: Timestamp
    state: Annotated[str, OneOf(("active", "withdrawn", "expired"))]


class AccountDetail(AccountSummary):
    """Masked personal data only; the full ID number needs revealIdNumber."""

    level: str | None = Field(description="Assurance level (cn-l0 .. cn-l4); null for organisations.")
    updated_at: Timestamp
    last_login_at: Timestamp | None = Field(description="From the audit trail; null if unknown.")
    masked_name: str | None
    masked_phone: str | None
    phone_verified: bool
    identity_verified_at: Timestamp | None
    totp_enrolled: bool
    recovery_codes_left: int
    active_sessions: int
    administrator: bool = Field(description="Holds an administrator role.")
    consents: list[AccountConsent]


class AccountStatusChange(Body):
    account_id: int
    status: Literal["active", "locked"]
    changed: bool = Field(description="False: it was in this state already.")
    sessions_ended: int
    deliveries_scheduled: int = Field(description="Back-channel logout deliveries.")


class SecondFactorReset(Body):
    account_id: int
    changed: bool = Field(description="False: nothing was enrolled.")


class RevealRequest(Body):
    reason: Reason = Field(description=REASON)


class IdNumberReveal(Body):
    account_id: int
    id_number: str


class ReidentifyRequest(Body):
    client_id: Annotated[str, StringConstraints(min_length=1, max_length=64), NO_CONTROL]
    sub: Annotated[str, StringConstraints(pattern="^[A-Za-z0-9_-]{43}$")]
    reason: Reason = Field(description=REASON)
    requested_by: Annotated[str, StringConstraints(min_length=3, max_length=120), NO_CONTROL] = Field(
        description="The requesting authority and case reference.")


class ResolvedSubject(Body):
    account_id: int
    kind: Kind
    username: str | None
    status: str
    realname_level: str | None
    disclosed_to: list[str]
    first_disclosed_at: Timestamp
    last_disclosed_at: Timestamp


class Reidentification(Body):
    matched: bool
    account: ResolvedSubject | None


class SsoSession(Body):
    sid: str = Field(description="The session id in ID and logout tokens (not the cookie).")
    account_id: int
    created_at: Timestamp
    auth_time: Timestamp
    last_seen: Timestamp
    amr: list[str]
    acr: str
    clients: list[str] = Field(description="Clients that received tokens in this session.")


class SsoSessionList(Body):
    account_id: int
    items: list[SsoSession]


class SessionsEnded(Body):
    account_id: int
    ended: list[str] = Field(description="sids ended.")
    deliveries_scheduled: int = Field(description="Back-channel logout deliveries.")


class AccountList(Params):
    q: Omittable[SearchText] = Field(default=None, description="#account_id, or part of a username")
    limit: QueryInt = Field(default=50, ge=1, le=200, description="Page size (default 50)")
    cursor: Omittable[DbId] = Field(default=None, description="next_cursor of the previous page")


class AccountPath(Params):
    account_id: DbId


class SessionPath(AccountPath):
    sid: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern="^[A-Za-z0-9_-]+$")]


# -- representations ------------------------------------------------------------------


def _epoch(value: int) -> str:
    return datetime.fromtimestamp(value, UTC).isoformat()


def summary_json(row: SummaryView) -> AccountSummary:
    return AccountSummary(account_id=row.account_id, kind=row.kind, username=row.username, status=row.status,
                          id_number_masked=row.id_number_masked, created_at=row.created_at.isoformat())


def page_json(page: PageView) -> AccountPage:
    return AccountPage(items=[summary_json(a) for a in page.items], next_cursor=page.next_cursor,
                       matched_by=page.by.value)


def account_json(d: DetailView) -> AccountDetail:
    return AccountDetail(
        account_id=d.account_id, kind=d.kind, username=d.username, status=d.status, level=d.level,
        created_at=d.created_at.isoformat(), updated_at=d.updated_at.isoformat(),
        last_login_at=timestamp(d.last_login_at), masked_name=d.masked_name, masked_phone=d.masked_phone,
        phone_verified=d.phone_verified, id_number_masked=d.id_number_masked,
        identity_verified_at=timestamp(d.identity_verified_at), totp_enrolled=d.totp_enrolled,
        recovery_codes_left=d.recovery_codes_left, active_sessions=d.active_sessions, administrator=d.administrator,
        consents=[AccountConsent(client_id=c.client_id, client_name=c.client_name, claims=list(c.claims),
                                 granted_at=c.granted_at.isoformat(), expires_at=c.expires_at.isoformat(),
                                 state=c.state) for c in d.consents])


def session_json(s: SessionView) -> SsoSession:
    return SsoSession(sid=s.sid, account_id=s.account_id, created_at=_epoch(s.created_at),
                      auth_time=_epoch(s.auth_time), last_seen=_epoch(s.last_seen), amr=list(s.amr), acr=s.acr,
                      clients=list(s.clients))


# -- handlers -------------------------------------------------------------------------


def _account_id(call: Call) -> int:
    return int(call.params_as(AccountPath).account_id)


def list_accounts(call: Call) -> Reply:
    params = call.params_as(AccountList)
    if call.admin.accounts.classify(params.q) in (SearchBy.PHONE, SearchBy.ID_NUMBER):
        # Policy: personal data stays out of URLs (proxy logs, histories): POST /accounts/search.
        raise ValidationError("personal data in a query string", public_message=(
            "Search by phone or ID number with POST /admin/api/v1/accounts/search."))
    page = call.admin.accounts.search(call.actor, query=params.q, limit=params.limit, cursor=params.cursor)
    return page_reply(page_json(page), "/accounts", params)


def search_accounts(call: Call) -> Reply:
    # No Link header: the next page is another POST, and its terms must stay out of URLs.
    body = call.body_as(AccountSearch)
    page = call.admin.accounts.search(call.actor, query=body.q, limit=body.limit or 50, cursor=body.cursor)
    return Reply(200, page_json(page))


def get_account(call: Call) -> Reply:
    return Reply(200, account_json(call.admin.accounts.get(call.actor, _account_id(call))))


def lock_account(call: Call) -> Reply:
    account_id = _account_id(call)
    result = call.admin.accounts.lock(call.actor, account_id)
    ended = result.ended
    return Reply(200, AccountStatusChange(account_id=account_id, status="locked", changed=result.changed,
                                          sessions_ended=len(ended), deliveries_scheduled=len(ended.deliveries)),
                 after_commit=(lambda: call.admin.sessions.deliver(ended),))


def unlock_account(call: Call) -> Reply:
    account_id = _account_id(call)
    changed = call.admin.accounts.unlock(call.actor, account_id)
    return Reply(200, AccountStatusChange(account_id=account_id, status="active", changed=changed, sessions_ended=0,
                                          deliveries_scheduled=0))


def reset_account_mfa(call: Call) -> Reply:
    account_id = _account_id(call)
    return Reply(200, SecondFactorReset(account_id=account_id,
                                        changed=call.admin.accounts.reset_second_factor(call.actor, account_id)))


def reveal_id_number(call: Call) -> Reply:
    account_id = _account_id(call)
    number = call.admin.accounts.reveal_id_number(call.actor, account_id, call.body_as(RevealRequest).reason)
    return Reply(200, IdNumberReveal(account_id=account_id, id_number=number))


def reidentify_subject(call: Call) -> Reply:
    found = call.admin.accounts.reidentify(call.actor, **sent(call.body_as(ReidentifyRequest)))
    return Reply(200, Reidentification(matched=found is not None,
                                       account=ResolvedSubject.model_validate(found.as_dict()) if found else None))


def list_account_sessions(call: Call) -> Reply:
    account_id = _account_id(call)
    rows = call.admin.sessions.for_account(call.actor, account_id)
    return Reply(200, SsoSessionList(account_id=account_id, items=[session_json(s) for s in rows]))


def _ended_reply(call: Call, account_id: int, ended: EndedSessions) -> Reply:
    # Back-Channel Logout §2.5, as the citizen's own logout: sent once the end is committed.
    return Reply(200, SessionsEnded(account_id=account_id, ended=list(ended.sids),
                                    deliveries_scheduled=len(ended.deliveries)),
                 after_commit=(lambda: call.admin.sessions.deliver(ended),))


def end_account_session(call: Call) -> Reply:
    path = call.params_as(SessionPath)
    account_id = int(path.account_id)
    return _ended_reply(call, account_id, call.admin.sessions.end(call.actor, account_id, path.sid))


def end_account_sessions(call: Call) -> Reply:
    account_id = _account_id(call)
    return _ended_reply(call, account_id, call.admin.sessions.end_all(call.actor, account_id))


ROUTES = (
    Route("GET", "/accounts", "listAccounts",
          "List accounts, or search by #id or part of a username; ID numbers are shown masked only. A phone or "
          "ID number is refused here (422): personal data stays out of URLs, use searchAccounts",
          Permission.ACCOUNTS_READ, list_accounts,
          (200, AccountPage, "One page of accounts; next_cursor and a Link rel=next when more"), params=AccountList),
    Route("POST", "/accounts/search", "searchAccounts",
          "Search accounts by a mainland mobile number or a full ID number (exact, through their blind indexes), "
          "#id or part of a username; ID numbers are shown masked only. Look-ups by phone or ID number are audited",
          Permission.ACCOUNTS_READ, search_accounts, (200, AccountPage, "One page of accounts"),
          request=AccountSearch, errors=ERRORS),
    Route("GET", "/accounts/{account_id}", "getAccount",
          "An account: state, level, factors, masked personal data, session count, consents",
          Permission.ACCOUNTS_READ, get_account, (200, AccountDetail, "The account"), params=AccountPath,
          errors=NOT_FOUND),
    Route("POST", "/accounts/{account_id}/lock", "lockAccount",
          "Lock an account (no logins, no token refreshes) and end its sessions; back-channel logout is sent to "
          "their clients. An administrator's account: superadmins only", Permission.ACCOUNTS_WRITE, lock_account,
          (200, AccountStatusChange, "Locked"), params=AccountPath, errors=(*NOT_FOUND, 409, *SIGNS)),
    Route("POST", "/accounts/{account_id}/unlock", "unlockAccount", "Unlock a locked account",
          Permission.ACCOUNTS_WRITE, unlock_account, (200, AccountStatusChange, "Active"), params=AccountPath,
          errors=(*NOT_FOUND, 409)),
    Route("POST", "/accounts/{account_id}/reset-mfa", "resetAccountSecondFactor",
          "Remove the account's authenticator (TOTP) and recovery codes", Permission.ACCOUNTS_WRITE,
          reset_account_mfa, (200, SecondFactorReset, "Reset"), params=AccountPath, errors=(*NOT_FOUND, 409)),
    Route("POST", "/accounts/{account_id}/reveal", "revealIdNumber",
          "The full ID number, for a stated reason; audited with a keyed hash of the reason (never its text)",
          Permission.ACCOUNTS_REVEAL, reveal_id_number, (200, IdNumberReveal, "The number"),
          request=RevealRequest, params=AccountPath, errors=NOT_FOUND),
    Route("GET", "/accounts/{account_id}/sessions", "listAccountSessions", "The account's live SSO sessions",
          Permission.SESSIONS_READ, list_account_sessions, (200, SsoSessionList, "Live sessions, oldest first"),
          params=AccountPath, errors=NOT_FOUND),
    Route("DELETE", "/accounts/{account_id}/sessions", "endAccountSessions",
          "End every session of the account; back-channel logout is sent to their clients",
          Permission.SESSIONS_WRITE, end_account_sessions, (200, SessionsEnded, "Ended"), params=AccountPath,
          errors=(*NOT_FOUND, *SIGNS)),
    Route("DELETE", "/accounts/{account_id}/sessions/{sid}", "endAccountSession",
          "End one session of the account; back-channel logout is sent to its clients", Permission.SESSIONS_WRITE,
          end_account_session, (200, SessionsEnded, "Ended"), params=SessionPath, errors=(*NOT_FOUND, *SIGNS)),
    Route("POST", "/subjects/reidentify", "reidentifySubject",
          "The account behind a portal's sub, for a lawful request (reason and requester); audited",
          Permission.ACCOUNTS_REVEAL, reidentify_subject, (200, Reidentification, "Match or no match"),
          request=ReidentifyRequest, errors=(*NOT_FOUND, 409)),
)
