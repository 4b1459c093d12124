"""The gateway's OpenAPI document: every operation of SPEC §3 (and the additions) as data, with its schemas.

Proxied resources are described with the schemas of the service that owns them, so the document is generated
from the same marshmallow classes that load and dump the payloads.
"""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from crmkit.fields import Date
from crmkit.web.openapi import Op, Reply, build_spec

TITLE = "Sales-contract CRM"
PREFIX = "/api/v1"
DESCRIPTION = ("Money is a decimal string (\"1234.50\"); dates are YYYY-MM-DD, times ISO 8601 in UTC. Lists take "
               "?limit=&offset= and return {items, total}. Errors are {\"error\": {code, message, fields?}}. "
               "A salesperson sees only their own customers' records (anything else answers 404).")
PDF_ERRORS = (400, 401, 403, 404, 409, 422, 503)  # 503: the documents service could not be reached
# Ids in the request examples (the fuzz run swaps them for records it made)
EXAMPLE_CUSTOMER_ID = "5f0c6a4e-2b1d-4c8e-9a57-0d3f1e2a7b10"
EXAMPLE_CONTRACT_ID = "8d1e4b2a-6c3f-4e9a-b0d7-2f5a9c1e3b40"
EXAMPLE_PRODUCT_CODE = "BOLT-M8"


class SendDoc(Schema):
    """POST /contracts/{id}/send (the view's loader also takes one address as a plain string)."""
    to = fields.List(fields.Email(), validate=validate.Length(min=1, max=20))
    cc = fields.List(fields.Email(), validate=validate.Length(max=20))
    subject = fields.String(validate=validate.Length(min=1, max=200))
    message = fields.String(allow_none=True, validate=validate.Length(max=5000))


class EmailQueuedOut(Schema):
    email_id = fields.String(required=True)


class RenderingOut(Schema):
    """202 while the PDF is still being rendered: ask again after Retry-After seconds."""
    status = fields.String(required=True, validate=validate.OneOf(["rendering"]))
    kind = fields.String()
    owner_id = fields.String()
    retry_after = fields.Integer()
    message = fields.String()


class FailedRunOut(Schema):
    schedule_id = fields.String()
    run_on = Date(allow_none=True)
    error = fields.String()


class OverdueOut(Schema):
    id = fields.String()
    contract_id = fields.String()
    seq = fields.Integer()


class SchedulerReportOut(Schema):
    as_of = Date(required=True)
    generated = fields.List(fields.Raw(), required=True)
    failed = fields.List(fields.Nested(FailedRunOut), required=True)
    overdue = fields.List(fields.Nested(OverdueOut), required=True)
    deferred = fields.List(fields.String(), required=True)


class HealthOut(Schema):
    status = fields.String(required=True)
    service = fields.String()


class ReadyOut(Schema):
    status = fields.String(required=True, validate=validate.OneOf(["ready", "not_ready"]))
    service = fields.String()
    checks = fields.Dict(keys=fields.String(), values=fields.String())


def _pdf(path: str, summary: str, tag: str) -> Op:
    return Op("GET", path, summary, tag, response={"type": "string", "format": "binary"},
              content_type="application/pdf", errors=PDF_ERRORS,
              extra_statuses={202: Reply("Still being rendered; ask again after Retry-After seconds", RenderingOut,
                                         headers={"Retry-After": {"type": "integer"}})})


