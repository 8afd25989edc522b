"""Every setting is documented: a field added to Settings without a README row fails here."""

from __future__ import annotations

from papersift.settings import Settings

from .conftest import REPO


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    for name, field in Settings.model_fields.items():
        assert f"`PAPERSIFT_{name.upper()}`" in readme, f"PAPERSIFT_{name.upper()} is not documented"
        assert field.description, f"{name} has no description"


def test_environment_overrides(monkeypatch: object) -> None:
    import pytest

    mp: pytest.MonkeyPatch = monkeypatch  # type: ignore[assignment]
    mp.setenv("PAPERSIFT_DATABASE_URL", "postgresql+psycopg://u@h/db")
    mp.setenv("PAPERSIFT_BATCH_SIZE", "17")
    settings = Settings()
    assert settings.store_url == "postgresql+psycopg://u@h/db"
    assert settings.batch_size == 17
