"""Assurance levels and authentication context (DESIGN.md §5; OIDC Core §2 acr/amr,
RFC 8176 amr values). Pure: no Flask, no database."""

from __future__ import annotations

LEVELS = ("cn-l0", "cn-l1", "cn-l2", "cn-l3", "cn-l4")


class UnknownLevelError(ValueError):
    pass


def rank(level: str) -> int:
    try:
        return LEVELS.index(level)
    except ValueError:
        raise UnknownLevelError(level) from None


def choose_acr(session_level: str, requested: list[str]) -> str | None:
    """The ``acr`` to emit for a session of ``session_level`` when the client asked for
    ``requested`` (acr_values, or the ``claims`` parameter's acr values).

    Policy (DESIGN.md §5): requested values are minimums. The answer is the highest
    requested level the session meets; None when it meets none of them, which the caller
    must turn into an error or a step-up, never a silently lower ``acr``. Unknown values
    are ignored; when nothing known was requested the session's own level is emitted.
    """
    known = [v for v in requested if v in LEVELS]
    if not known:
        return session_level
    have = rank(session_level)
    met = [v for v in known if rank(v) <= have]
    if not met:
        return None
    return max(met, key=rank)
