"""Direct PostgreSQL access for tests that look under a running cluster (each service's schema)."""
from __future__ import annotations

import psycopg


def connect(database_url: str, autocommit: bool = True) -> psycopg.Connection:
    """A psycopg connection from the SQLAlchemy URL the cluster's processes were given."""
    return psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=autocommit)


def scalar(database_url: str, sql: str, params=()):
    with connect(database_url) as conn:
        row = conn.execute(sql, params).fetchone()
        return row[0] if row else None
