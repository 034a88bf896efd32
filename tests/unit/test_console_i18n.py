"""Every console text exists in Chinese and English (issue 6: the console speaks both)."""

from __future__ import annotations

import re
from pathlib import Path

from admin.console.i18n import MESSAGES
from admin.console.login import (
    IdTokenInvalidError,
    LoginStateError,
    NotAnAdministratorError,
    SecondFactorRequiredError,
    TokenExchangeError,
)
from admin.roles import Role

TEMPLATES = Path(__file__).resolve().parents[2] / "admin" / "console" / "templates" / "admin"


def test_every_literal_key_in_the_templates_is_translated():
    keys = set()
    for template in TEMPLATES.glob("*.html"):
        keys |= set(re.findall(r"""_\(["']([\w.\-]+)["']\)""", template.read_text(encoding="utf-8")))
    assert keys and sorted(keys - set(MESSAGES)) == []


def test_dynamic_keys_are_translated():
    reasons = [e.code for e in (LoginStateError, TokenExchangeError, IdTokenInvalidError, NotAnAdministratorError,
                                SecondFactorRequiredError)] + ["access_denied", "login_error"]
    dynamic = [f"denied.{r}" for r in reasons] + [f"role.{r.value}" for r in Role]
    dynamic += [f"keys.state.{s}" for s in ("next", "active", "retired")]
    dynamic += [f"clients.basis.{b}" for b in ("consent", "statutory")]
    dynamic += [f"done.{d}" for d in ("created", "saved", "enabled", "disabled", "deleted", "rotated", "retired")]
    assert [k for k in dynamic if k not in MESSAGES] == []


def test_both_languages_are_present():
    for key, (zh, en) in MESSAGES.items():
        assert zh and en, key
        assert en.isascii(), key
