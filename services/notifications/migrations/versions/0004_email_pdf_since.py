"""an email's earliest PDF: a quote sent again attaches the PDF printed for that send, not an earlier one

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 11:20:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('notif_emails') as batch:
        batch.add_column(sa.Column('pdf_since', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('notif_emails') as batch:
        batch.drop_column('pdf_since')
