"""Idempotency keys: the first answer to a request sent with an `Idempotency-Key`, per tenant, in Postgres so that
every API replica replays it (store/idempotency_keys.py). A row without `status_code` is a request still working
under its `claim`; `fingerprint` is the SHA-256 of the route and the canonical body, so the same key with another
body is told apart."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from store.migration_sql import sql_migration

ID = "2026-12-03T10:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "idempotency keys"

FORWARDS = """
CREATE TABLE idempotency_key (
    tenant uuid NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
    key varchar(128) NOT NULL,
    scope varchar(300) NOT NULL,
    fingerprint char(64) NOT NULL,
    claim uuid NOT NULL,
    status_code smallint,
    response bytea,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (tenant, key)
);
CREATE INDEX idempotency_key_created ON idempotency_key (created_at);
"""

BACKWARDS = "DROP TABLE idempotency_key;"


async def forwards() -> MigrationManager:
    return sql_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
