"""Alembic's entry for the quotes database; the work is shared by every service (crmkit/migrations.py)."""
from crmkit.migrations import run_env

run_env("quotes")
