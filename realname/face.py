"""Face / liveness verification (cn-l3): an adapter interface for an external service
that compares a live capture with the authoritative portrait (公安部人像比对 or a
provincial equivalent). Yiwang has no implementation of its own and does not take
captures: a deployment plugs in the service it is licensed to use. Until one is
configured, cn-l3 requests are answered with unmet_authentication_requirements."""

from __future__ import annotations

import enum
from typing import Protocol


class FaceOutcome(enum.Enum):
    MATCH = "match"
    NO_MATCH = "no_match"
    LIVENESS_FAILED = "liveness_failed"
    UNAVAILABLE = "unavailable"


class FaceVerifier(Protocol):
    name: str

    def start(self, id_number: str, name: str, return_url: str) -> str:
        """Begin a session at the external service; returns the URL to send the user to."""
        ...

    def result(self, session_ref: str) -> FaceOutcome:
        """The outcome the service reports for a finished session (server to server)."""
        ...
