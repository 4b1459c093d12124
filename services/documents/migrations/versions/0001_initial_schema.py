"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26 16:51:52.522024
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
    op.create_table('document_failures',
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('owner_id', sa.String(length=64), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('failed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('kind', 'owner_id')
    )
    op.create_table('documents',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('owner_id', sa.String(length=64), nullable=False),
    sa.Column('number', sa.String(length=64), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('rendered_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('kind', 'owner_id', 'sha256', name='uq_documents_owner_content')
    )
    op.create_index('ix_documents_owner', 'documents', ['kind', 'owner_id', 'rendered_at'])


def downgrade() -> None:
    op.drop_table('documents')
    op.drop_table('document_failures')
    drop_kit_tables()
