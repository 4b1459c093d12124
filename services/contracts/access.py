"""Who sees what: sales see their own customers' records (others answer 404); managers and admins see all."""
from __future__ import annotations

import functools

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, joinedload, selectinload

from crmkit.errors import NotFound
from crmkit.web.auth import Caller
from services.contracts.models import Contract, Customer
from services.contracts.settings_store import SETTINGS_COLUMN, merged_settings


def own_filter(query, caller: Caller, owner_column):
    return scoped(query, scope_of(caller), owner_column, caller.id)


def scope_of(caller: Caller) -> str:
    """Which rows a caller may read: all, their own, or none."""
    return "all" if caller.sees_all else "own" if caller.role == "sales" else "none"


def scoped(query, scope: str, owner_column, owner: str | None = None):
    """The rows of `scope`; the owner is the bound parameter `owner`, given here or, for a statement built once,
    with each execution."""
    if scope == "all":
        return query
    return query.where(owner_column == bindparam("owner", owner)) if scope == "own" else query.where(False)


# The statements of the hot paths (every create, confirm and timeline read) are built once per scope and kept:
# building one per call and working out its cache key cost nearly as much as running it (about 160 µs of a
# one-row read's 360). Callers pass the ids as parameters, with `owner` the caller's id.

@functools.lru_cache(maxsize=None)
def _customer_statement(scope: str, columns: tuple, lock: bool):
    query = scoped(select(Customer, *columns).where(Customer.id == bindparam("id")), scope, Customer.owner)
    # FOR NO KEY UPDATE: a customer's id never changes, so a contract being inserted for it (whose foreign key
    # takes a KEY SHARE lock on the customer, as the scheduler's generated contracts do) need not wait for it.
    return query.with_for_update(key_share=True) if lock else query


@functools.lru_cache(maxsize=None)
def _contract_statement(scope: str, lock: bool):
    query = scoped(select(Contract).where(Contract.id == bindparam("id")), scope, Contract.owner_id)
    if lock:
        # The lines in a statement of their own, once the lock is held. On PostgreSQL a statement that waited
        # for the lock gets the contract row as its holder committed it but rows joined to it as they were when
        # the statement began: lines replaced, delivered or reserved meanwhile would be read stale, and written
        # back so (deliveries lost, confirmations of the old lines).
        return query.options(selectinload(Contract.lines)).with_for_update(of=Contract)
    return query.options(joinedload(Contract.lines))


@functools.lru_cache(maxsize=None)
def _contract_id_statement(scope: str):
    return scoped(select(Contract.id).where(Contract.id == bindparam("id")), scope, Contract.owner_id)


def customer_for(session: Session, caller: Caller, customer_id: str, lock: bool = False) -> Customer:
    return _customer_row(session, caller, customer_id, lock=lock)[0]


def customer_and_settings(session: Session, caller: Caller, customer_id: str) -> tuple[Customer, dict]:
    """customer_for and the company settings, in one statement: a new contract needs both."""
    customer, stored = _customer_row(session, caller, customer_id, SETTINGS_COLUMN)
    return customer, merged_settings(stored)


def _customer_row(session: Session, caller: Caller, customer_id: str, *columns, lock: bool = False):
    """The caller's customer (404 for anyone else's) and `columns` read with it."""
    row = session.execute(_customer_statement(scope_of(caller), columns, lock),
                          {"id": customer_id, "owner": caller.id}).first()
    if row is None:
        raise NotFound("No such customer.", {"customer_id": ["Unknown customer."]})
    return row


def contract_for(session: Session, caller: Caller, contract_id: str, lock: bool = False) -> Contract:
    """The contract with its lines, in one statement; `lock` locks the contract's row (not its lines': every
    writer of a contract's lines locks the contract first) and then reads the lines."""
    contract = session.execute(_contract_statement(scope_of(caller), lock),
                               {"id": contract_id, "owner": caller.id}).unique().scalar_one_or_none()
    if contract is None:
        raise NotFound("No such contract.")
    return contract


def require_contract(session: Session, caller: Caller, contract_id: str) -> None:
    """contract_for when only access matters (the timeline): one indexed read, no contract or lines loaded."""
    found = session.execute(_contract_id_statement(scope_of(caller)), {"id": contract_id, "owner": caller.id}).first()
    if found is None:
        raise NotFound("No such contract.")


def require_reader(caller: Caller) -> None:
    """Department users read only their department's inbox; nothing of the sales records."""
    if caller.role == "department":
        raise NotFound("Not found.")
