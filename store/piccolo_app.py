"""The Piccolo app that owns our tables and migrations."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from store.tables import TABLES

APP_CONFIG = AppConfig(
    app_name="store",
    migrations_folder_path=Path(__file__).parent / "migrations",
    table_classes=list(TABLES),
)
