"""dead letters name the contract their message was about, and are listed by it

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 03:30:00
"""
import json

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('dead_letters') as batch:
        batch.add_column(sa.Column('contract_id', sa.String(length=64), nullable=True))
    op.create_index('ix_dead_letters_contract', 'dead_letters', ['contract_id'])
    # Letters kept before: their contract read from the stored body (a few rows; an operator's list).
    connection = op.get_bind()
    letters = sa.table('dead_letters', sa.column('id', sa.String), sa.column('body', sa.Text),
                       sa.column('contract_id', sa.String))
    for letter_id, body in connection.execute(sa.select(letters.c.id, letters.c.body)).all():
        try:
            data = json.loads(body).get("data")
        except (ValueError, AttributeError, RecursionError):
            continue
        contract_id = data.get("contract_id") if isinstance(data, dict) else None
        if isinstance(contract_id, str) and contract_id:
            connection.execute(letters.update().where(letters.c.id == letter_id)
                               .values(contract_id=contract_id[:64]))


def downgrade() -> None:
    op.drop_index('ix_dead_letters_contract', table_name='dead_letters')
    with op.batch_alter_table('dead_letters') as batch:
        batch.drop_column('contract_id')
