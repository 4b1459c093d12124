"""contracts announced cancelled, and department messages found by contract

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 21:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('notif_cancelled_contracts',
    sa.Column('contract_id', sa.String(length=36), nullable=False),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('contract_id')
    )
    op.create_index('ix_department_messages_contract', 'department_messages', ['contract_id'])


def downgrade() -> None:
    op.drop_index('ix_department_messages_contract', table_name='department_messages')
    op.drop_table('notif_cancelled_contracts')
