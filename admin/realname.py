"""Administration of the real-name data (issue 11 defect 2): loading the local
authoritative registry, and re-encrypting personal data and signing keys under a new
data key. The rules are ``realname.importer``'s and the services' own; this module adds
the permission check and the audit event, which holds counts only, never a name, an ID
number or a phone number (PIPL Art. 51)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TextIO

from sqlalchemy.orm import Session

from common.audit import AuditTrail
from common.clock import Clock
from common.crypto import FieldCipher, KeyedHasher
from common.errors import ValidationError
from idp.accounts import AccountService
from idp.keys import KeyService
from realname.importer import ImportReport, RegistryImporter, RegistryRow, parse_csv
from realname.service import RealnameService

from .actor import Actor, AuditedOperations
from .roles import Permission


class RealnameAdminService(AuditedOperations):
    """Policy: loading the registry changes what citizens are verified against, the
    identity data user administrators look after, so it needs ``accounts.write``;
    re-encrypting under a new data key is key management, so it needs ``keys.write``
    (superadmins only)."""

    area = "realname"

    def __init__(self, session: Session, *, realname: RealnameService, accounts: AccountService, keys: KeyService,
                 hasher: KeyedHasher, cipher: FieldCipher, clock: Clock, audit: AuditTrail) -> None:
        super().__init__(audit)
        self._session = session
        self._realname = realname
        self._accounts = accounts
        self._keys = keys
        self._hasher = hasher
        self._cipher = cipher
        self._clock = clock

    def import_csv(self, actor: Actor, stream: TextIO) -> ImportReport:
        """Load registry records from CSV (``realname.importer.parse_csv``: invalid rows
        are counted and reported by line, never stored; re-imports update). Needs
        ``accounts.write``. Raises ``ValidationError`` when the file cannot be read as
        such a CSV. Audit: ``admin.realname.import_registry`` with the counts. Flushes."""
        self._authorize(actor, Permission.ACCOUNTS_WRITE, "import_registry")
        report = ImportReport()
        try:
            self._load(parse_csv(stream, today=self._clock.now().date(), report=report), report)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValidationError(str(exc), public_message=f"The CSV file cannot be read: {exc}") from None
        return self._recorded(actor, report)

    def import_rows(self, actor: Actor, rows: Iterable[RegistryRow]) -> ImportReport:
        """``import_csv`` for records already parsed (the development ``demo`` samples).
        Needs ``accounts.write``. Audit: ``admin.realname.import_registry``. Flushes."""
        self._authorize(actor, Permission.ACCOUNTS_WRITE, "import_registry")
        report = ImportReport()
        self._load(rows, report)
        return self._recorded(actor, report)

    def _load(self, rows: Iterable[RegistryRow], report: ImportReport) -> None:
        RegistryImporter(self._session, self._hasher, self._clock.now()).load(rows, report)

    def _recorded(self, actor: Actor, report: ImportReport) -> ImportReport:
        self._record(actor, "import_registry", details={
            "imported": report.imported, "updated": report.updated, "rejected": report.rejected})
        return report

    def rotate_data_keys(self, actor: Actor, *, batch: int) -> Iterator[int]:
        """Re-encrypt everything still under an old data key with the active one
        (``FieldCipher.active``): identities, TOTP secrets, account names and phones in
        batches of ``batch`` rows, then the signing keys. Yields the number of rows of
        each step, so the caller commits between them (short transactions while the
        service runs; a stopped run resumes where it stopped). Needs ``keys.write``
        (checked before the first batch). Audit: ``admin.realname.rotate_keys`` with the
        total and the active key id, in the last step's transaction."""
        self._authorize(actor, Permission.KEYS_WRITE, "rotate_keys")
        total = 0
        while changed := self._realname.reencrypt_batch(batch) + self._accounts.reencrypt_batch(batch):
            total += changed
            yield changed
        keys = self._keys.reencrypt()
        self._record(actor, "rotate_keys", details={"reencrypted": total + keys, "active_key": self._cipher.active})
        yield keys

    @property
    def active_key(self) -> str:
        """The id of the data key new ciphertexts use."""
        return self._cipher.active
