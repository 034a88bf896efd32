"""Administration of token signing keys: list with state, create missing ones, rotate
(on demand or when due), retire (issue 6). Each change drops this process's key cache;
other instances pick it up within ``KeyCache.TTL`` (the next key is published ahead, so
nothing fails meanwhile)."""

from __future__ import annotations

from common.audit import AuditTrail
from idp.keys import ALGORITHMS, KeyCache, KeyService
from idp.models import SigningKey

from .actor import Actor, AuditedOperations
from .roles import Permission


class KeyAdminService(AuditedOperations):
    area = "keys"

    def __init__(self, keys: KeyService, *, cache: KeyCache, audit: AuditTrail) -> None:
        super().__init__(audit)
        self._keys = keys
        self._cache = cache

    def all(self, actor: Actor) -> list[SigningKey]:
        """Every key (next, active, retired) by creation. Needs ``keys.read``."""
        self._authorize(actor, Permission.KEYS_READ, "list")
        return self._keys.all()

    def rotate(self, actor: Actor, alg: str | None = None) -> list[SigningKey]:
        """Promote the next key of ``alg`` (or of every algorithm); returns the newly
        active keys. Needs ``keys.write``. Raises ``KeyNotFoundError`` for an unknown
        algorithm. Audit: ``admin.keys.rotate``."""
        self._authorize(actor, Permission.KEYS_WRITE, "rotate")
        promoted = self._keys.rotate(alg)
        self._cache.invalidate()
        self._record(actor, "rotate", details={"alg": alg or ",".join(ALGORITHMS),
                                               "kids": [k.kid for k in promoted]})
        return promoted

    def rotate_if_due(self, actor: Actor, max_age_days: int) -> list[SigningKey]:
        """Rotate every algorithm whose active key is ``max_age_days`` old or older (the
        cron job, ``YIWANG_KEY_ROTATION_DAYS``); returns the newly active keys. Needs
        ``keys.write``. Audit: ``admin.keys.rotate`` with ``if_due``, only when a key was
        rotated (a run with nothing due changes nothing)."""
        self._authorize(actor, Permission.KEYS_WRITE, "rotate")
        promoted = self._keys.rotate_if_due(max_age_days)
        if promoted:
            self._cache.invalidate()
            self._record(actor, "rotate", details={"alg": ",".join(k.alg for k in promoted),
                                                   "kids": [k.kid for k in promoted], "if_due": True})
        return promoted

    def ensure(self, actor: Actor) -> bool:
        """Create the missing active/next key of every algorithm (``KeyService.ensure_keys``,
        idempotent); True when it created any. Needs ``keys.write``. Audit:
        ``admin.keys.ensure`` with the new key ids, only when it created keys."""
        self._authorize(actor, Permission.KEYS_WRITE, "ensure")
        before = {k.kid for k in self._keys.all()}
        created = self._keys.ensure_keys()
        if created:
            self._cache.invalidate()
            self._record(actor, "ensure", details={"kids": [k.kid for k in self._keys.all() if k.kid not in before]})
        return created

    def retire(self, actor: Actor, kid: str, *, unpublish: bool = False) -> SigningKey:
        """Retire one key ahead of schedule (``KeyService.retire``). Needs
        ``keys.write``. Raises ``KeyNotFoundError``, ``KeyAlreadyRetiredError``. Audit:
        ``admin.keys.retire``."""
        self._authorize(actor, Permission.KEYS_WRITE, "retire")
        row = self._keys.retire(kid, unpublish=unpublish)
        self._cache.invalidate()
        self._record(actor, "retire", details={"kid": kid, "alg": row.alg, "unpublish": unpublish})
        return row
