"""Gateway payloads in and out (SPEC §3 shapes)."""
from __future__ import annotations

from decimal import Decimal

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from crmkit.fields import Date, Money, Price, Quantity, Rate, Text, UtcDateTime, check_range
from crmkit.messaging.topology import DEPARTMENT_NAMES
from crmkit.web.auth import ROLES
from services.contracts.fulfilment_schemas import MAX_INSTALLMENTS, InstallmentIn

LANGUAGES = ["zh-CN", "en"]
DEPARTMENTS = list(DEPARTMENT_NAMES)
MAX_LINES = 500


def _no_newlines(value: str) -> bool:
    return "\r" not in value and "\n" not in value


class SingleEmail(fields.Email):
    """One address, no display name, no CR/LF: nothing that could add a header or a recipient."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str) and (not _no_newlines(value) or "," in value or ";" in value):
            raise ValidationError("Must be a single email address.")
        return super()._deserialize(value, attr, data, **kwargs)


class TokenIn(Schema):
    username = Text(64, required=True, min_length=1)
    password = Text(256, required=True, min_length=1)


class TokenOut(Schema):
    access_token = fields.String()
    token_type = fields.String()
    expires_in = fields.Integer()


class UserIn(Schema):
    username = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9._@\-]{2,64}$",
                                                                      error="2-64 letters, digits or . _ @ -"))
    password = Text(256, required=True, min_length=8)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    department = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(DEPARTMENTS))
    email = SingleEmail(load_default=None, allow_none=True)

    @validates_schema
    def _department(self, data, **kwargs):
        if data.get("role") == "department" and not data.get("department"):
            raise ValidationError("A department user needs a department.", "department")


class UserPatch(Schema):
    """An admin's change to a user: a new password, another role or department, an email, or disabled."""
    password = Text(256, min_length=8)
    role = fields.String(validate=validate.OneOf(ROLES))
    department = fields.String(allow_none=True, validate=validate.OneOf(DEPARTMENTS))
    email = SingleEmail(allow_none=True)
    active = fields.Boolean()


class PasswordChange(Schema):
    current_password = Text(256, required=True, min_length=1)
    new_password = Text(256, required=True, min_length=8)


class UserOut(Schema):
    id = fields.String()
    username = fields.String()
    role = fields.String()
    department = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    active = fields.Boolean()
    created_at = UtcDateTime()


class PasswordChanged(UserOut):
    """The user, and a new token: the change ended every token issued before, this request's too."""
    USER_FIELDS = tuple(UserOut._declared_fields)
    access_token = fields.String()
    token_type = fields.String()
    expires_in = fields.Integer()


# No load_default in the two settings schemas: a key a PUT leaves out keeps its stored value (settings_store), so it
# must stay absent from the loaded data; the defaults of a fresh system are settings_store.DEFAULTS.
class CompanySchema(Schema):
    name = Text(200)
    address = Text(500)
    phone = Text(64)
    tax_id = Text(64)
    bank_account = Text(200)
    language = fields.String(validate=validate.OneOf(LANGUAGES))
    terms = Text(4000)
    footer = Text(500)
    email = SingleEmail(allow_none=True)


class InstallmentTerms(fields.List):
    """default_installments: checked as a receivables plan's installments are, kept in their JSON shape."""

    def __init__(self, **kwargs):
        super().__init__(fields.Nested(InstallmentIn), validate=validate.Length(max=MAX_INSTALLMENTS), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        # Refused when written (422 naming default_installments.0.percent), not at the plan that would use them.
        return InstallmentIn(many=True).dump(super()._deserialize(value, attr, data, **kwargs))

    def _serialize(self, value, attr, obj, **kwargs):
        return value  # stored as loaded above; older rows are shown as they are, and checked again by the plan


class SettingsSchema(Schema):
    """The company settings, in and out; a PUT's absent keys keep their values (settings_store.update_settings)."""

    class Meta:
        description = ("PUT changes only what it is given: a top-level key left out, or a key left out of `company`, "
                       "keeps its current value; a key given (an empty list or string too) replaces it. "
                       "`default_installments` take the rules of a receivables plan's installments.")

    company = fields.Nested(CompanySchema)
    shortage_policy = fields.String(validate=validate.OneOf(["notify_production", "warn_sales"]))
    default_payment_terms = Text(1000)
    default_notify_departments = fields.List(fields.String(validate=validate.OneOf(DEPARTMENTS)))
    default_installments = InstallmentTerms()


class CustomerIn(Schema):
    name = Text(200, required=True, min_length=1)
    kind = fields.String(load_default="company",
                         validate=validate.OneOf(["individual", "distributor", "manufacturer", "company"]))
    email = SingleEmail(load_default=None, allow_none=True)
    phone = Text(64, load_default=None, allow_none=True)
    address = Text(500, load_default=None, allow_none=True)
    contact_person = Text(100, load_default=None, allow_none=True)
    language = fields.String(load_default="zh-CN", validate=validate.OneOf(LANGUAGES))
    owner = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=64))


class CustomerOut(Schema):
    id = fields.String()
    name = fields.String()
    kind = fields.String()
    email = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    address = fields.String(allow_none=True)
    contact_person = fields.String(allow_none=True)
    language = fields.String()
    owner = fields.String()
    created_at = UtcDateTime()


