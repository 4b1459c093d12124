"""who is asked for more of a product when a contract is short of it: production or procurement

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 21:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('products') as batch:
        batch.add_column(sa.Column('replenished_by', sa.String(length=16), nullable=False,
                                   server_default='production'))


def downgrade() -> None:
    with op.batch_alter_table('products') as batch:
        batch.drop_column('replenished_by')
