"""Alembic migrations of each service's database: upgrade on start under a lock, adopt older databases, a CLI.

Every service keeps its revisions in `services/<name>/migrations/versions/`; its `env.py` calls `run_env()`.
The version table is `alembic_version_<service>`, in the service's own schema on a shared PostgreSQL database.

    python -m crmkit.migrations <service> upgrade [REV] | downgrade REV | current | history | check
    python -m crmkit.migrations <service> revision -m "what changed" [--autogenerate]
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import importlib
import logging
import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, create_engine, event, inspect, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.pool import NullPool

from crmkit.models import KIT_TABLES
from crmkit.settings import SERVICES, Settings

log = logging.getLogger(__name__)


def version_table(service: str) -> str:
    return f"alembic_version_{service}"


def script_location(service: str) -> Path:
    return Path(importlib.import_module(f"services.{service}").__file__).parent / "migrations"


def load_spec(service: str):
    return importlib.import_module(f"services.{service}").spec()


def target_metadata(spec) -> MetaData:
    """The service's own tables (kit tables included), apart from the one Base every service shares."""
    metadata = _METADATA.get(spec.name)
    if metadata is None:  # copied once per process: copying the tables costs more than a whole upgrade
        metadata = MetaData()
        for table in KIT_TABLES + spec.tables:
            table.to_metadata(metadata)
        _METADATA[spec.name] = metadata
    return metadata


_METADATA: dict[str, MetaData] = {}


def make_config(spec, connection: Connection | None = None, schema: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location(spec.name)))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes.update(spec=spec, connection=connection, schema=schema)
    return cfg


def _include_name(metadata: MetaData, own_namespace: bool):
    def include(name, type_, parent_names):
        # On a database other services share (one PostgreSQL database, no schema of its own) their tables
        # are not ours to drop; in a SQLite file or a schema of its own, a table no model has is a difference.
        if type_ == "table" and not own_namespace:
            return name in metadata.tables
        return True
    return include


def _context_options(spec, connection: Connection, schema: str | None) -> dict:
    metadata = target_metadata(spec)
    is_sqlite = connection.dialect.name == "sqlite"
    return dict(target_metadata=metadata, version_table=version_table(spec.name),
                include_name=_include_name(metadata, own_namespace=is_sqlite or bool(schema)),
                compare_type=True, render_as_batch=is_sqlite)


def run_env(service: str):
    """The body of every service's env.py: migrate the connection the caller holds, or the configured database."""
    from alembic import context
    if context.is_offline_mode():
        raise SystemExit("offline (--sql) migrations are not supported: run them against a database")
    cfg = context.config
    spec = cfg.attributes.get("spec") or load_spec(service)
    connection = cfg.attributes.get("connection")
    if connection is not None:
        _run(context, spec, connection, cfg.attributes.get("schema"))
        return
    settings = Settings.from_env(service)  # plain `alembic` with this folder: the service's own settings
    with migration_connection(settings.database_url, settings.db_schema, service) as connection:
        _run(context, spec, connection, settings.db_schema)


def _run(context, spec, connection: Connection, schema: str | None):
    context.configure(connection=connection, **_context_options(spec, connection, schema))
    with context.begin_transaction():
        context.run_migrations()


def lock_key(service: str) -> int:
    """A stable 64-bit advisory lock key per service (hashtext is internal to PostgreSQL and may change)."""
    digest = hashlib.sha256(f"crmkit.migrate.{service}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextlib.contextmanager
def migration_connection(url, schema: str | None, service: str):
    """One connection in one transaction, holding the service's migration lock until it commits.

    Every gunicorn worker and every worker process migrates on start; the lock makes the first one do the
    work while the others wait and then find the database at head. PostgreSQL: a transaction-scoped
    advisory lock. SQLite: an flock on `<service>.migrate.lock` beside the database file.
    """
    url = make_url(url)
    is_sqlite = url.get_backend_name() == "sqlite"
    if is_sqlite:
        if url.database:
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, poolclass=NullPool, connect_args={"timeout": 30, "isolation_level": None})
        # pysqlite's own transaction handling would commit around DDL; BEGIN IMMEDIATE makes it one transaction.
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
    else:
        engine = create_engine(url, poolclass=NullPool)
    if schema:
        engine = engine.execution_options(schema_translate_map={None: schema})
    try:
        with _file_lock(url, service) if is_sqlite else contextlib.nullcontext():
            # Begun here, so Alembic runs every revision inside this one transaction (it commits none itself):
            # a failed upgrade leaves the database at the revision it started from, on SQLite too.
            with engine.connect() as conn, conn.begin():
                if not is_sqlite:
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(service)})
                if schema:
                    conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
                    # Reflection (has the version table? what does autogenerate compare?) ignores the
                    # schema_translate_map, so unqualified names must resolve to the schema for it too.
                    conn.execute(text(f'SET LOCAL search_path TO "{schema}"'))
                    conn.dialect.default_schema_name = schema  # this engine's own dialect, disposed below
                yield conn
    finally:
        engine.dispose()


def _sqlite_connect(dbapi_conn, _record):
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


