"""Generate docs/configuration.md from the settings object: ``python -m config.docs``.
A test fails when the committed file is stale."""

from __future__ import annotations

import sys
from pathlib import Path

from .settings import Settings

HEADER = """# Configuration reference

Generated from `config/settings.py` by `python -m config.docs > docs/configuration.md`;
a test fails when this file is stale. Every setting is an environment variable.
Production (`YIWANG_ENV=production`) refuses to start with an http issuer, a missing or
short secret key, missing index/data keys, no PostgreSQL URL, the in-process store with
several workers, or the demo data.

| variable | default | description |
| --- | --- | --- |
"""


def render() -> str:
    rows = []
    for name, field in Settings.model_fields.items():
        default = field.default
        if default is None:
            shown = "(unset)"
        elif isinstance(default, Path):
            shown = f"`{default}`"
        else:
            shown = f"`{default}`"
        desc = (field.description or "").replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `YIWANG_{name.upper()}` | {shown} | {desc} |")
    return HEADER + "\n".join(rows) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
