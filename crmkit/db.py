"""SQLAlchemy engine and sessions for one service: its own SQLite file, PostgreSQL database or schema."""
from __future__ import annotations

import contextlib
import contextvars
import functools
import re
import time
from pathlib import Path

from sqlalchemy import create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from crmkit import timing


class Base(DeclarativeBase):
    """One declarative base: tables are created per service by the service listing its own."""


class Database:
    def __init__(self, url: str, schema: str | None = None, tables=()):
        self.url = make_url(url)
        self.schema = schema
        self.tables = list(tables)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        if self.is_sqlite:
            if self.url.database:
                Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False,
                                                      "isolation_level": None})
            event.listen(engine, "connect", _sqlite_connect)
            event.listen(engine, "begin", _sqlite_begin)
        else:
            # No ping before each checkout (a round trip per transaction): a connection found dead is
            # reported by the statement that uses it, the pool then drops every older connection, workers
            # retry the message and the web answers 503 (crmkit.web.errors).
            engine = create_engine(url, pool_size=5, max_overflow=5, connect_args=_search_path(self.url, schema))
        event.listen(engine, "before_cursor_execute", _statement_started)
        event.listen(engine, "after_cursor_execute", _statement_done)
        if schema:
            # Read by whoever needs the schema's name (the outbox's NOTIFY channel); statements do not use it.
            engine = engine.execution_options(crm_schema=schema)
        self.engine = engine
        self.sessions = sessionmaker(bind=engine, expire_on_commit=False)
        # PostgreSQL only: SQLite is in-process, a BEGIN there costs no round trip (and its writers must lock).
        self._autocommit_sessions = None if self.is_sqlite else sessionmaker(
            bind=engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False)

    def create_all(self):
        """Create this service's tables (and its schema on a shared PostgreSQL database)."""
        with self.engine.begin() as conn:
            if self.schema:
                conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
        if self.schema:
            # Two processes creating the same tables at once may race; the loser retries once.
            with self.engine.begin() as conn:
                conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:s))"), {"s": self.schema})
                Base.metadata.create_all(conn, tables=self.tables)
        else:
            Base.metadata.create_all(self.engine, tables=self.tables)

    @contextlib.contextmanager
    def session(self):
        """A session in one transaction: committed on success, rolled back on any error.

        Inside `one_transaction()` of this database, a savepoint of that transaction instead: a block that
        fails rolls back alone, as its own transaction would have, and nothing commits before the whole.
        """
        joined = _ONE_TRANSACTION.get()
        if joined is not None and joined[0] is self:
            session = joined[1]
            waiting = dict(session.info.get(_AFTER_COMMIT, {}))
            try:
                with session.begin_nested():
                    yield session
            except BaseException:
                session.info[_AFTER_COMMIT] = waiting  # what the failed block asked for at commit goes with it
                raise
            return
        with self.sessions() as session:
            with session.begin():
                yield session

    @contextlib.contextmanager
    def one_transaction(self):
        """Every `session()` of this database in this thread joins the one transaction this block holds; it
        commits when the block ends. For a request whose record of itself must commit with its work or not
        at all (an Idempotency-Key and the response it replays)."""
        with self.session() as session:
            token = _ONE_TRANSACTION.set((self, session))
            try:
                yield session
            finally:
                _ONE_TRANSACTION.reset(token)

    @contextlib.contextmanager
    def autocommit(self):
        """A session whose statements each commit by themselves: no BEGIN and COMMIT, two round trips fewer.

        Only for work in which every statement stands alone: reads, or a single write (one UPDATE … RETURNING
        is atomic by itself). Under READ COMMITTED a read transaction gives nothing more, since each of its
        statements sees its own snapshot anyway. On SQLite it is session().
        """
        joined = _ONE_TRANSACTION.get()
        if self._autocommit_sessions is None or (joined is not None and joined[0] is self):
            # Inside one_transaction(): its reads see its writes, and its writes commit with it.
            with self.session() as session:
                yield session
            return
        with self._autocommit_sessions() as session:
            yield session

    def ping(self) -> bool:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True

    def dispose(self):
        self.engine.dispose()


# (database, session) of the one_transaction() block this thread is in. A context variable, so each request
# thread of a web process has its own.
_ONE_TRANSACTION: contextvars.ContextVar = contextvars.ContextVar("crm_one_transaction", default=None)


