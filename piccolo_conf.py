"""Piccolo's configuration: the engine comes from DATABASE_URL (see store.database)."""

from piccolo.conf.apps import AppRegistry

from store.database import make_engine

DB = make_engine()

APP_REGISTRY = AppRegistry(apps=["store.piccolo_app"])
