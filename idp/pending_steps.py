"""Short-lived steps of a browser journey kept in the shared store (issue 11): the parked
authorization request, a registration waiting for its SMS code, a login waiting for its
second factor, a logout waiting for confirmation. One implementation for all of them.

Every record is encrypted (it may hold personal data: a login_hint, a name, an ID number,
a phone number, a password hash), bound by its associated data to its kind and id so one
record cannot be swapped for another, and bound to the browser that started it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag

from common.crypto import FieldCipher, constant_time_equals, random_token
from common.store import Store

# The record's key for the browser that saved it (the "bid" of the signed UI cookie).
OWNER = "bid"
MAX_ID_LENGTH = 64


@dataclass(frozen=True)
class StepKind:
    """What a step is: the prefix of its store key and of its encryption label, and how
    long it lives."""

    prefix: str
    ttl: int  # seconds; every save or update starts it again


# Store keys are "<prefix>:<id>", labels "<prefix>.<id>": the interaction store's format
# from before issue 11, so authorization requests in flight survive the deploy that
# brought this module. Deviation: the registration and second-factor steps were labelled
# with their kind only ("pending.register"), not their id; records an older release wrote
# (at most ten minutes old) no longer decrypt and read as expired, so a citizen halfway
# through registering or through a second-factor login during that deploy starts again.
# Logout requests were kept unencrypted; an older one likewise reads as none (the logout
# then goes ahead without returning to the portal).
INTERACTION = StepKind("interaction", 900)
REGISTRATION = StepKind("pending:register", 600)
SECOND_FACTOR = StepKind("pending:mfa", 600)
LOGOUT_REQUEST = StepKind("logout-req", 600)
KINDS = (INTERACTION, REGISTRATION, SECOND_FACTOR, LOGOUT_REQUEST)


class PendingStepStore:
    """Save, load, update, take and drop encrypted, browser-bound step records (JSON
    objects). A missing, expired, tampered or foreign record reads as None: the caller
    shows its "expired" page and the citizen starts the step again."""

    def __init__(self, store: Store, cipher: FieldCipher) -> None:
        self._store = store
        self._cipher = cipher

    def save(self, kind: StepKind, data: Mapping[str, Any], *, browser: str) -> str:
        """Park ``data`` for ``browser`` for ``kind.ttl`` seconds; returns the new id (192
        random bits, safe to put in a URL)."""
        if not browser:
            raise ValueError("a pending step needs the browser it belongs to")
        step_id = random_token(24)
        self._write(kind, step_id, {**data, OWNER: browser})
        return step_id

    def load(self, kind: StepKind, step_id: str | None, *, browser: str) -> dict[str, Any] | None:
        """The record (with its ``OWNER`` entry), only for the browser that saved it."""
        if not self._well_formed(step_id):
            return None
        return self._open(kind, str(step_id), self._store.get(self._key(kind, str(step_id))), browser)

    def take(self, kind: StepKind, step_id: str | None, *, browser: str) -> dict[str, Any] | None:
        """Load and end the step in one atomic store operation, for a single-use step. A
        record of another browser ends too: its id has been seen by this one."""
        if not self._well_formed(step_id):
            return None
        return self._open(kind, str(step_id), self._store.consume(self._key(kind, str(step_id))), browser)

    def update(self, kind: StepKind, step_id: str, record: Mapping[str, Any]) -> None:
        """Write back a record ``load`` returned, changed; its lifetime starts again."""
        if not record.get(OWNER):
            raise ValueError("update takes a record that load returned")
        self._write(kind, step_id, record)

    def drop(self, kind: StepKind, step_id: str) -> None:
        if self._well_formed(step_id):
            self._store.delete(self._key(kind, step_id))

    @staticmethod
    def _well_formed(step_id: str | None) -> bool:
        # Ids come from URLs and forms: nothing longer than ours reaches the store.
        return bool(step_id) and len(str(step_id)) <= MAX_ID_LENGTH

    @staticmethod
    def _key(kind: StepKind, step_id: str) -> str:
        return f"{kind.prefix}:{step_id}"

    @staticmethod
    def _label(kind: StepKind, step_id: str) -> str:
        return f"{kind.prefix}.{step_id}"

    def _write(self, kind: StepKind, step_id: str, record: Mapping[str, Any]) -> None:
        blob = self._cipher.encrypt(json.dumps(dict(record)), self._label(kind, step_id))
        self._store.set(self._key(kind, step_id), blob.encode(), kind.ttl)

    def _open(self, kind: StepKind, step_id: str, raw: bytes | None, browser: str) -> dict[str, Any] | None:
        if raw is None:
            return None
        try:
            record = json.loads(self._cipher.decrypt(raw.decode(), self._label(kind, step_id)))
        except (ValueError, UnicodeDecodeError, InvalidTag):
            # Not ours, another kind's or id's, written under a retired key or by an older
            # release: as if expired.
            return None
        if not isinstance(record, dict):
            return None
        owner = record.get(OWNER)
        if not browser or not isinstance(owner, str) or not constant_time_equals(owner, browser):
            return None
        return record
