"""indexes for housekeeping: expired outbox rows, inbox rows and idempotency keys

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 19:15:00
"""
from crmkit.kit_migration import add_retention_indexes, drop_retention_indexes

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_retention_indexes()


def downgrade() -> None:
    drop_retention_indexes()
