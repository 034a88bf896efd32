"""Certificate login as one service (issue 11: the same shape as the other packages): the
rules the login page and mTLS mode apply, in the order they apply them — validate the
certificate against the registered CAs, check the holder's signature of the challenge,
resolve the legal person. The views render; the rules live here. Pure of Flask.
"""

from __future__ import annotations

from collections.abc import Sequence

from .legal import LegalPersonIdentity, LegalPersonService
from .proof import ProofFailure, check_possession
from .registry import CaService
from .sm2 import DEFAULT_SIGNER_ID
from .trust import ValidatedCertificate
from .validation import CertificateValidator


class CertificateLoginService:
    def __init__(self, cas: CaService, validator: CertificateValidator, legal: LegalPersonService, *,
                 production: bool) -> None:
        self._cas = cas
        self._validator = validator
        self._legal = legal
        self._production = production

    def validate(self, leaf: bytes, chain: Sequence[bytes] = ()) -> ValidatedCertificate:
        """RFC 5280 path validation to an enabled registered CA, revocation, identifier.
        Raises ``CertificateRejectedError`` with the specific reason."""
        return self._validator.validate(leaf, list(chain), self._cas.trusted(), production=self._production,
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
