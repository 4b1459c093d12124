"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26 16:52:07.559835
"""
import sqlalchemy as sa
from alembic import op

from crmkit.kit_migration import create_kit_tables, drop_kit_tables

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_kit_tables()
    op.create_table('department_messages',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('dedupe_key', sa.String(length=200), nullable=False),
    sa.Column('department', sa.String(length=16), nullable=False),
    sa.Column('type', sa.String(length=48), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('recipient_id', sa.String(length=36), nullable=True),
    sa.Column('contract_id', sa.String(length=36), nullable=True),
    sa.Column('contract', sa.JSON(), nullable=False),
    sa.Column('lines', sa.JSON(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('acked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('acked_by', sa.String(length=36), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dedupe_key')
    )
    op.create_index('ix_department_messages_inbox', 'department_messages', ['department', 'acked_at', 'occurred_at'])
    op.create_index('ix_department_messages_recipient', 'department_messages', ['department', 'recipient_id', 'occurred_at'])
    op.create_table('notif_documents',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('owner_id', sa.String(length=36), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('filename', sa.String(length=200), nullable=True),
    sa.Column('size', sa.Integer(), nullable=True),
    sa.Column('rendered_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_notif_documents_owner', 'notif_documents', ['kind', 'owner_id', 'rendered_at'])
    op.create_table('notif_emails',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('request_key', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('first_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('claim_token', sa.String(length=36), nullable=True),
    sa.Column('smtp_started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('to', sa.JSON(), nullable=False),
    sa.Column('cc', sa.JSON(), nullable=False),
    sa.Column('reply_to', sa.String(length=254), nullable=True),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('contract_id', sa.String(length=36), nullable=True),
    sa.Column('quote_id', sa.String(length=36), nullable=True),
    sa.Column('document_owner_id', sa.String(length=36), nullable=True),
    sa.Column('document_id', sa.String(length=64), nullable=True),
    sa.Column('document_sha256', sa.String(length=64), nullable=True),
    sa.Column('attachment_name', sa.String(length=200), nullable=True),
    sa.Column('customer_name', sa.String(length=200), nullable=True),
    sa.Column('owner_id', sa.String(length=36), nullable=True),
    sa.Column('company_language', sa.String(length=8), nullable=False),
    sa.Column('message_id', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('request_key')
    )
    op.create_index('ix_notif_emails_contract', 'notif_emails', ['contract_id', 'created_at'])
    op.create_index('ix_notif_emails_due', 'notif_emails', ['status', 'next_attempt_at'])
    op.create_index('ix_notif_emails_waiting', 'notif_emails', ['document_owner_id', 'status'])


def downgrade() -> None:
    op.drop_table('notif_emails')
    op.drop_table('notif_documents')
    op.drop_table('department_messages')
    drop_kit_tables()
