"""The audit trail as administrators use it (issue 6, 电子监察): search, export, chain
status, on-demand verification and alerts, each checked against ``audit.read``. Reading
the trail is itself audited (``admin.audit.search`` / ``.export`` / ``.verify``) with the
filters used, which ``AuditQuery.validate`` keeps free of personal data."""

from __future__ import annotations

from collections.abc import Iterator

from common.audit import AuditTrail, VerificationReport
from idp.keys import KeyService

from .actor import Actor, AuditedOperations
from .audit import Alert, AuditAdminService, AuditPage, AuditQuery, TrailStatus, checkpoint_verifier
from .roles import Permission

# At most this many broken links are named in the ``admin.audit.verify`` event; the
# report itself lists them all.
_BROKEN_IN_EVENT = 10


class AuditTrailOperations(AuditedOperations):
    area = "audit"

    def __init__(self, trail: AuditAdminService, *, keys: KeyService, issuer: str, audit: AuditTrail) -> None:
        super().__init__(audit)
        self._trail = trail
        self._keys = keys
        self._issuer = issuer

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

    def verify(self, actor: Actor) -> VerificationReport:
        """Walk every chain now against the database checkpoints (archived checkpoints
        live outside the database: ``flask audit verify --checkpoint``). Reads the whole
        trail: expensive, run on demand only. Needs ``audit.read``. Audit:
        ``admin.audit.verify``, outcome ``error`` with the first problem as reason when
        the trail is broken; the status summary shows it as the last verification."""
        self._authorize(actor, Permission.AUDIT_READ, "verify")
        report = self._trail.verify(checkpoint_verifier(self._keys, self._issuer))
        first = report.first_broken
        broken = sorted(report.broken, key=lambda b: (b.chain, b.seq))[:_BROKEN_IN_EVENT]
        self._audit.record(self._action("verify"), actor=actor.audit_id, ip=actor.ip,
                           outcome="ok" if report.ok else "error", reason=first.problem if first else None,
                           details={"events": report.events, "chains": report.chains,
                                    "checkpoints": report.checkpoints, "broken_chains": len(report.broken),
                                    "broken": [f"{b.chain}:{b.seq}:{b.problem}" for b in broken]})
        return report
