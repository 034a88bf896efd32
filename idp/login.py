"""Completing a login (issue 11): the one place that decides what a successful
authentication does to the browser's SSO session, whatever the path (password, second
factor, registration, certificate; federated logins and passkeys later).

- The same account authenticating again on a browser that has its live session keeps the
  session's ``sid`` and the portals that joined it: only the cookie value rotates (OWASP
  ASVS 5 §7.2.4, no fixation), so a later logout still reaches every portal (OIDC
  Back-Channel Logout 1.0 §2.7). The authentication time moves to now; the methods are
  those of this authentication (RFC 8176), or added to the session's for a step-up.
- Another account logging in on that browser ends the old session like a logout: its
  tokens are revoked and its portals get back-channel logout tokens (the caller sends
  them after commit).
- One ``login.success`` audit event per completed login (with the path and methods),
  and the login metric.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from common.audit import AuditTrail

from .logout import LogoutService
from .models import LogoutDelivery
from .sessions import SessionService, SsoSession

LoginPath = Literal["password", "second_factor", "registration", "certificate", "step_up"]


class _LoginMetrics(Protocol):
    def login(self, ok: bool) -> None: ...


@dataclass(frozen=True)
class LoginRequest:
    """Who authenticated, how, and from where."""

    account_id: int
    subject_seed: str
    methods: tuple[str, ...]  # RFC 8176 amr values of this authentication
    path: LoginPath
    cookie: str | None  # the browser's current SSO cookie, if any
    ip: str | None = None
    client_id: str | None = None  # the portal the login is for, when there is one
    context: Mapping[str, Any] = field(default_factory=dict)  # e.g. the certificate's CA
    details: Mapping[str, Any] = field(default_factory=dict)  # extra audit details (no personal data)


@dataclass(frozen=True)
class CompletedLogin:
    cookie: str  # the new cookie value to set
    session: SsoSession
    kept_sid: bool  # the browser's session continued (same account)
    deliveries: list[LogoutDelivery]  # back-channel logouts of an ended session: send after commit


class LoginCompletion:
    def __init__(self, *, sessions: SessionService, logout: LogoutService, audit: AuditTrail,
                 metrics: _LoginMetrics, acr_of: Callable[[int, list[str]], str]) -> None:
        self._sessions = sessions
        self._logout = logout
        self._audit = audit
        self._metrics = metrics
        self._acr_of = acr_of

    def complete(self, login: LoginRequest) -> CompletedLogin:
        """Start or continue the SSO session for ``login`` and audit it. Flushes; the
        caller commits, then sends ``deliveries`` and sets ``cookie``."""
        current = self._sessions.get(login.cookie)
        deliveries: list[LogoutDelivery] = []
        kept: tuple[str, SsoSession] | None = None
        if current is not None and current.account_id == login.account_id:
            amr = list(dict.fromkeys([*current.amr, *login.methods])) if login.path == "step_up" else list(login.methods)
            kept = self._sessions.renew(login.cookie, amr=amr, acr=self._acr_of(login.account_id, amr),
                                        context=dict(login.context) if login.path != "step_up" else None,
                                        fresh=login.path != "step_up")
        elif current is not None:
            ended = self._sessions.end(login.cookie)
            if ended is not None:
                # A different person on this browser: the previous one is logged out
                # everywhere (their tokens and their portals' sessions end).
                deliveries = self._logout.ended([ended])
                self._audit.record("logout", actor=f"account:{ended.account_id}", ip=login.ip,
                                   details={"reason": "other_account_login", "sid": ended.sid})
        if kept is not None:
            cookie, session = kept
        else:
            amr = list(login.methods)
            cookie, session = self._sessions.create(account_id=login.account_id, subject_seed=login.subject_seed,
                                                    amr=amr, acr=self._acr_of(login.account_id, amr),
                                                    context=dict(login.context))
        self._audit.record("login.success", actor=f"account:{login.account_id}", client_id=login.client_id,
                           ip=login.ip, details={"path": login.path, "amr": session.amr, "acr": session.acr,
                                                 "sid_kept": kept is not None, **login.details})
        self._metrics.login(True)
        return CompletedLogin(cookie, session, kept is not None, deliveries)
