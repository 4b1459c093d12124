"""Payloads in and out for delivery notes, receivables, payments, recurring contracts and the scheduler."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from crmkit.fields import Date, Money, Quantity, Text, UtcDateTime, _Decimal, check_range
from services.contracts.fulfilment_rules import RECEIVABLE_STATUSES
from services.contracts.schedule import DUE_EVENTS, INTERVALS

MAX_LINES = 500
MAX_INSTALLMENTS = 60


def Percent(**kwargs):
    """A share of the total, more than 0 and at most 100, as a decimal string or an integer."""
    return _Decimal(places=4, minimum=Decimal(0), exclusive_minimum=True, maximum=Decimal(100), normalize=True,
                    **kwargs)


class DeliveryLineIn(Schema):
    product_code = fields.String(required=True, validate=validate.Length(min=1, max=64))
    quantity = Quantity(required=True)


class DeliveryNoteIn(Schema):
    lines = fields.List(fields.Nested(DeliveryLineIn), validate=validate.Length(min=1, max=MAX_LINES))
    ship_date = Date(load_default=None, allow_none=True)
    address = Text(500, load_default=None, allow_none=True)


class DeliveryLineOut(Schema):
    line_no = fields.Integer()
    product_code = fields.String()
    name = fields.String()
    unit = fields.String()
    quantity = Quantity(positive=False)


class DeliveryNoteOut(Schema):
    id = fields.String()
    number = fields.String()
    contract_id = fields.String()
    contract_number = fields.String()
    customer_id = fields.String()
    status = fields.String()
    ship_date = Date(allow_none=True)
    address = fields.String(allow_none=True)
    lines = fields.List(fields.Nested(DeliveryLineOut))
    created_by = fields.String()
    created_at = UtcDateTime()
    shipped_at = UtcDateTime(allow_none=True)


class DueAfter(Schema):
    event = fields.String(required=True, validate=validate.OneOf(DUE_EVENTS))
    days = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=3650))


class InstallmentIn(Schema):
    label = Text(100, required=True, min_length=1)
    percent = Percent()
    amount = Money(minimum=Decimal(0), exclusive_minimum=True)
    due_date = Date()
    due_days_after = fields.Nested(DueAfter)

    @validates_schema
    def _one_of_each(self, data, **kwargs):
        errors = {}
        if ("percent" in data) == ("amount" in data):
            errors["percent"] = ["Give either percent or amount."]
        if ("due_date" in data) == ("due_days_after" in data):
            errors["due_date"] = ["Give either due_date or due_days_after."]
        if errors:
            raise ValidationError(errors)


class PlanIn(Schema):
    installments = fields.List(fields.Nested(InstallmentIn), required=True,
                               validate=validate.Length(min=1, max=MAX_INSTALLMENTS))


class PaymentIn(Schema):
    amount = Money(required=True, minimum=Decimal(0), exclusive_minimum=True)
    paid_on = Date(load_default=None)
    reference = Text(200, load_default=None, allow_none=True)


class PaymentVoidIn(Schema):
    reason = Text(200, required=True, min_length=1)


class PaymentOut(Schema):
    id = fields.String()
    amount = Money()
    paid_on = Date()
    reference = fields.String(allow_none=True)
    created_by = fields.String()
    created_at = UtcDateTime()
    voided_at = UtcDateTime(allow_none=True)
    voided_by = fields.String(allow_none=True)
    void_reason = fields.String(allow_none=True)


class ReceivableOut(Schema):
    id = fields.String()
    seq = fields.Integer()
    label = fields.String()
    amount = Money()
    due_date = Date(allow_none=True)
    due_days_after = fields.Dict(allow_none=True)
    paid_amount = Money()
    outstanding = Money()
    status = fields.String()
    contract_id = fields.String()
    contract_number = fields.String()
    customer_id = fields.String()
    currency = fields.String()
    payments = fields.List(fields.Nested(PaymentOut))


class ReceivableQuery(Schema):
    status = fields.String(validate=validate.OneOf(RECEIVABLE_STATUSES))
    customer_id = fields.String(validate=validate.Length(max=64))
    contract_id = fields.String(validate=validate.Length(max=64))
    # Due on these days, both included: "what falls due this week".
    due_from = Date()
    due_to = Date()
    limit = fields.Integer()
    offset = fields.Integer()

    @validates_schema
    def _range(self, data, **kwargs):
        check_range(data, "due_from", "due_to")


LAST_SCHEDULED_DAY = date(2999, 12, 31)


class RecurringIn(Schema):
    source_contract_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    interval = fields.String(required=True, validate=validate.OneOf(INTERVALS))
    every = fields.Integer(load_default=1, strict=True, validate=validate.Range(min=1, max=120))
    # Periods are counted on from these dates for as long as the schedule runs: within the years a date can hold,
    # or a run would end in a Python error told to the salesperson.
    start_date = Date(required=True, validate=validate.Range(max=LAST_SCHEDULED_DAY))
    end_date = Date(load_default=None, allow_none=True, validate=validate.Range(max=LAST_SCHEDULED_DAY))
    auto_confirm = fields.Boolean(load_default=False)
    send_to_customer = fields.Boolean(load_default=False)

    @validates_schema
    def _ends_after_start(self, data, **kwargs):
        if data.get("end_date") and data.get("start_date") and data["end_date"] < data["start_date"]:
            raise ValidationError("Must not be before start_date.", "end_date")


class RunOut(Schema):
    run_on = Date()
    contract_id = fields.String()


class RecurringOut(Schema):
    id = fields.String()
    source_contract_id = fields.String()
    customer_id = fields.String()
    interval = fields.String()
    every = fields.Integer()
    start_date = Date()
    end_date = Date(allow_none=True)
    auto_confirm = fields.Boolean()
    send_to_customer = fields.Boolean()
    status = fields.String()
    next_run_on = Date(allow_none=True)
    next_due_on = Date(allow_none=True)
    last_error = fields.String(allow_none=True)
    runs = fields.List(fields.Nested(RunOut))
    created_by = fields.String()
    created_at = UtcDateTime()


class RecurringQuery(Schema):
    status = fields.String(validate=validate.OneOf(["active", "paused", "ended"]))
    source_contract_id = fields.String(validate=validate.Length(max=64))
    limit = fields.Integer()
    offset = fields.Integer()


class SchedulerRunIn(Schema):
    as_of = Date(load_default=None)
