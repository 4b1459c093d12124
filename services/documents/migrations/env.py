"""Alembic's entry for the documents database; the work is shared by every service (crmkit/migrations.py)."""
from crmkit.migrations import run_env

run_env("documents")