@contextlib.contextmanager
def _file_lock(url, service: str):
    if not url.database or url.database == ":memory:":
        yield
        return
    path = Path(url.database).resolve().parent / f"{service}.migrate.lock"
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def upgrade(spec, settings: Settings, db=None, revision: str = "head"):
    """Bring the service's database to `revision`; a database made before migrations existed is adopted."""
    url, schema = (db.url, db.schema) if db is not None else (settings.database_url, settings.db_schema)
    with migration_connection(url, schema, spec.name) as conn:
        cfg = make_config(spec, conn, schema)
        if revision == "head" and _unversioned_with_tables(conn, spec):
            _adopt(cfg, conn, spec, schema)
        else:
            command.upgrade(cfg, revision)


def _unversioned_with_tables(conn: Connection, spec) -> bool:
    inspector = inspect(conn)
    if inspector.has_table(version_table(spec.name)):
        if conn.execute(text(f"SELECT count(*) FROM {version_table(spec.name)}")).scalar():
            return False
    return bool(set(inspector.get_table_names()) & set(target_metadata(spec).tables))


def _adopt(cfg: Config, conn: Connection, spec, schema: str | None):
    """Tables made by create_all before migrations: add the missing ones as create_all did, then stamp head."""
    target_metadata(spec).create_all(conn)
    command.stamp(cfg, "head")
    diffs = _compare(conn, spec, schema)
    log.warning("%s: adopted a database made before migrations, stamped at head%s", spec.name,
                f"; it still differs from the models: {diffs}" if diffs else "")


def _compare(conn: Connection, spec, schema: str | None) -> list:
    options = _context_options(spec, conn, schema)
    metadata = options.pop("target_metadata")
    options.pop("render_as_batch")
    return compare_metadata(MigrationContext.configure(conn, opts=options), metadata)


def differences(spec, settings: Settings, db=None) -> list:
    """What autogenerate would still write: the models against the database (at head, differences = [])."""
    url, schema = (db.url, db.schema) if db is not None else (settings.database_url, settings.db_schema)
    with migration_connection(url, schema, spec.name) as conn:
        return _compare(conn, spec, schema)


def current(spec, settings: Settings, db=None) -> str | None:
    url, schema = (db.url, db.schema) if db is not None else (settings.database_url, settings.db_schema)
    with migration_connection(url, schema, spec.name) as conn:
        return MigrationContext.configure(conn, opts={"version_table": version_table(spec.name)}).get_current_revision()


def head(spec) -> str:
    return ScriptDirectory.from_config(make_config(spec)).get_current_head()


def _next_rev_id(spec) -> str:
    """Revisions are numbered 0001, 0002, …: the order a reader sees in versions/ is the order they run."""
    numbers = [int(s.revision) for s in ScriptDirectory.from_config(make_config(spec)).walk_revisions()
               if s.revision.isdigit()]
    return f"{max(numbers, default=0) + 1:04d}"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m crmkit.migrations", description=__doc__.split("\n")[0])
    parser.add_argument("service", choices=SERVICES)
    parser.add_argument("command", choices=("upgrade", "downgrade", "current", "history", "check", "revision"))
    parser.add_argument("revision", nargs="?", default=None, help="target of upgrade (default head) or downgrade")
    parser.add_argument("-m", "--message", help="what a new revision changes")
    parser.add_argument("--autogenerate", action="store_true",
                        help="write the operations from the models' differences with a scratch database at head")
    parser.add_argument("--rev-id", help="the new revision's id (default: the next number)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    spec = load_spec(args.service)
    if args.command == "revision":
        if not args.message:
            parser.error("revision needs -m MESSAGE")
        return _revision(spec, args.message, args.autogenerate, args.rev_id or _next_rev_id(spec))
    settings = Settings.from_env(args.service)
    if args.command == "upgrade":
        upgrade(spec, settings, revision=args.revision or "head")
        print(f"{spec.name}: at {current(spec, settings)}")
    elif args.command == "downgrade":
        if not args.revision:
            parser.error("downgrade needs a revision (e.g. 0001, or base)")
        with migration_connection(settings.database_url, settings.db_schema, spec.name) as conn:
            command.downgrade(make_config(spec, conn, settings.db_schema), args.revision)
        print(f"{spec.name}: at {current(spec, settings)}")
    elif args.command == "current":
        print(f"{spec.name}: at {current(spec, settings)} (head {head(spec)})")
    elif args.command == "history":
        command.history(make_config(spec), verbose=False)
    elif args.command == "check":
        diffs = differences(spec, settings)
        for diff in diffs:
            print(diff)
        print(f"{spec.name}: {'models differ from the database' if diffs else 'models match the database'}")
        return 1 if diffs else 0
    return 0


def _revision(spec, message: str, autogenerate: bool, rev_id: str) -> int:
    """A new revision file; autogenerate compares the models with a scratch SQLite database at head."""
    if not autogenerate:
        command.revision(make_config(spec), message=message, rev_id=rev_id)
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{Path(scratch) / (spec.name + '.sqlite')}"
        with migration_connection(url, None, spec.name) as conn:
            cfg = make_config(spec, conn)
            command.upgrade(cfg, "head")
            command.revision(cfg, message=message, autogenerate=True, rev_id=rev_id,
                             process_revision_directives=_skip_empty)
    return 0


def _skip_empty(_context, _revision, directives):
    if directives[0].upgrade_ops.is_empty():
        directives[:] = []
        print("the models match head: no revision written")


if __name__ == "__main__":
    sys.exit(main())