def insert_ignore(session, table, values: dict) -> bool:
    """INSERT … ON CONFLICT DO NOTHING in one statement; True when the row was new."""
    # RETURNING, not rowcount: SQLAlchemy does not keep an INSERT's rowcount unless asked on every call.
    return session.execute(_insert_ignore(table, session.get_bind().dialect.name), values).first() is not None


@functools.lru_cache(maxsize=None)
def _insert_ignore(table, dialect_name: str):
    # Built once per table: on the hot paths (every message's inbox row) building the statement cost
    # more than running it. The columns come from each call's parameters.
    return dialect_insert(dialect_name)(table).on_conflict_do_nothing().returning(*table.primary_key.columns)


def contains(text_: str, *columns):
    """A condition: any of the columns contains the typed text, case-insensitively and literally (%, _ and
    backslash are escaped, not LIKE wildcards). A scan of the table: for searches people type, not hot paths."""
    from sqlalchemy import or_
    pattern = "%" + text_.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return or_(*(column.ilike(pattern, escape="\\") for column in columns))


def row_values(obj) -> dict:
    """The row of a new ORM object, for a prebuilt INSERT: every column's value, a column left unset getting its
    default on the object too, as a flush would (callable defaults are called without an execution context,
    which none of ours reads). A database-generated primary key left unset is left out."""
    values = obj.__dict__
    row = {}
    for column in obj.__table__.columns:
        if column.key not in values:
            default = column.default
            value = None if default is None else default.arg(None) if default.is_callable else default.arg
            if value is None and column.primary_key:
                continue
            setattr(obj, column.key, value)
        row[column.key] = values[column.key]
    return row


# --- work for when a transaction commits ------------------------------------------------------------------------

_AFTER_COMMIT = "crm_after_commit"


def after_commit(session, action, once_per: str | None = None) -> None:
    """Run `action()` once the session's transaction commits, and never if it rolls back: waking a relay or the
    email senders, counting an outcome. With `once_per`, only the first action of that name per transaction."""
    pending = session.info.setdefault(_AFTER_COMMIT, {})
    pending.setdefault(once_per if once_per is not None else object(), action)


def commit_will_run(session, once_per: str) -> bool:
    """Whether an action named `once_per` already waits for this transaction's commit."""
    return once_per in session.info.get(_AFTER_COMMIT, ())


# SQLAlchemy sends these for a savepoint too. Only the whole transaction's end counts: a savepoint released is
# not yet committed, and one rolled back takes back only what its own block asked for (Database.session()).
@event.listens_for(Session, "after_commit")
def _run_after_commit(session):
    if session.in_nested_transaction():
        return
    for action in session.info.pop(_AFTER_COMMIT, {}).values():
        action()


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session):
    if not session.in_nested_transaction():
        session.info.pop(_AFTER_COMMIT, None)


def dialect_insert(dialect_name: str):
    """The insert() that knows ON CONFLICT on this dialect (both of ours spell it the same way)."""
    return postgresql.insert if dialect_name == "postgresql" else sqlite.insert


def _search_path(url, schema: str | None) -> dict:
    """Connection options that make unqualified table names resolve to the service's schema."""
    if not schema:
        return {}
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", schema):
        raise ValueError(f"a schema name must be a lower-case SQL identifier, not {schema!r}")
    # Set once when a connection opens, not per statement: schema_translate_map rewrote the text of
    # every statement each time it ran, about 2 % of every service's CPU.
    options = url.query.get("options", "")
    return {"options": f"{options} -c search_path={schema}".strip()}


def _statement_started(_conn, _cursor, _statement, _parameters, context, _executemany):
    context._crm_started = time.perf_counter()


def _statement_done(_conn, _cursor, _statement, _parameters, context, _executemany):
    # The statement's round trip, for the request's Server-Timing (nothing is kept outside a request).
    started = getattr(context, "_crm_started", None)
    if started is not None:
        timing.add("db", time.perf_counter() - started)


def _sqlite_connect(dbapi_conn, _record):
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_begin(conn):
    # Take the write lock up front: SQLite cannot upgrade a read transaction to a write one under
    # contention, so a conditional update after a read would fail instead of waiting.
    conn.exec_driver_sql("BEGIN IMMEDIATE")