class LineIn(Schema):
    product_code = fields.String(required=True, validate=validate.Length(min=1, max=64))
    quantity = Quantity(required=True)
    unit_price = Price(load_default=None, allow_none=True)
    discount = Rate(load_default=Decimal(0))


class ContractIn(Schema):
    quote_id = fields.String(validate=validate.Length(min=1, max=64))
    customer_id = fields.String(validate=validate.Length(min=1, max=64))
    lines = fields.List(fields.Nested(LineIn), validate=validate.Length(min=1, max=MAX_LINES))
    delivery_date = Date(load_default=None, allow_none=True)
    payment_terms = Text(1000, load_default=None, allow_none=True)
    notify_departments = fields.List(fields.String(validate=validate.OneOf(DEPARTMENTS)), load_default=None,
                                     allow_none=True, validate=validate.Length(max=len(DEPARTMENTS)))
    send_to_customer = fields.Boolean(load_default=None, allow_none=True)
    confirm = fields.Boolean(load_default=False)

    @validates_schema
    def _source(self, data, **kwargs):
        if data.get("quote_id"):
            extra = [k for k in ("customer_id", "lines") if data.get(k) is not None]
            if extra:
                raise ValidationError("Give either quote_id or customer_id with lines, not both.", extra[0])
            return
        errors = {}
        if not data.get("customer_id"):
            errors["customer_id"] = ["Missing data for required field."]
        if not data.get("lines"):
            errors["lines"] = ["Missing data for required field."]
        if errors:
            raise ValidationError(errors)


class FromQuoteIn(Schema):
    """POST /quotes/{id}/contract: what the contract takes besides the quote (its dates and terms unless given)."""
    delivery_date = Date(load_default=None, allow_none=True)
    payment_terms = Text(1000, load_default=None, allow_none=True)
    notify_departments = fields.List(fields.String(validate=validate.OneOf(DEPARTMENTS)), load_default=None,
                                     allow_none=True, validate=validate.Length(max=len(DEPARTMENTS)))
    send_to_customer = fields.Boolean(load_default=None, allow_none=True)
    confirm = fields.Boolean(load_default=False)


class ContractPatch(Schema):
    customer_id = fields.String()
    lines = fields.List(fields.Nested(LineIn), validate=validate.Length(min=1, max=MAX_LINES))
    delivery_date = Date(allow_none=True)
    payment_terms = Text(1000, allow_none=True)
    notify_departments = fields.List(fields.String(validate=validate.OneOf(DEPARTMENTS)),
                                     validate=validate.Length(max=len(DEPARTMENTS)))
    send_to_customer = fields.Boolean()
    version = fields.Integer()


class LineOut(Schema):
    product_code = fields.String()
    name = fields.String()
    unit = fields.String()
    quantity = Quantity(positive=False)
    unit_price = Price()
    discount = Rate()
    tax_rate = Rate()
    amount = Money()
    tax_amount = Money()
    available = Quantity(positive=False, allow_none=True)
    shortage = Quantity(positive=False, allow_none=True)
    reserved = Quantity(positive=False)
    delivered = Quantity(positive=False)


class WarningOut(Schema):
    code = fields.String()
    product_code = fields.String(allow_none=True)
    requested = fields.String(allow_none=True)
    available = fields.String(allow_none=True)
    message = fields.String(allow_none=True)


class PartySnapshot(Schema):
    name = fields.String()
    address = fields.String(allow_none=True)
    contact_person = fields.String(allow_none=True)


class ContractOut(Schema):
    id = fields.String()
    number = fields.String()
    version = fields.Integer()
    customer_id = fields.String()
    customer = fields.Nested(PartySnapshot)
    quote_id = fields.String(allow_none=True)
    recurring_id = fields.String(allow_none=True)
    status = fields.String()
    currency = fields.String()
    lines = fields.List(fields.Nested(LineOut))
    subtotal = Money()
    tax_total = Money()
    total = Money()
    total_in_words = fields.String()
    delivery_date = Date(allow_none=True)
    payment_terms = fields.String(allow_none=True)
    notify_departments = fields.List(fields.String())
    send_to_customer = fields.Boolean()
    stock_status = fields.String()
    warnings = fields.List(fields.Nested(WarningOut))
    document_id = fields.String(allow_none=True)
    owner_id = fields.String()
    created_by = fields.String()
    created_at = UtcDateTime()
    confirmed_at = UtcDateTime(allow_none=True)


class CustomerQuery(Schema):
    q = fields.String(validate=validate.Length(min=1, max=200))  # in name, contact person, phone or email
    limit = fields.Integer()
    offset = fields.Integer()


class ContractQuery(Schema):
    customer_id = fields.String(validate=validate.Length(max=64))
    q = fields.String(validate=validate.Length(min=1, max=200))  # in the number or the customer's name
    status = fields.String(validate=validate.OneOf(["draft", "confirmed", "partially_delivered", "delivered",
                                                    "completed", "cancelled"]))
    # Signed on these days, the company's days (CRM_TIMEZONE), both included: "this month's contracts".
    confirmed_from = Date()
    confirmed_to = Date()
    limit = fields.Integer()
    offset = fields.Integer()

    @validates_schema
    def _range(self, data, **kwargs):
        check_range(data, "confirmed_from", "confirmed_to")


class TimelineOut(Schema):
    at = UtcDateTime()
    type = fields.String()
    summary = fields.String()
