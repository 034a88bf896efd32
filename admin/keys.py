"""Administration of token signing keys: list with state, rotate, retire (issue 6).
Each change drops this process's key cache; other instances pick it up within
``KeyCache.TTL`` (the next key is published ahead, so nothing fails meanwhile)."""

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

    def retire(self, actor: Actor, kid: str, *, unpublish: bool = False) -> SigningKey:
        """Retire one key ahead of schedule (``KeyService.retire``). Needs
        ``keys.write``. Raises ``KeyNotFoundError``, ``KeyAlreadyRetiredError``. Audit:
        ``admin.keys.retire``."""
        self._authorize(actor, Permission.KEYS_WRITE, "retire")
        row = self._keys.retire(kid, unpublish=unpublish)
        self._cache.invalidate()
        self._record(actor, "retire", details={"kid": kid, "alg": row.alg, "unpublish": unpublish})
        return row
