"""unit prices to four decimals: small parts are priced to a fraction of a cent (line amounts stay in cents)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 11:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('contract_lines') as batch:
        batch.alter_column('unit_price', existing_type=sa.Numeric(precision=18, scale=2),
                           type_=sa.Numeric(precision=18, scale=4), existing_nullable=False)


def downgrade() -> None:
    # Rounds a price with more than two decimals to cents: the line amounts, already in cents, do not change.
    with op.batch_alter_table('contract_lines') as batch:
        batch.alter_column('unit_price', existing_type=sa.Numeric(precision=18, scale=4),
                           type_=sa.Numeric(precision=18, scale=2), existing_nullable=False)
