"""Logout notifications to relying parties: OIDC Back-Channel Logout 1.0 (signed logout
tokens POSTed server to server, recorded and retried) and the data Front-Channel Logout
1.0 needs (per-client iframe URLs)."""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.audit import AuditTrail
from common.clock import Clock
from common.crypto import random_token
from common.http import FetchError, http_request

from .clients import RegisteredClient
from .models import LogoutDelivery
from .sessions import SsoSession
from .tokens import TokenService

log = logging.getLogger(__name__)

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
MAX_ATTEMPTS = 6
LOGOUT_TOKEN_TTL = 120


@dataclass(frozen=True)
class PostResult:
    ok: bool
    status: str


# Back-Channel Logout §2.8 asks for no body; a 2xx answer longer than this is not read
# further and counts as a failed delivery (retried).
MAX_RESPONSE_BYTES = 64 * 1024


class FormPoster(Protocol):
    def __call__(self, url: str, data: dict[str, str], timeout: float, *, production: bool) -> PostResult: ...


def http_post_form(url: str, data: dict[str, str], timeout: float, *, production: bool) -> PostResult:
    """POST a form to a registered back-channel logout URI with the guarded client of
    ``common.http``. Never raises: a refusal or failure is a ``PostResult`` whose status
    says why (an HTTP status, ``refused``, ``unresolvable``, ``timeout``...).

    Security (SSRF): in production only https, and every address the host resolves to
    must be public; the connection goes to the vetted address (DNS rebinding) and a
    redirect is never followed (it could point anywhere, the internal network too)."""
    if production and urllib.parse.urlsplit(url).scheme != "https":
        return PostResult(False, "refused")
    body = urllib.parse.urlencode(data).encode()
    try:
        resp = http_request(url, production=production, body=body, content_type="application/x-www-form-urlencoded",
                            max_bytes=MAX_RESPONSE_BYTES, timeout=timeout)
    except FetchError as exc:
        log.info("backchannel logout not delivered", extra={"reason": exc.reason})
        return PostResult(False, exc.reason)
    # Back-Channel Logout §2.8: 200 OK (204 is also success in practice).
    return PostResult(resp.status in (200, 204), str(resp.status))


class LogoutService:
    def __init__(
        self,
        session: Session,
        *,
        clock: Clock,
        tokens: TokenService,
        issuer: str,
        client_lookup: Callable[[str], RegisteredClient | None],
        subject_of: Callable[[str, RegisteredClient], str],
        timeout: float,
        production: bool,
        post: FormPoster = http_post_form,
        audit: AuditTrail | None = None,
        frontchannel: bool = True,
        backchannel: bool = True,
    ) -> None:
        self._frontchannel = frontchannel
        self._backchannel = backchannel
        self._session = session
        self._clock = clock
        self._tokens = tokens
        self._issuer = issuer
        self._client = client_lookup
        self._subject_of = subject_of
        self._timeout = timeout
        self._production = production
        self._post = post
        self._audit = audit

    def ended(self, sessions: list[SsoSession], *, keep_offline: bool = True) -> list[LogoutDelivery]:
        """What follows the end of sessions (already removed from the store): their tokens
        are revoked (``TokenService.revoke_session``; offline_access grants survive a
        logout unless ``keep_offline`` is False) and one back-channel logout delivery is
        scheduled per client with a logout URI. Send the deliveries with ``deliver``
        once the transaction has committed. Flushes."""
        deliveries: list[LogoutDelivery] = []
        for sso in sessions:
            self._tokens.revoke_session(sso.account_id, sso.sid, keep_offline=keep_offline)
            deliveries += self.schedule_backchannel(sso)
        return deliveries

    def schedule_backchannel(self, sso: SsoSession) -> list[LogoutDelivery]:
        """One pending delivery per client of the session that registered a
        back-channel logout URI (none when the feature is off). Flushes."""
        if not self._backchannel:
            return []
        now = self._clock.now()
        rows = []
        for client_id in sso.clients:
            client = self._client(client_id)
            if client is None or not client.backchannel_logout_uri:
                continue
            row = LogoutDelivery(
                client_id=client_id,
                sid=sso.sid,
                subject=self._subject_of(sso.subject_seed, client),
                state="pending",
                attempts=0,
                created_at=now,
                next_attempt_at=now,
            )
            self._session.add(row)
            rows.append(row)
        self._session.flush()
        return rows

    def frontchannel_urls(self, sso: SsoSession) -> list[str]:
        """Front-Channel Logout §3: the client's URI with iss and sid (none when the
        feature is off)."""
        if not self._frontchannel:
            return []
        urls = []
        for client_id in sso.clients:
            client = self._client(client_id)
            if client is None or not client.frontchannel_logout_uri:
                continue
            parts = urllib.parse.urlsplit(client.frontchannel_logout_uri)
            query = urllib.parse.parse_qsl(parts.query) + [("iss", self._issuer), ("sid", sso.sid)]
            urls.append(urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query))))
        return urls

    def logout_token(self, client_id: str, subject: str, sid: str) -> str:
        """Back-Channel Logout §2.4: iss, aud, iat, exp, jti, events, sub and sid, no
        nonce; §2.4 header typ logout+jwt."""
        now = self._clock.timestamp()
        claims = {
            "iss": self._issuer,
            "aud": client_id,
            "iat": now,
            "exp": now + LOGOUT_TOKEN_TTL,
            "jti": random_token(16),
            "sub": subject,
            "sid": sid,
            "events": {BACKCHANNEL_EVENT: {}},
        }
        return self._tokens.sign_jwt({"typ": "logout+jwt"}, claims)

    def deliver(self, row: LogoutDelivery) -> bool:
        """Attempt one delivery now; on failure schedule a retry with exponential backoff
        until ``MAX_ATTEMPTS``. Returns True when delivered."""
        client = self._client(row.client_id)
        now = self._clock.now()
        row.attempts += 1
        if client is None or not client.backchannel_logout_uri:
            row.state, row.last_status = "failed", "client-gone"
            self._audited(row, "error", "client-gone")
            return False
        token = self.logout_token(row.client_id, row.subject, row.sid)
        result = self._post(client.backchannel_logout_uri, {"logout_token": token}, self._timeout,
                            production=self._production)
        row.last_status = result.status
        self._audited(row, "ok" if result.ok else "error", None if result.ok else result.status)
        if result.ok:
            row.state, row.delivered_at = "delivered", now
            return True
        if row.attempts >= MAX_ATTEMPTS:
            row.state = "failed"
            log.warning("backchannel logout given up", extra={"client_id": row.client_id, "status": result.status})
        else:
            row.next_attempt_at = now + timedelta(seconds=30 * 2 ** (row.attempts - 1))
        return False

    def _audited(self, row: LogoutDelivery, outcome: str, reason: str | None) -> None:
        if self._audit is not None:
            self._audit.record("logout.delivery", actor="system", target=f"delivery:{row.id}", client_id=row.client_id,
                               outcome=outcome, reason=reason, details={"attempt": row.attempts})

    def deliver_due(self, limit: int = 100) -> tuple[int, int]:
        """Retry deliveries that are due. Returns (delivered, attempted). Rows are locked
        with SKIP LOCKED on PostgreSQL so several instances never send one twice at once."""
        stmt = (
            select(LogoutDelivery)
            .where(LogoutDelivery.state == "pending", LogoutDelivery.next_attempt_at <= self._clock.now())
            .order_by(LogoutDelivery.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = list(self._session.scalars(stmt))
        delivered = sum(1 for row in rows if self.deliver(row))
        self._session.flush()
        return delivered, len(rows)
