"""Operator commands (``flask --app wsgi ...``), one module a command group. Each command
runs in one transaction: bad input prints a clear message, exits non-zero and writes
nothing. The helpers here are shared by every group."""

from __future__ import annotations

import json
from typing import Any

import click
from flask import Flask, current_app

from admin.actor import Actor
from admin.cli import admins_cli
from admin.service import AdminServices
from common.db import db
from idp.provider import Services


def _services() -> Services:
    services: Services = current_app.extensions["yiwang.provider"].services(db.session)
    return services


def _emit(as_json: bool, data: dict[str, Any] | list[Any], text: str) -> None:
    click.echo(json.dumps(data, ensure_ascii=False) if as_json else text)


def _cli_actor() -> Actor:
    return Actor.cli()


def _admin() -> AdminServices:
    """The audited admin operations (admin/service.py), as the console and the API use
    them: every command that changes state goes through them acting as ``_cli_actor()``,
    so the change is checked and recorded once, as ``admin:cli`` (issue 11 defect 2).
    The alert thresholds are the configured ones, as the console's and the API's."""
    return AdminServices(_services(), alert_thresholds=current_app.config["YIWANG_SETTINGS"].alert_thresholds())


def register_cli(app: Flask) -> None:
    """Add every operator command group to ``app.cli``. The group modules import the
    helpers above from this package, so they are imported here, not at the top."""
    from . import audit, certificates, clients, demo, keys, logout, realname, subjects, users

    for group in (clients.clients_cli, users.users_cli, keys.keys_cli, logout.logout_cli, realname.realname_cli,
                  certificates.certificates_cli, subjects.subjects_cli, audit.audit_cli, demo.demo, admins_cli):
        app.cli.add_command(group)
