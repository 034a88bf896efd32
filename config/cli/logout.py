"""``flask logout deliver``: retry due back-channel logout deliveries (OIDC Back-Channel
Logout 1.0 §2.5)."""

from __future__ import annotations

import click

from admin.cli import OperatorGroup
from common.cli import transactional

from . import _emit, _services

logout_cli = OperatorGroup("logout", help="Logout notifications.")


@logout_cli.command("deliver")
@click.option("--json", "as_json", is_flag=True)
@transactional
def logout_deliver(as_json: bool) -> None:
    """Retry back-channel logout deliveries that are due (run from cron or a timer)."""
    delivered, attempted = _services().logout.deliver_due()
    _emit(as_json, {"delivered": delivered, "attempted": attempted}, f"delivered {delivered} of {attempted}")
