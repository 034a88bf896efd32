"""The transaction rule for operator commands, shared by config/ and admin/ (STYLE.md:
the command owns the transaction; services flush, never commit)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import click

from .db import db
from .errors import DomainError


def transactional(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Commit when the command succeeds; roll back and exit 2 with the error's public
    message on a domain error, so bad input writes nothing."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            result = fn(*args, **kwargs)
            db.session.commit()
            return result
        except DomainError as exc:
            db.session.rollback()
            click.echo(f"error: {exc.public_message}", err=True)
            sys.exit(2)
        except BaseException:
            db.session.rollback()
            raise

    return wrapper
