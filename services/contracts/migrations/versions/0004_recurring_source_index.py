"""an index on recurring schedules by source contract: a cancellation pauses the schedules it feeds

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 00:00:00
"""
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_recurring_source', 'recurring_schedules', ['source_contract_id'])


def downgrade() -> None:
    op.drop_index('ix_recurring_source', table_name='recurring_schedules')
