"""as of when a quote's owner holds: a customer's quotes follow it to a new salesperson (customer.reassigned)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 00:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('quotes') as batch:
        batch.add_column(sa.Column('owner_since', sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE quotes SET owner_since = created_at")


def downgrade() -> None:
    with op.batch_alter_table('quotes') as batch:
        batch.drop_column('owner_since')
