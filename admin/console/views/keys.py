"""Signing keys: list with state and publication, rotate, retire. Operations are calls
to ``admin.keys.KeyAdminService``."""

from __future__ import annotations

from typing import Any

from flask import request, url_for

from admin.roles import Permission
from common.db import db
from idp.keys import ALGORITHMS

from .. import bp
from ..web import admin_services, current_admin, render, requires, see_other, services


@bp.get("/keys")
@requires(Permission.KEYS_READ)
def keys() -> Any:
    rows = admin_services().keys.all(current_admin().actor)
    # The public key set is public (RFC 7517 §5, /jwks.json): no permission of its own.
    published = {k["kid"] for k in services().keys.jwks()["keys"]}
    return render("admin/keys.html", keys=list(reversed(rows)), published=published, algorithms=ALGORITHMS,
                  done=request.args.get("done"))


@bp.post("/keys/rotate")
@requires(Permission.KEYS_WRITE)
def keys_rotate() -> Any:
    alg = request.form.get("alg") or None
    admin_services().keys.rotate(current_admin().actor, alg if alg in ALGORITHMS else None)
    db.session.commit()
    return see_other(url_for("console.keys", done="rotated"))


@bp.post("/keys/<kid>/retire")
@requires(Permission.KEYS_WRITE)
def key_retire(kid: str) -> Any:
    admin_services().keys.retire(current_admin().actor, kid[:64], unpublish=request.form.get("unpublish") == "yes")
    db.session.commit()
    return see_other(url_for("console.keys", done="retired"))
