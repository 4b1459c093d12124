"""dead letters name the contract their message was about, and are listed by it

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 03:30:00
"""
import json
import re

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
    # Batches by id: the table holds whatever failed, possibly many large bodies.
    last = ""
    while True:
        batch = connection.execute(sa.select(letters.c.id, letters.c.body).where(letters.c.id > last)
                                   .order_by(letters.c.id).limit(500)).all()
        if not batch:
            break
        last = batch[-1].id
        for letter_id, body in batch:
            contract_id = _contract_of(body)
            if contract_id:
                connection.execute(letters.update().where(letters.c.id == letter_id)
                                   .values(contract_id=contract_id))


# As services/contracts/dead_letters.contract_of at this revision: a poison message's id may hold NUL or an
# unpaired surrogate, which no text column takes, so they are written as escapes.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _contract_of(body: str) -> str | None:
    try:
        envelope = json.loads(body)
    except (ValueError, TypeError, RecursionError):
        return None
    data = envelope.get("data") if isinstance(envelope, dict) else None
    value = data.get("contract_id") if isinstance(data, dict) else None
    if not isinstance(value, str):
        return None
    return _UNSTORABLE.sub(lambda found: f"\\u{ord(found.group()):04x}", value)[:64] or None


def downgrade() -> None:
    op.drop_index('ix_dead_letters_contract', table_name='dead_letters')
    with op.batch_alter_table('dead_letters') as batch:
        batch.drop_column('contract_id')
