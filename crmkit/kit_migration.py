"""The kit's own tables (outbox, inbox, idempotency keys, sequences) as every service's revisions change them, and
the columns whose type the kit sets for every service (unit prices: crmkit.money.PRICE_PLACES).

Each helper is frozen at the revision that calls it: a later change to crmkit/models.py gets a helper of its
own here and a revision in each service that calls it.
"""
import sqlalchemy as sa
from alembic import op


def create_kit_tables() -> None:
    op.create_table('idempotency_keys',
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('endpoint', sa.String(length=255), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('user_id', 'key')
    )
    op.create_table('inbox',
    sa.Column('consumer', sa.String(length=64), nullable=False),
    sa.Column('message_id', sa.String(length=64), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('handled_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('consumer', 'message_id')
    )
    op.create_table('outbox',
    sa.Column('seq', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('exchange', sa.String(length=64), nullable=False),
    sa.Column('routing_key', sa.String(length=128), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('published', sa.Boolean(), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('id')
    )
    op.create_index('ix_outbox_unpublished', 'outbox', ['published', 'seq'])
    op.create_table('sequences',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )


def add_retention_indexes() -> None:
    """Revision 0002 of most services (0003 of contracts): what housekeeping finds expired rows by."""
    op.create_index('ix_outbox_created_at', 'outbox', ['created_at'])
    op.create_index('ix_inbox_handled_at', 'inbox', ['handled_at'])
    op.create_index('ix_idempotency_keys_created_at', 'idempotency_keys', ['created_at'])


def drop_retention_indexes() -> None:
    op.drop_index('ix_idempotency_keys_created_at', 'idempotency_keys')
    op.drop_index('ix_inbox_handled_at', 'inbox')
    op.drop_index('ix_outbox_created_at', 'outbox')


def drop_kit_tables() -> None:
    for table in ("sequences", "outbox", "inbox", "idempotency_keys"):
        op.drop_table(table)


def widen_unit_price(table: str) -> None:
    """Contracts 0008, quotes 0004, inventory 0005: a unit price to four decimals (a screw at 0.0125)."""
    with op.batch_alter_table(table) as batch:
        batch.alter_column('unit_price', existing_type=sa.Numeric(precision=18, scale=2),
                           type_=sa.Numeric(precision=18, scale=4), existing_nullable=False)


def narrow_unit_price(table: str) -> None:
    """Rounds a price with more than two decimals to cents: the line amounts, already in cents, do not change."""
    with op.batch_alter_table(table) as batch:
        batch.alter_column('unit_price', existing_type=sa.Numeric(precision=18, scale=4),
                           type_=sa.Numeric(precision=18, scale=2), existing_nullable=False)
