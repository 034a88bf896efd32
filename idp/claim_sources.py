"""What an account's claims are computed from, read in one query and cached per process
(issue 12, DESIGN.md §7: userinfo does at most one database read).

``ClaimSource`` holds the account's columns, its verified identity's, whether it has a
TOTP factor (for ``realname_level``) and its legal person's USCC and name: everything
``UserinfoService.values`` needs, so computing any set of claims costs no further read.
Personal data stays encrypted in it (as in the database); only what a response releases
is decrypted, per request.

The cache (``common.versions.VersionedCache``, prefix ``acct-ver``) is invalidated on every
instance by the commit of any change to these rows (``watch_claim_sources``): a locked
account, a new phone, a removed identity are seen by the next userinfo request anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, exists, select
from sqlalchemy.orm import Session

from certificates.models import LegalPerson
from common.db import current_session
from common.versions import ChangeWatch, VersionedCache
from realname.models import Identity, TotpFactor

from .models import Account

PREFIX = "acct-ver"


@dataclass(frozen=True, slots=True)
class ClaimSource:
    id: int
    kind: str
    status: str
    username: str | None
    updated_at: datetime
    name_enc: str | None
    phone_enc: str | None
    phone_verified_at: datetime | None
    # The verified identity (natural persons), encrypted as stored.
    id_number_enc: str | None
    proofing_level: str | None
    phone_bound: bool
    has_totp: bool
    # The legal person (organisations).
    uscc: str | None
    legal_person_name: str | None


def claim_source_cache() -> VersionedCache[int, ClaimSource | None]:
    return VersionedCache(PREFIX)


def read_claim_source(session: Session, account_id: int) -> ClaimSource | None:
    """One SELECT (account ⟕ identity ⟕ legal person, TOTP as EXISTS). Outside a
    transaction it runs on an autocommit connection: no BEGIN/ROLLBACK round trips and no
    ORM objects for a read-only hot path; inside one (issuance, tests, CLI) it reads
    through the session, so it sees the transaction's own writes."""
    stmt = (
        select(
            Account.id, Account.kind, Account.status, Account.username, Account.updated_at, Account.name_enc,
            Account.phone_enc, Account.phone_verified_at,
            Identity.id_number_enc, Identity.proofing_level, Identity.phone_bound_at,
            exists().where(TotpFactor.account_id == Account.id).label("has_totp"),
            LegalPerson.uscc, LegalPerson.name,
        )
        .outerjoin(Identity, Identity.account_id == Account.id)
        .outerjoin(LegalPerson, LegalPerson.account_id == Account.id)
        .where(Account.id == account_id)
    )
    current = current_session(session)
    bind = current.get_bind()
    if isinstance(bind, Engine) and not current.in_transaction():
        with bind.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            row = conn.execute(stmt).first()
    else:
        row = current.execute(stmt).first()
    if row is None:
        return None
    return ClaimSource(
        id=row[0], kind=row[1], status=row[2], username=row[3], updated_at=row[4], name_enc=row[5],
        phone_enc=row[6], phone_verified_at=row[7], id_number_enc=row[8], proofing_level=row[9],
        phone_bound=row[10] is not None, has_totp=bool(row[11]), uscc=row[12], legal_person_name=row[13],
    )


def watch_claim_sources(changes: ChangeWatch) -> None:
    """Every row a ``ClaimSource`` is read from changes the account's version."""
    changes.watch(Account, PREFIX, lambda row: row.id)
    changes.watch(Identity, PREFIX, lambda row: row.account_id)
    changes.watch(TotpFactor, PREFIX, lambda row: row.account_id)
    changes.watch(LegalPerson, PREFIX, lambda row: row.account_id)