def operations() -> list[Op]:
    from services.contracts import fulfilment_schemas as fs
    from services.contracts import schemas as cs
    from services.contracts.views.dead_letters import DeadLetterOut
    from services.documents import schemas as ds
    from services.inventory import schemas as inv
    from services.notifications import schemas as ns
    from services.notifications.rules import DEPARTMENTS as INBOXES
    from services.quotes import schemas as qs

    department = {"type": "string", "enum": list(INBOXES)}
    contract_out = cs.ContractOut
    ops = [
        # --- accounts and settings --------------------------------------------------------------------------
        Op("POST", "/auth/token", "A bearer token for a username and password", "accounts", body=cs.TokenIn,
           response=cs.TokenOut, public=True, errors=(400, 401, 422, 429),
           example={"username": "li.wei", "password": "correct-horse-9"}),
        Op("POST", "/users", "Create a user (admin)", "accounts", body=cs.UserIn, response=cs.UserOut, status=201,
           idempotent=True, example={"username": "li.wei", "password": "correct-horse-9", "role": "sales",
                                     "department": "sales", "email": "li.wei@example.cn"}),
        Op("GET", "/users", "List users (admin, manager)", "accounts", response=cs.UserOut, paged=True),
        Op("GET", "/users/me", "The caller", "accounts", response=cs.UserOut),
        Op("PATCH", "/users/<user_id>", "Change a user: a new password, role, department, email, or disable them "
           "(admin; a new password, role or department, or disabling, ends the user's tokens issued before)", "accounts",
           body=cs.UserPatch, response=cs.UserOut, example={"active": False}),
        Op("POST", "/users/me/password", "Change one's own password: every other session ends; the answer carries a new token", "accounts", body=cs.PasswordChange,
           response=cs.PasswordChanged, example={"current_password": "old-password", "new_password": "a-new-password"}),
        Op("GET", "/settings", "Company, shortage policy and defaults", "settings", response=cs.SettingsSchema),
        Op("PUT", "/settings", "Change the settings (admin); keys left out keep their values", "settings",
           body=cs.SettingsSchema,
           response=cs.SettingsSchema, example={
               "company": {"name": "杭州明远机械有限公司", "address": "杭州市滨江区江南大道 1 号", "phone": "0571-88880000",
                           "tax_id": "91330100MA2XXXXX0X", "bank_account": "6222 0000 0000 0000", "language": "zh-CN"},
               "shortage_policy": "notify_production", "default_payment_terms": "30% deposit, balance on delivery",
               "default_notify_departments": ["warehouse", "finance"]}),
        # --- customers --------------------------------------------------------------------------------------
        Op("POST", "/customers", "Create a customer (owned by the salesperson creating it)", "customers",
           body=cs.CustomerIn, response=cs.CustomerOut, status=201, idempotent=True,
           example={"name": "Ningbo Harbour Tools Co.", "kind": "distributor", "email": "buyer@example.com",
                    "phone": "+86 574 8700 0000", "address": "88 Harbour Road, Ningbo",
                    "contact_person": "Chen Jing", "language": "en"}),
        Op("GET", "/customers", "List the customers the caller sees (q: in name, contact person, phone or email)",
           "customers", response=cs.CustomerOut, paged=True, query=cs.CustomerQuery),
        Op("GET", "/customers/<customer_id>", "One customer", "customers", response=cs.CustomerOut),
        Op("PATCH", "/customers/<customer_id>", "Change a customer", "customers", body=cs.CustomerIn(partial=True),
           response=cs.CustomerOut, example={"phone": "+86 574 8700 0001"}),
        # --- products (inventory) ---------------------------------------------------------------------------
        Op("POST", "/products", "Add a product to the catalogue (admin, manager)", "products", body=inv.ProductIn,
           response=inv.ProductOut, status=201, idempotent=True,
           example={"code": EXAMPLE_PRODUCT_CODE, "name": "六角螺栓 M8", "unit": "件", "unit_price": "12.50",
                    "tax_rate": "0.13"}),
        Op("GET", "/products", "The catalogue with stock", "products", response=inv.ProductOut, paged=True,
           query=inv.ProductQuery),
        Op("GET", "/products/<code>", "One product with its stock", "products", response=inv.ProductOut),
        Op("PATCH", "/products/<code>", "Change a product: price, name, unit, tax rate (admin, manager); contracts "
           "and quotes made before keep theirs", "products", body=inv.ProductPatch, response=inv.ProductOut,
           example={"unit_price": "13.20"}),
        Op("POST", "/products/<code>/stock", "Goods received or adjusted (admin, manager)", "products",
           body=inv.StockIn, response=inv.ProductOut, example={"delta": "500", "reason": "goods received"}),
        # --- quotes -----------------------------------------------------------------------------------------
        Op("POST", "/quotes", "Create a quote", "quotes", body=qs.QuoteIn, response=qs.QuoteOut, status=201,
           idempotent=True, errors=(400, 401, 403, 404, 409, 422, 503),
           example={"customer_id": EXAMPLE_CUSTOMER_ID, "valid_until": "2026-12-31",
                    "lines": [{"product_code": EXAMPLE_PRODUCT_CODE, "quantity": "40", "discount": "0.05"}],
                    "payment_terms": "30% deposit, balance on delivery"}),
        Op("GET", "/quotes", "List quotes", "quotes", response=qs.QuoteOut, paged=True, query=qs.QuoteQuery),
        Op("GET", "/quotes/<quote_id>", "One quote", "quotes", response=qs.QuoteOut),
        Op("PATCH", "/quotes/<quote_id>", "Change a draft quote", "quotes", body=qs.QuotePatch,
           response=qs.QuoteOut, errors=(400, 401, 403, 404, 409, 422, 503),
           example={"notes": "Prices include delivery to Ningbo."}),
        Op("POST", "/quotes/<quote_id>/send", "Send the quote: emails its PDF to the customer's address of this "
           "moment, which it also prints (422 naming customer.email when there is none). A sent quote still valid is "
           "sent again the same way, with its PDF printed anew; sent_at is the latest send (429 with Retry-After "
           "within a minute of the last)", "quotes", response=qs.QuoteOut, errors=(401, 403, 404, 409, 422, 429, 503)),
        Op("POST", "/quotes/<quote_id>/accept", "The customer accepted", "quotes", response=qs.QuoteOut),
        Op("POST", "/quotes/<quote_id>/reject", "The customer rejected", "quotes", response=qs.QuoteOut),
        Op("POST", "/quotes/<quote_id>/contract", "Make the contract from an accepted quote (again: the same one); "
           "a delivery date or payment terms given replace the quote's", "contracts", body=cs.FromQuoteIn,
           body_required=False, response=contract_out, status=201, idempotent=True,
           extra_statuses={200: Reply("The contract made from this quote before", contract_out)}),
        _pdf("/quotes/<quote_id>/pdf", "The quote's PDF", "quotes"),
        # --- contracts --------------------------------------------------------------------------------------
        Op("POST", "/contracts", "Create a contract from a quote or from lines", "contracts", body=cs.ContractIn,
           response=contract_out, status=201, idempotent=True, errors=(400, 401, 403, 404, 409, 422, 503),
           extra_statuses={200: Reply("The contract made from this quote before", contract_out)},
           example={"customer_id": EXAMPLE_CUSTOMER_ID,
                    "lines": [{"product_code": EXAMPLE_PRODUCT_CODE, "quantity": "4"}],
                    "delivery_date": "2026-12-15",
                    "notify_departments": ["warehouse"], "send_to_customer": True}),
        Op("GET", "/contracts", "List contracts (q: in the number or the customer's name)", "contracts", response=contract_out, paged=True,
           query=cs.ContractQuery),
        Op("GET", "/contracts/<contract_id>", "One contract with its live stock check", "contracts",
           response=contract_out),
        Op("PATCH", "/contracts/<contract_id>", "Change a draft contract (never its customer)", "contracts",
           body=cs.ContractPatch, response=contract_out, errors=(400, 401, 403, 404, 409, 422, 503),
           example={"delivery_date": "2026-12-20", "payment_terms": "Balance within 30 days of delivery"}),
        Op("POST", "/contracts/<contract_id>/confirm", "Confirm: reserve stock, render, email, notify",
           "contracts", response=contract_out),
        Op("POST", "/contracts/<contract_id>/cancel", "Cancel: release the stock", "contracts",
           response=contract_out),
        Op("GET", "/contracts/<contract_id>/timeline", "Every event that touched the contract", "contracts",
           response=cs.TimelineOut, paged=True),
        _pdf("/contracts/<contract_id>/pdf", "The contract's PDF", "contracts"),
        Op("POST", "/contracts/<contract_id>/send", "Email the contract's PDF", "contracts", body=SendDoc,
           body_required=False, response=EmailQueuedOut, status=202, idempotent=True,
           errors=(400, 401, 403, 404, 409, 422, 429),
           example={"to": ["buyer@example.com"], "subject": "Contract HT-2026-000001",
                    "message": "Please find the signed contract attached."}),
        # --- emails (notifications) -------------------------------------------------------------------------
        Op("GET", "/emails", "Emails of the caller's contracts and quotes", "emails", response=ns.EmailOut,
           paged=True, query=ns.EmailQuery),
        Op("GET", "/emails/<email_id>", "One email: queued, sent or failed", "emails", response=ns.EmailOut),
        # --- delivery notes ---------------------------------------------------------------------------------
        Op("POST", "/contracts/<contract_id>/delivery-notes", "A delivery note (no lines: all not yet delivered)",
           "deliveries", body=fs.DeliveryNoteIn, body_required=False, response=fs.DeliveryNoteOut, status=201,
           idempotent=True, example={"lines": [{"product_code": EXAMPLE_PRODUCT_CODE, "quantity": "2"}],
                                     "ship_date": "2026-12-10"}),
        Op("GET", "/contracts/<contract_id>/delivery-notes", "The contract's delivery notes", "deliveries",
           response=fs.DeliveryNoteOut, paged=True),
        Op("GET", "/delivery-notes/<note_id>", "One delivery note", "deliveries", response=fs.DeliveryNoteOut),
        Op("POST", "/delivery-notes/<note_id>/ship", "Ship: the goods leave the warehouse", "deliveries",
           response=fs.DeliveryNoteOut),
        _pdf("/delivery-notes/<note_id>/pdf", "The delivery note's PDF", "deliveries"),
        # --- receivables ------------------------------------------------------------------------------------
        Op("POST", "/contracts/<contract_id>/receivables-plan",
           "The receivables plan (no body: the settings' default installments)", "receivables", body=fs.PlanIn,
           body_required=False, response=fs.ReceivableOut, paged=True, status=201, idempotent=True,
           example={"installments": [
               {"label": "Deposit", "percent": "30", "due_days_after": {"event": "signing", "days": 0}},
               {"label": "Balance", "percent": "70", "due_days_after": {"event": "delivery", "days": 30}}]}),
        Op("GET", "/contracts/<contract_id>/receivables", "The contract's installments", "receivables",
           response=fs.ReceivableOut, paged=True),
        Op("GET", "/receivables", "Installments across contracts", "receivables", response=fs.ReceivableOut,
           paged=True, query=fs.ReceivableQuery),
        Op("GET", "/receivables/<receivable_id>", "One installment with its payments", "receivables",
           response=fs.ReceivableOut),
        Op("POST", "/receivables/<receivable_id>/payments", "Record a payment", "receivables", body=fs.PaymentIn,
           response=fs.ReceivableOut, status=201, idempotent=True,
           example={"amount": "1000.00", "paid_on": "2026-12-01", "reference": "BANK-REF-0001"}),
        Op("POST", "/receivables/<receivable_id>/payments/<payment_id>/void", "Void a payment entered by mistake: "
           "the installment owes it again (a completed contract is delivered again); it stays listed, voided",
           "receivables", body=fs.PaymentVoidIn, response=fs.ReceivableOut,
           example={"reason": "booked on the wrong installment"}),
        # --- recurring contracts ----------------------------------------------------------------------------
        Op("POST", "/recurring-contracts", "A schedule that repeats a contract; one active schedule per contract "
           "(409 naming source_contract_id and the active one)", "recurring", body=fs.RecurringIn,
           response=fs.RecurringOut, status=201, idempotent=True, errors=(400, 401, 403, 404, 409, 422, 503),
           example={"source_contract_id": EXAMPLE_CONTRACT_ID, "interval": "monthly", "every": 1,
                    "start_date": "2027-01-01", "auto_confirm": False, "send_to_customer": False}),
        Op("GET", "/recurring-contracts", "List schedules", "recurring", response=fs.RecurringOut, paged=True,
           query=fs.RecurringQuery),
        Op("GET", "/recurring-contracts/<schedule_id>", "One schedule with its runs", "recurring",
           response=fs.RecurringOut),
        Op("POST", "/recurring-contracts/<schedule_id>/pause", "Pause a schedule", "recurring",
           response=fs.RecurringOut),
        Op("POST", "/recurring-contracts/<schedule_id>/resume", "Resume a schedule (409 when its contract is "
           "cancelled, or repeats by another active schedule meanwhile)", "recurring", response=fs.RecurringOut),
        # --- department inboxes (notifications) -------------------------------------------------------------
        Op("GET", "/departments/<name>/notifications", "A department's inbox", "departments",
           response=ns.DepartmentMessageOut, paged=True, query=ns.InboxQuery, path_params={"name": department}),
        Op("POST", "/departments/<name>/notifications/<message_id>/ack", "Mark an inbox message read",
           "departments", response=ns.DepartmentMessageOut, path_params={"name": department}),
        # --- documents (managers, admins; salespeople use the /pdf routes) ----------------------------------
        Op("GET", "/documents", "Rendered PDFs (manager, admin)", "documents", response=ds.DocumentOut,
           paged=True, query=ds.DocumentQuery),
        Op("GET", "/documents/latest", "The newest PDF of a record (manager, admin)", "documents",
           response=ds.DocumentOut, query=ds.LatestQuery),
        Op("GET", "/documents/<document_id>", "One PDF's metadata (manager, admin)", "documents",
           response=ds.DocumentOut),
        Op("GET", "/documents/<document_id>/content", "One PDF's bytes (manager, admin)", "documents",
           response={"type": "string", "format": "binary"}, content_type="application/pdf",
           errors=(400, 401, 403, 404, 409, 422, 503)),
        # --- operators --------------------------------------------------------------------------------------
        Op("POST", "/admin/scheduler/run", "Run due recurring contracts and overdue checks as of a date (admin)",
           "admin", body=fs.SchedulerRunIn, body_required=False, response=SchedulerReportOut,
           example={"as_of": "2026-12-31"}),
        Op("GET", "/admin/dead-letters", "Dead-lettered messages (admin)", "admin",
           response=DeadLetterOut(exclude=("headers", "body")), paged=True),
        Op("GET", "/admin/dead-letters/<dead_letter_id>", "One dead letter with headers and body (admin)", "admin",
           response=DeadLetterOut),
        Op("POST", "/admin/dead-letters/<dead_letter_id>/replay", "Put a dead letter back on its queue (admin)",
           "admin", response=DeadLetterOut, status=202),
        # --- outside the prefix -----------------------------------------------------------------------------
        Op("GET", "/healthz", "Alive", "health", response=HealthOut, public=True, errors=(), prefixed=False),
        Op("GET", "/readyz", "Database and broker reachable", "health", response=ReadyOut, public=True, errors=(),
           prefixed=False, extra_statuses={503: Reply("Not ready", ReadyOut)}),
        Op("GET", "/metrics", "Prometheus metrics", "health", response={"type": "string"},
           content_type="text/plain", public=True, errors=(), prefixed=False),
        Op("GET", "/api/openapi.json", "This document", "health", response={"type": "object"}, public=True,
           errors=(), prefixed=False),
        Op("GET", "/api/docs", "This document as a page", "health", response={"type": "string"},
           content_type="text/html", public=True, errors=(), prefixed=False),
    ]
    return ops


def document(version: str = "1.0") -> dict:
    return build_spec(TITLE, version, PREFIX, operations(), DESCRIPTION, home="services.contracts")
