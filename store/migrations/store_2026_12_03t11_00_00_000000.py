"""Quotas and backpressure (store/quotas.py): a tenant's prepaid credits; its usage per calendar month (UTC);
credits reserved for work not yet settled (a direct upload's file until it completes, a video's analysis until it
ends), with where they were drawn from so that a refund puts them back; and the leases of uploads in flight, which
expire on their own should the replica serving one die."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from store.migration_sql import sql_migration

ID = "2026-12-03T11:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "quotas, prepaid credits, credit reservations and upload leases"

FORWARDS = """
ALTER TABLE tenant ADD COLUMN prepaid_credits integer NOT NULL DEFAULT 0 CHECK (prepaid_credits >= 0);
CREATE TABLE tenant_usage (
    tenant uuid NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
    month date NOT NULL,
    used integer NOT NULL DEFAULT 0 CHECK (used >= 0),
    credits_used integer NOT NULL DEFAULT 0 CHECK (credits_used >= 0),
    PRIMARY KEY (tenant, month)
);
CREATE TABLE credit_reservation (
    file_id uuid NOT NULL,
    purpose varchar(16) NOT NULL,
    tenant uuid NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
    month date NOT NULL,
    quota_units integer NOT NULL,
    credit_units integer NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (file_id, purpose)
);
CREATE TABLE upload_lease (
    id uuid PRIMARY KEY,
    tenant uuid NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL
);
CREATE INDEX upload_lease_tenant ON upload_lease (tenant, expires_at);
CREATE INDEX upload_intent_open_tenant ON upload_intent (tenant) WHERE status IN ('PENDING', 'UPLOADED', 'VERIFYING');
"""

BACKWARDS = """
DROP INDEX upload_intent_open_tenant;
DROP TABLE upload_lease;
DROP TABLE credit_reservation;
DROP TABLE tenant_usage;
ALTER TABLE tenant DROP COLUMN prepaid_credits;
"""


async def forwards() -> MigrationManager:
    return sql_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
