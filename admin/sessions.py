"""Administration of citizens' SSO sessions: list an account's live sessions, end one or
all (issue 6). Ending a session notifies its relying parties exactly as the citizen's own
logout does (``idp.views.pages._finish_logout``): one back-channel logout delivery per
client with a logout URI (OIDC Back-Channel Logout 1.0 §2.5-§2.7), recorded in the
transaction and sent once it has committed (``deliver``); failures stay pending for
``flask logout deliver``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from common.audit import AuditTrail
from idp.accounts import AccountService
from idp.errors import AccountNotFoundError
from idp.logout import LogoutService
from idp.models import Account, LogoutDelivery
from idp.sessions import SessionService, SsoSession

from .actor import Actor, AuditedOperations
from .errors import AdminNotFoundError, ProtectedAccountError, SessionNotFoundError
from .roles import Permission, Role


@dataclass(frozen=True)
class EndedSessions:
    """Sessions just ended and the back-channel logout deliveries they scheduled (to be
    sent with ``SessionAdminService.deliver`` after the transaction commits)."""

    sids: tuple[str, ...]
    deliveries: tuple[LogoutDelivery, ...]

    def __len__(self) -> int:
        return len(self.sids)


NOTHING_ENDED = EndedSessions((), ())
# Account ids are BIGINT: anything larger is no account (and never reaches the database).
MAX_ACCOUNT_ID = 2**63 - 1


def check_target(actor: Actor, target_roles: frozenset[str], action: str) -> None:
    """Raise ``ProtectedAccountError`` when the target account holds an administrator
    role and the actor is no superadmin (see the error's policy)."""
    if target_roles and Role.SUPERADMIN.value not in actor.roles:
        raise ProtectedAccountError("target holds an administrator role", permission=Role.SUPERADMIN.value,
                                    action=action)


class SessionAdminService(AuditedOperations):
    area = "sessions"

    def __init__(self, *, accounts: AccountService, sessions: SessionService, logout: LogoutService,
                 roles_of: Callable[[int], frozenset[str]], audit: AuditTrail) -> None:
        super().__init__(audit)
        self._accounts = accounts
        self._sessions = sessions
        self._logout = logout
        self._roles_of = roles_of

    def _account(self, account_id: int) -> Account:
        if not 0 < account_id <= MAX_ACCOUNT_ID:
            raise AdminNotFoundError(f"account {account_id}", public_message="No such account.")
        try:
            return self._accounts.get(account_id)
        except AccountNotFoundError:
            raise AdminNotFoundError(f"account {account_id}", public_message="No such account.") from None

    def for_account(self, actor: Actor, account_id: int) -> list[SsoSession]:
        """The account's live SSO sessions, oldest first. Needs ``sessions.read``.
        Raises ``AdminNotFoundError``."""
        self._authorize(actor, Permission.SESSIONS_READ, "list")
        self._account(account_id)
        return self._sessions.of_account(account_id)

    def live_count(self, account_id: int) -> int:
        """How many live sessions the account has. No permission check: a number shown
        with the account's detail, which needs ``accounts.read``."""
        return len(self._sessions.of_account(account_id))

    def end(self, actor: Actor, account_id: int, sid: str) -> EndedSessions:
        """End one session of the account and schedule its back-channel logouts. Needs
        ``sessions.write`` (and superadmin for an administrator's account). Raises
        ``AdminNotFoundError``, ``SessionNotFoundError``, ``ProtectedAccountError``.
        Audit: ``admin.sessions.end``. Flushes."""
        self._authorize(actor, Permission.SESSIONS_WRITE, "end")
        self._account(account_id)
        check_target(actor, self._roles_of(account_id), self._action("end"))
        sso = self._sessions.end_of_account(account_id, sid) if 0 < len(sid) <= 64 else None
        if sso is None:
            raise SessionNotFoundError(f"sid not live for account {account_id}")
        ended = self._notify([sso])
        self._record(actor, "end", target=f"account:{account_id}",
                     details={"sid": sso.sid, "clients": len(sso.clients), "deliveries": len(ended.deliveries)})
        return ended

    def end_all(self, actor: Actor, account_id: int) -> EndedSessions:
        """End every session of the account (see ``end``). Audit:
        ``admin.sessions.end_all`` with the number ended. Flushes."""
        self._authorize(actor, Permission.SESSIONS_WRITE, "end_all")
        self._account(account_id)
        check_target(actor, self._roles_of(account_id), self._action("end_all"))
        ended = self.end_all_unchecked(account_id)
        self._record(actor, "end_all", target=f"account:{account_id}",
                     details={"sessions": len(ended), "deliveries": len(ended.deliveries)})
        return ended

    def end_all_unchecked(self, account_id: int) -> EndedSessions:
        """End every session of the account with no permission check and no audit event
        of its own: for an operation that includes it and records it (locking)."""
        return self._notify(self._sessions.end_all_of_account(account_id))

    def _notify(self, ended: list[SsoSession]) -> EndedSessions:
        # Back-Channel Logout §2.5: every client of the session that registered a URI; the
        # sessions' tokens are revoked as at the citizen's own logout (issue 17).
        deliveries = self._logout.ended(ended)
        return EndedSessions(tuple(s.sid for s in ended), tuple(deliveries))

    def deliver(self, ended: EndedSessions) -> int:
        """Send the scheduled logout tokens now; call after the transaction that
        scheduled them has committed (like the citizen's logout), then commit again.
        Returns how many were delivered; failures are retried by ``flask logout
        deliver``. No permission check: the operation that ended the sessions had it."""
        return sum(1 for row in ended.deliveries if self._logout.deliver(row))
