"""unit prices to four decimals: small parts are priced to a fraction of a cent (line amounts stay in cents)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 11:00:00
"""
from crmkit.kit_migration import narrow_unit_price, widen_unit_price

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    widen_unit_price('contract_lines')


def downgrade() -> None:
    narrow_unit_price('contract_lines')
