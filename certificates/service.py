"""Certificate login as one service (issue 11: the same shape as the other packages): the
rules the login page and mTLS mode apply, in the order they apply them — validate the
certificate against the registered CAs, check the holder's signature of the challenge,
resolve the legal person — and the login challenge those signatures answer. The views
render; the rules live here. Pure of Flask.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from common.crypto import constant_time_equals
from common.store import Store

from .legal import LegalPersonIdentity, LegalPersonService
from .proof import ProofFailure, check_possession
from .registry import CaService
from .settings import CertificateSettings
from .sm2 import DEFAULT_SIGNER_ID
from .trust import ValidatedCertificate
from .validation import CertificateValidator

MAX_CHALLENGE = 64


class CertificateLoginService:
    def __init__(self, cas: CaService, validator: CertificateValidator, legal: LegalPersonService, store: Store,
                 settings: CertificateSettings) -> None:
        self._cas = cas
        self._validator = validator
        self._legal = legal
        self._store = store
        self.settings = settings

    def new_challenge(self, owner: str) -> str:
        """A fresh challenge for the holder's key to sign, bound to the browser ``owner``.
        Hex: a challenge starting with "-" (urlsafe base64) is taken for an option by the
        signer tool's command line, and "-"/"_" break double-click selection."""
        challenge = secrets.token_hex(24)
        self._store.set(f"cert-challenge:{challenge}", owner.encode(), self.settings.challenge_ttl)
        return challenge

    def consume_challenge(self, challenge: str, owner: str) -> bool:
        """Single use, short-lived, and only for the browser it was shown to: a signature
        captured on one browser cannot log in on another."""
        if not challenge or len(challenge) > MAX_CHALLENGE:
            return False
        stored = self._store.consume(f"cert-challenge:{challenge}")
        return stored is not None and bool(owner) and constant_time_equals(stored.decode(), owner)

    def validate(self, leaf: bytes, chain: Sequence[bytes] = ()) -> ValidatedCertificate:
        """RFC 5280 path validation to an enabled registered CA, revocation, identifier.
        Raises ``CertificateRejectedError`` with the specific reason."""
        return self._validator.validate(leaf, list(chain), self._cas.trusted(), production=self.settings.production,
                                        disabled_cas=self._cas.disabled())

    def check_proof(self, validated: ValidatedCertificate, challenge: str, signature_b64: str) -> ProofFailure | None:
        """The holder's signature of the challenge (``certificates.proof``), SM2 with the
        signer ID the CA's profile names for its holders. Every other signer ID a registered
        CA uses is tried only to name a mismatch (``sm2_signer_id``) rather than report a
        wrong signature (GB/T 32918.2 §5.5)."""
        known = (DEFAULT_SIGNER_ID, *(i for ca in self._cas.trusted()
                                      for i in (ca.profile.sm2_holder_signer_id, ca.profile.sm2_signer_id)))
        return check_possession(validated.certificate, challenge, signature_b64,
                                signer_id=validated.ca.profile.sm2_holder_signer_id, other_ids=known)

    def resolve(self, validated: ValidatedCertificate) -> LegalPersonIdentity:
        """The legal person the certificate maps to, binding the credential on first use.
        Raises ``CertificateRejectedError`` (conflict, revoked credential, ambiguous code)."""
        return self._legal.resolve(validated)
