"""The audit trail as administrators use it (issue 6, 电子监察): search, export, chain
status, on-demand verification and alerts, each checked against ``audit.read``. Reading
the trail is itself audited (``admin.audit.search`` / ``.export`` / ``.verify``) with the
filters used, which ``AuditQuery.validate`` keeps free of personal data."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from common.audit import CHECKPOINT_TYP, AuditTrail, PruneResult, VerificationReport, prune_trail, write_checkpoint
from common.clock import Clock
from idp.keys import KeyService

from .actor import Actor, AuditedOperations
from .audit import VERIFY_ACTION, Alert, AuditAdminService, AuditPage, AuditQuery, TrailStatus, checkpoint_verifier
from .errors import AdminForbiddenError
from .roles import Permission, Role

# The retention event keeps the name the trail has always used (common.audit.prune_trail,
# SIEM filters); its actor is the administrator who pruned.
PRUNE_ACTION = "audit.prune"
# So do the scheduled checkpoint and the scheduled verification (cron: ``flask audit
# checkpoint`` / ``flask audit verify --record``).
CHECKPOINT_ACTION = "audit.checkpoint"

# At most this many broken links are named in the ``admin.audit.verify`` event; the
# report itself lists them all.
_BROKEN_IN_EVENT = 10


class AuditTrailOperations(AuditedOperations):
    area = "audit"

    def __init__(self, trail: AuditAdminService, *, keys: KeyService, issuer: str, audit: AuditTrail,
                 session: Session, clock: Clock, sign: Callable[[dict[str, Any], dict[str, Any]], str]) -> None:
        super().__init__(audit)
        self._trail = trail
        self._keys = keys
        self._sign = sign
        self._issuer = issuer
        self._session = session
        self._clock = clock

    def search(self, actor: Actor, query: AuditQuery, *, cursor: str | None = None, limit: int = 50) -> AuditPage:
        """One page of events, newest first (``AuditAdminService.search``). Needs
        ``audit.read``. Raises ``AuditQueryError``. Audit: ``admin.audit.search`` with the
        filters, whether it was a later page and how many events it returned."""
        self._authorize(actor, Permission.AUDIT_READ, "search")
        page = self._trail.search(query, cursor=cursor, limit=limit)
        self._record(actor, "search", details={**query.as_details(), "next_page": cursor is not None,
                                               "events": len(page.events)})
        return page

    def export(self, actor: Actor, query: AuditQuery) -> Iterator[str]:
        """Matching events as JSON lines, oldest first, streamed. Needs ``audit.read``.
        Raises ``AuditQueryError`` before the first line. Audit: ``admin.audit.export``
        with the filters, recorded when the export starts (a stream cut short was still
        an export)."""
        self._authorize(actor, Permission.AUDIT_READ, "export")
        lines = self._trail.export(query)
        self._record(actor, "export", details=query.as_details())
        return lines

    def status(self, actor: Actor) -> TrailStatus:
        """Cheap summary: chains, events kept, last checkpoint and verification. Needs
        ``audit.read``. Not audited (no event content is read)."""
        self._authorize(actor, Permission.AUDIT_READ, "status")
        return self._trail.status()

    def alerts(self, actor: Actor) -> list[Alert]:
        """Active alerts (``AuditAdminService.alerts``). Needs ``audit.read``. Not audited:
        counts over pseudonymous keys, polled by the console's navigation."""
        self._authorize(actor, Permission.AUDIT_READ, "alerts")
        return self._trail.alerts()

    def verify(self, actor: Actor, *, archived: Sequence[str] = (), scheduled: bool = False) -> VerificationReport:
        """Walk every chain now against the database checkpoints and ``archived`` ones
        (JWS lines kept outside the database: ``flask audit verify --checkpoint``). Reads
        the whole trail: expensive, run on demand or from cron only. Needs ``audit.read``.
        Audit: ``admin.audit.verify`` (on demand) or ``audit.verify`` (``scheduled``, the
        cron run), outcome ``error`` with the first problem as reason when the trail is
        broken; the status summary shows the latest of either."""
        self._authorize(actor, Permission.AUDIT_READ, "verify")
        report = self._trail.verify(checkpoint_verifier(self._keys, self._issuer), archived)
        first = report.first_broken
        broken = sorted(report.broken, key=lambda b: (b.chain, b.seq))[:_BROKEN_IN_EVENT]
        self._audit.record(VERIFY_ACTION if scheduled else self._action("verify"), actor=actor.audit_id, ip=actor.ip,
                           outcome="ok" if report.ok else "error", reason=first.problem if first else None,
                           details={"events": report.events, "chains": report.chains,
                                    "checkpoints": report.checkpoints, "broken_chains": len(report.broken),
                                    "archived_checkpoints": report.archived_checkpoints,
                                    "broken": [f"{b.chain}:{b.seq}:{b.problem}" for b in broken]})
        return report

    def checkpoint(self, actor: Actor, *, archive: Callable[[str], None] | None = None) -> tuple[int, datetime, str]:
        """Sign every chain head with the active signing key and store the checkpoint;
        ``archive`` receives the JWS before the caller commits (a copy outside the
        database that the attacker cannot delete). Policy: it signs with the provider's
        key, so it is a superadmin's (or the operator's cron) act. Raises
        ``AdminForbiddenError``, ``SigningKeyUnavailableError``. Audit:
        ``audit.checkpoint``. Returns (id, at, jws)."""
        if Role.SUPERADMIN.value not in actor.roles:
            raise AdminForbiddenError(permission=Role.SUPERADMIN.value, action=CHECKPOINT_ACTION)
        row = write_checkpoint(self._session, clock=self._clock,
                               sign=lambda claims: self._sign({"typ": CHECKPOINT_TYP}, {"iss": self._issuer, **claims}))
        if archive is not None:
            archive(row.jws)
        self._audit.record(CHECKPOINT_ACTION, actor=actor.audit_id, ip=actor.ip,
                           details={"checkpoint_id": row.id, "archived": archive is not None})
        return row.id, row.at, row.jws

    def prune(self, actor: Actor, *, before: datetime) -> PruneResult:
        """Retention: delete each chain's events up to the newest signed checkpoint at or
        before ``before`` (``common.audit.prune_trail``; the caller checks ``before``
        against the retention period). Policy: deleting audit history is a superadmin's
        decision, there is no permission for it below that. Raises
        ``AdminForbiddenError``, ``AuditTrailBrokenError`` (nothing deleted). Audit:
        ``audit.prune`` with the cut-off, the checkpoint and the counts, even when
        nothing qualified."""
        if Role.SUPERADMIN.value not in actor.roles:
            raise AdminForbiddenError(permission=Role.SUPERADMIN.value, action=PRUNE_ACTION)
        result = prune_trail(self._session, before=before, checkpoint_claims=checkpoint_verifier(self._keys, self._issuer),
                             clock=self._clock)
        self._audit.record(PRUNE_ACTION, actor=actor.audit_id, ip=actor.ip,
                           details={"before": before.isoformat(), "checkpoint_id": result.checkpoint_id,
                                    "events": result.events, "chains": len(result.chains)})
        return result
