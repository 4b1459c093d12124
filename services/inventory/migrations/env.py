"""Alembic's entry for the inventory database; the work is shared by every service (crmkit/migrations.py)."""
from crmkit.migrations import run_env

run_env("inventory")
