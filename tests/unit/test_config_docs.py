"""docs/configuration.md is generated from the settings and must not go stale."""

from pathlib import Path

from config.docs import render


def test_configuration_reference_is_current() -> None:
    committed = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert committed == render(), "run: python -m config.docs > docs/configuration.md"


def test_every_setting_is_described() -> None:
    from config.settings import Settings

    assert all(f.description for f in Settings.model_fields.values())
