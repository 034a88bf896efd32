"""The rules every operator command follows, shared by config/ and admin/: the command
owns the transaction (STYLE.md: services flush, never commit), and every operator error
speaks one style, ``error: …`` on stderr with exit code 2 (issue 11 defect 7)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import IO, Any

import click
from click.exceptions import NoArgsIsHelpError

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


class OperatorUsageError(click.UsageError):
    """A usage error (missing option, bad value, unknown command) printed as the domain
    errors are, ``error: …``, plus one line naming the command's help, instead of
    click's usage block and ``Error: …``. Exit code 2, as click's."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", file=file, err=True)
        ctx = self.ctx
        if ctx is not None and ctx.command.get_help_option(ctx) is not None:
            option = max(ctx.command.get_help_option_names(ctx), key=len)
            click.echo(f"Try '{ctx.command_path} {option}' for help.", file=file, err=True)


@contextmanager
def _operator_errors(ctx: click.Context | None) -> Iterator[None]:
    try:
        yield
    except (OperatorUsageError, NoArgsIsHelpError):
        # Already restyled by an inner command, or a bare group name, which shows the
        # group's help as before.
        raise
    except click.UsageError as exc:
        # format_message, not message: it names the parameter ("Invalid value for '--x'").
        raise OperatorUsageError(exc.format_message(), exc.ctx or ctx) from exc
    except click.FileError as exc:
        # A lazily opened output file (click.File("w")): bad input too, so exit 2 (click: 1).
        raise OperatorUsageError(exc.format_message(), ctx) from exc


class OperatorErrorStyle(click.Command):
    """Base of the operator commands and groups: errors raised while parsing or running
    them use the operator error style. A group catches its subcommands' errors too."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        with _operator_errors(parent):
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        with _operator_errors(ctx):
            return super().invoke(ctx)


class OperatorCommand(OperatorErrorStyle):
    """An operator command: the ``command_class`` of the operator groups
    (``admin.cli.OperatorGroup``), or ``cls=`` of a top-level command."""
