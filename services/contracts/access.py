"""Who sees what: sales see their own customers' records (others answer 404); managers and admins see all."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from crmkit.errors import NotFound
from crmkit.web.auth import Caller
from services.contracts.models import Contract, Customer
from services.contracts.settings_store import SETTINGS_COLUMN, merged_settings


def own_filter(query, caller: Caller, owner_column):
    if caller.sees_all:
        return query
    if caller.role != "sales":
        return query.where(False)
    return query.where(owner_column == caller.id)


def customer_for(session: Session, caller: Caller, customer_id: str, lock: bool = False) -> Customer:
    return _customer_row(session, caller, customer_id, lock=lock)[0]


def customer_and_settings(session: Session, caller: Caller, customer_id: str) -> tuple[Customer, dict]:
    """customer_for and the company settings, in one statement: a new contract needs both."""
    customer, stored = _customer_row(session, caller, customer_id, SETTINGS_COLUMN)
    return customer, merged_settings(stored)


def _customer_row(session: Session, caller: Caller, customer_id: str, *columns, lock: bool = False):
    """The caller's customer (404 for anyone else's) and `columns` read with it."""
    query = own_filter(select(Customer, *columns).where(Customer.id == customer_id), caller, Customer.owner)
    if lock:
        query = query.with_for_update()
    row = session.execute(query).first()
    if row is None:
        raise NotFound("No such customer.", {"customer_id": ["Unknown customer."]})
    return row


def contract_for(session: Session, caller: Caller, contract_id: str, lock: bool = False) -> Contract:
    """The contract with its lines, in one statement; `lock` locks the contract's row, not its lines'."""
    query = own_filter(select(Contract).where(Contract.id == contract_id), caller, Contract.owner_id)
    query = query.options(joinedload(Contract.lines))
    if lock:
        query = query.with_for_update(of=Contract)
    contract = session.execute(query).unique().scalar_one_or_none()
    if contract is None:
        raise NotFound("No such contract.")
    return contract


def require_contract(session: Session, caller: Caller, contract_id: str) -> None:
    """contract_for when only access matters (the timeline): one indexed read, no contract or lines loaded."""
    query = own_filter(select(Contract.id).where(Contract.id == contract_id), caller, Contract.owner_id)
    if session.execute(query).first() is None:
        raise NotFound("No such contract.")


def require_reader(caller: Caller) -> None:
    """Department users read only their department's inbox; nothing of the sales records."""
    if caller.role == "department":
        raise NotFound("Not found.")
