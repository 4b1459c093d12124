"""unit prices to four decimals: small parts are priced to a fraction of a cent (line amounts stay in cents)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 11:00:00
"""
from crmkit.kit_migration import narrow_unit_price, widen_unit_price

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    widen_unit_price('products')


def downgrade() -> None:
    narrow_unit_price('products')
