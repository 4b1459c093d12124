"""payments voided: a payment entered by mistake is taken back, and stays listed

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 04:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('payments') as batch:
        batch.add_column(sa.Column('voided_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('voided_by', sa.String(length=36), nullable=True))
        batch.add_column(sa.Column('void_reason', sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('payments') as batch:
        batch.drop_column('void_reason')
        batch.drop_column('voided_by')
        batch.drop_column('voided_at')
