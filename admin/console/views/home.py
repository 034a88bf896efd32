"""The console's overview page."""

from __future__ import annotations

from typing import Any

from admin.roles import Permission

from .. import bp
from ..web import ANY_ADMIN, current_admin, render, requires

_WRITES = frozenset(p for p in Permission if not p.value.endswith(".read"))


@bp.get("/")
@requires(ANY_ADMIN)
def home() -> Any:
    admin = current_admin()
    return render("admin/home.html", read_only=not (admin.permissions & _WRITES))
