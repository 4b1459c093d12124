"""production and procurement requests found by contract (cancelled with it)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 21:00:00
"""
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_supply_requests_contract', 'supply_requests', ['contract_id', 'status'])


def downgrade() -> None:
    op.drop_index('ix_supply_requests_contract', table_name='supply_requests')
