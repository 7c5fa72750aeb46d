"""Piccolo's configuration: the engine binds its address on first use (see store.database), so importing this
needs no database."""

from piccolo.conf.apps import AppRegistry

from store.database import DB

APP_REGISTRY = AppRegistry(apps=["store.piccolo_app"])

__all__ = ["APP_REGISTRY", "DB"]
