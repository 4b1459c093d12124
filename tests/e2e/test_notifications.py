"""Notifications end to end: department inboxes and queues, the customer's email and its PDF, retries, no duplicates."""
from __future__ import annotations

import email.header
import hashlib
import json
import re
import sqlite3
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from support.infra import ProcessCluster, wait_for
from support.pdf import pdf_text

IN_A_MONTH = (date.today() + timedelta(days=30)).isoformat()
SPEC_FIELDS = {"id", "type", "department", "occurred_at", "contract", "lines", "reason", "text"}


# --------------------------------------------------------------------------- the two modes' back doors

class EmbeddedBackdoor:
    """SQLite files and the embedded broker of the in-process system."""

    def __init__(self, system):
        self.var = Path(system.var)

    def rows(self, service: str, sql: str, params=()) -> list:
        conn = sqlite3.connect(self.var / f"{service}.sqlite", timeout=30)
        try:
            return conn.execute(sql.replace("%s", "?"), params).fetchall()
        finally:
            conn.close()

    def execute(self, service: str, sql: str, params=()) -> None:
        # Times as SQLAlchemy stores them in SQLite: naive UTC text.
        params = [p.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(p, datetime) else p
                  for p in params]
        conn = sqlite3.connect(self.var / f"{service}.sqlite", timeout=30)
        try:
            with conn:
                conn.execute(sql.replace("%s", "?"), params)
        finally:
            conn.close()

    def _connection(self):
        from crmkit.messaging.broker import connect
        from crmkit.settings import Settings
        return connect(Settings.from_env("notifications", {"CRM_VAR_DIR": str(self.var), "CRM_SECRET_KEY": "x"}))

    def get(self, queue: str) -> dict | None:
        with self._connection() as conn:
            message = conn.default_channel.basic_get(queue, no_ack=True)
            return json.loads(message.body) if message is not None else None

    def publish(self, exchange: str, routing_key: str, body: str) -> None:
        from kombu import Producer
        from crmkit.messaging import topology
        with self._connection() as conn:
            topology.declare_all(conn.default_channel)
            Producer(conn.default_channel).publish(body, exchange=exchange, routing_key=routing_key, serializer=None,
                                                   content_type="application/json", content_encoding="utf-8",
                                                   delivery_mode=2)


class ClusterBackdoor:
    """PostgreSQL (one schema per service) and RabbitMQ through plain pika, as an outside program would."""

    def __init__(self, system):
        self.database_url = system.env["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
        self.amqp_url = system.env["AMQP_URL"]

    def rows(self, service: str, sql: str, params=()) -> list:
        import psycopg
        with psycopg.connect(self.database_url) as conn:
            conn.execute(f'SET search_path TO "{service}"')
            return conn.execute(sql, params).fetchall()

    def execute(self, service: str, sql: str, params=()) -> None:
        import psycopg
        with psycopg.connect(self.database_url) as conn:
            conn.execute(f'SET search_path TO "{service}"')
            conn.execute(sql, params)

    def get(self, queue: str) -> dict | None:
        import pika
        connection = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
        try:
            method, properties, body = connection.channel().basic_get(queue, auto_ack=True)
            if method is None:
                return None
            assert properties.content_type == "application/json" and properties.delivery_mode == 2
            return json.loads(body)
        finally:
            connection.close()

    def publish(self, exchange: str, routing_key: str, body: str) -> None:
        import pika
        connection = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            channel.basic_publish(exchange, routing_key, body.encode(), pika.BasicProperties(
                content_type="application/json", delivery_mode=2))
        finally:
            connection.close()


# --------------------------------------------------------------------------- helpers

def utc_ago(**delta):
    return datetime.now(timezone.utc) - timedelta(**delta)


def fields_of(response) -> dict:
    assert response.status_code == 422, response
    return response.json["error"]["fields"]


def inbox(api, department: str, **params):
    response = api.get(f"/api/v1/departments/{department}/notifications", params=params)
    assert response.status_code == 200, response
    return response.json


def timeline_types(api, contract_id: str) -> list[str]:
    return [e["type"] for e in api.get(f"/api/v1/contracts/{contract_id}/timeline").json["items"]]


def mails_with(smtp, message_id: str) -> list:
    return [m for m in list(smtp.messages) if m["Message-ID"] == message_id]


def subject_of(message) -> str:
    return str(email.header.make_header(email.header.decode_header(message["Subject"])))


def text_of(message) -> str:
    [part] = [part for part in message.walk() if part.get_content_type() == "text/plain"]
    return part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")


def pdf_of(message) -> bytes:
    [attachment] = [part for part in message.walk() if part.get_content_type() == "application/pdf"]
    return attachment.get_payload(decode=True)


def handled(backdoor, message_id: str) -> bool:
    return bool(backdoor.rows("notifications", "SELECT 1 FROM inbox WHERE consumer = %s AND message_id = %s",
                              ("notifications", message_id)))


# --------------------------------------------------------------------------- the flow, in both modes

def run_notifications(api, smtp, backdoor):
    assert api.put("/api/v1/settings", json={
        "company": {"name": "宁波恒达五金有限公司", "language": "zh-CN"}, "shortage_policy": "notify_production",
    }).status_code == 200
    api.product("BOLT-M8", stock=100, price="12.50", name="六角螺栓 M8")
    api.product("GEAR-40", stock=1, price="300.00", name="齿轮 40T")
    alice = api.user("alice", "sales", department="sales", email="alice@example.cn")
    bob = api.user("bob", "sales", department="sales")
    warehouse = api.user("wh-1", "department", department="warehouse")
    finance = api.user("fin-1", "department", department="finance")
    production = api.user("prod-1", "department", department="production")
    customer = alice.customer(email="buyer@example.cn")

    # Confirmed with two departments ticked and the customer to be emailed.
    contract = alice.contract(customer["id"], [("BOLT-M8", 4)], notify_departments=["warehouse", "finance"],
                              send_to_customer=True, delivery_date="2026-12-20")
    assert alice.post(f"/api/v1/contracts/{contract['id']}/confirm").status_code == 200
    number = contract["number"]

    # One message in each ticked department's inbox, readable by that department.
    items = wait_for(lambda: inbox(warehouse, "warehouse")["items"], message="warehouse inbox")
    assert len(items) == 1
    message = items[0]
    assert SPEC_FIELDS <= set(message)
    assert (message["type"], message["department"], message["reason"]) == ("contract.confirmed", "warehouse",
                                                                           "contract_confirmed")
    assert message["contract"] == {"id": contract["id"], "number": number, "customer_name": customer["name"],
                                   "delivery_date": "2026-12-20"}
    assert message["text"] == f"合同 {number}（{customer['name']}）已确认，交货日期 2026-12-20，请安排备货。"
    assert message["lines"][0]["product_code"] == "BOLT-M8" and message["lines"][0]["quantity"] == "4"
    assert wait_for(lambda: inbox(finance, "finance")["total"] == 1, message="finance inbox")
    assert inbox(production, "production")["total"] == 0

    # The same message on crm.department.warehouse, as any AMQP client reads it.
    queued = wait_for(lambda: backdoor.get("crm.department.warehouse"), message="crm.department.warehouse")
    assert SPEC_FIELDS <= set(queued)
    assert {k: queued[k] for k in SPEC_FIELDS} == {k: message[k] for k in SPEC_FIELDS}

    # Who reads which inbox.
    assert warehouse.get("/api/v1/departments/finance/notifications").status_code == 403
    assert alice.get("/api/v1/departments/warehouse/notifications").status_code == 403
    assert warehouse.get("/api/v1/departments/marketing/notifications").status_code == 404
    assert api.get("/api/v1/departments/warehouse/notifications").json["total"] == 1  # the admin
    assert fields_of(warehouse.get("/api/v1/departments/warehouse/notifications", params={"unread": "maybe"})) \
        == {"unread": ["Not a valid boolean."]}

    # Ack: gone from the unread list, still in the inbox; another department cannot ack it.
    ack_path = f"/api/v1/departments/warehouse/notifications/{message['id']}/ack"
    assert finance.post(ack_path).status_code == 403
    acked = warehouse.post(ack_path)
    assert acked.status_code == 200 and acked.json["acked_at"], acked
    assert warehouse.post(ack_path).json["acked_at"] == acked.json["acked_at"]
    assert inbox(warehouse, "warehouse", unread="1")["total"] == 0
    assert inbox(warehouse, "warehouse")["total"] == 1

    # department.notified on the timeline, twice.
    wait_for(lambda: timeline_types(alice, contract["id"]).count("department.notified") == 2,
             message="department.notified on the timeline")

    # Once the PDF is rendered, the customer gets exactly one email with it attached.
    sent = wait_for(lambda: [m for m in list(smtp.messages) if number in subject_of(m)], timeout=30,
                    message="the contract email")
    assert len(sent) == 1
    mail = sent[0]
    assert mail["To"] == "buyer@example.cn"
    assert subject_of(mail) == f"销售合同 {number} / Sales Contract {number}"
    assert mail["Reply-To"] == "alice@example.cn"
    pdf = pdf_of(mail)
    assert pdf.startswith(b"%PDF")
    served = alice.get(f"/api/v1/contracts/{contract['id']}/pdf")
    assert served.status_code == 200 and hashlib.sha256(served.content).hexdigest() == hashlib.sha256(pdf).hexdigest()
    listed = wait_for(lambda: (r := alice.get("/api/v1/emails", params={"contract_id": contract["id"]}).json)
                      ["items"] and r["items"][0]["status"] == "sent" and r, message="email status sent")
    assert listed["total"] == 1
    auto = listed["items"][0]
    assert (auto["attempts"], auto["to"], auto["last_error"]) == (1, ["buyer@example.cn"], None)
    assert mail["Message-ID"] == auto["message_id"]
    wait_for(lambda: "email.sent" in timeline_types(alice, contract["id"]), message="email.sent on the timeline")
    assert bob.get(f"/api/v1/emails/{auto['id']}").status_code == 404
    assert warehouse.get(f"/api/v1/emails/{auto['id']}").status_code == 404
    assert api.get(f"/api/v1/emails/{auto['id']}").json["status"] == "sent"

    # A duplicate document.rendered (the same envelope again, and a copy under a new id) sends nothing.
    [(body,)] = backdoor.rows("documents", "SELECT body FROM outbox WHERE routing_key = %s AND body LIKE %s",
                              ("document.rendered", f"%{contract['id']}%"))
    original = json.loads(body)
    copy = {**original, "id": str(uuid.uuid4())}
    backdoor.publish("crm.events", "document.rendered", body)
    backdoor.publish("crm.events", "document.rendered", json.dumps(copy, ensure_ascii=False))
    wait_for(lambda: handled(backdoor, copy["id"]), message="the copied document.rendered handled")
    assert alice.get("/api/v1/emails", params={"contract_id": contract["id"]}).json["total"] == 1
    assert len(mails_with(smtp, auto["message_id"])) == 1

    # Header injection and several addresses in one field: 422 naming the field; nothing queued.
    send_path = f"/api/v1/contracts/{contract['id']}/send"
    assert fields_of(alice.post(send_path, json={"to": ["a@b.com\r\nBcc: x@y.com"]})) == {
        "to.0": ["Must not contain line breaks or control characters."]}
    assert list(fields_of(alice.post(send_path, json={"to": "a@b.com, c@d.com"}))) == ["to.0"]
    assert list(fields_of(alice.post(send_path, json={"cc": ["ok@b.com", "Boss <boss@b.com>"]}))) == ["cc.1"]
    assert list(fields_of(alice.post(send_path, json={"subject": "Hi\r\nBcc: x@y.com"}))) == ["subject"]
    assert list(fields_of(alice.post(send_path, json={"subject": "x" * 201}))) == ["subject"]
    assert list(fields_of(alice.post(send_path, json={"to": [f"u{i}@b.com" for i in range(11)]}))) == ["to"]
    assert bob.post(send_path, json={}).status_code == 404
    assert alice.post(f"/api/v1/contracts/{alice.contract(customer['id'], [('BOLT-M8', 1)])['id']}/send",
                      json={}).status_code == 409

    # SMTP refusing during a send, then accepting: delivered exactly once, after more than one attempt.
    smtp.refusing = True
    requested = alice.post(send_path, json={"cc": ["boss@example.cn"], "message": "请查收合同，谢谢。"})
    assert requested.status_code == 202, requested
    email_id = requested.json["email_id"]
    first = alice.get(f"/api/v1/emails/{email_id}")
    assert first.status_code == 200 and first.json["status"] == "queued", first
    failing = wait_for(lambda: (e := alice.get(f"/api/v1/emails/{email_id}").json)["attempts"] >= 1
                       and e["last_error"] and e, message="a refused attempt")
    assert failing["status"] == "queued" and "451" in failing["last_error"]
    assert [m for m in inbox(alice, "sales")["items"] if m["reason"] == "email_delayed"] == []
    # Still refused ten minutes after the first attempt (moved back here rather than waited for): the salesperson
    # is told once that it has not gone and is still being retried, and the contract's timeline says so.
    backdoor.execute("notifications", "UPDATE notif_emails SET first_attempt_at = %s, next_attempt_at = %s "
                     "WHERE id = %s", (utc_ago(minutes=11), utc_ago(minutes=0), email_id))
    delayed = wait_for(lambda: [m for m in inbox(alice, "sales")["items"] if m["reason"] == "email_delayed"],
                       message="the salesperson told the email is delayed")
    assert len(delayed) == 1 and "尚未发出" in delayed[0]["text"] and "buyer@example.cn" in delayed[0]["text"]
    assert delayed[0]["contract"]["number"] == number
    wait_for(lambda: "email.delayed" in timeline_types(alice, contract["id"]), message="email.delayed on the timeline")
    assert alice.post(f"/api/v1/departments/sales/notifications/{delayed[0]['id']}/ack").status_code == 200
    smtp.refusing = False
    done = wait_for(lambda: (e := alice.get(f"/api/v1/emails/{email_id}").json)["status"] == "sent" and e,
                    timeout=30, message="sent after the refusal")
    assert done["attempts"] > 1 and done["to"] == ["buyer@example.cn"] and done["cc"] == ["boss@example.cn"]
    [resent] = mails_with(smtp, f"<{email_id}@example.cn>")
    assert "请查收合同，谢谢。" in text_of(resent)
    assert hashlib.sha256(pdf_of(resent)).hexdigest() == hashlib.sha256(pdf).hexdigest()

    # Sending a quote emails its PDF to the customer, once.
    quote = alice.post("/api/v1/quotes", json={"customer_id": customer["id"], "valid_until": IN_A_MONTH,
                                               "lines": [{"product_code": "BOLT-M8", "quantity": "10"}]}).json
    assert alice.post(f"/api/v1/quotes/{quote['id']}/send").status_code == 200
    quoted = wait_for(lambda: [m for m in list(smtp.messages) if quote["number"] in subject_of(m)], timeout=30,
                      message="the quote email")
    assert subject_of(quoted[0]) == f"报价单 {quote['number']} / Quotation {quote['number']}"
    assert quoted[0]["To"] == "buyer@example.cn" and pdf_of(quoted[0]).startswith(b"%PDF")
    quote_emails = wait_for(lambda: (r := alice.get("/api/v1/emails", params={"quote_id": quote["id"]}).json)
                            ["items"] and r["items"][0]["status"] == "sent" and r,
                            message="the quote email recorded as sent")
    assert quote_emails["total"] == 1
    # Counted again now that it is recorded sent, not at the moment the first copy arrived.
    assert len([m for m in list(smtp.messages) if quote["number"] in subject_of(m)]) == 1

    # Sent again. At once it is a double click: refused, saying when, and nothing more is mailed.
    bounced = alice.customer(name="宁波北仑机电", email="wrong@example.cn")
    resent = alice.post("/api/v1/quotes", json={"customer_id": bounced["id"], "valid_until": IN_A_MONTH,
                                                "lines": [{"product_code": "BOLT-M8", "quantity": "4"}]}).json
    first = alice.post(f"/api/v1/quotes/{resent['id']}/send")
    assert first.status_code == 200, first
    wait_for(lambda: [m for m in list(smtp.messages) if resent["number"] in subject_of(m)], timeout=30,
             message="the first quote email")
    double = alice.post(f"/api/v1/quotes/{resent['id']}/send")
    assert double.status_code == 429 and 0 < int(double.headers["Retry-After"]) <= 60, double
    # Later, the address corrected: the quote goes to the new address with a PDF printed anew for it, not the one
    # printed for the first send; the quote reads sent at the latest send.
    # (Minutes passing, for the quote's last send and for the PDF printed for it.)
    backdoor.execute("quotes", "UPDATE quotes SET sent_at = %s WHERE id = %s", (utc_ago(minutes=5), resent["id"]))
    backdoor.execute("notifications", "UPDATE notif_documents SET rendered_at = %s WHERE owner_id = %s",
                     (utc_ago(minutes=5), resent["id"]))
    assert alice.patch(f"/api/v1/customers/{bounced['id']}", json={"email": "orders@example.cn"}).status_code == 200
    again = alice.post(f"/api/v1/quotes/{resent['id']}/send")
    assert (again.status_code, again.json["status"], again.json["customer"]["email"]) == (
        200, "sent", "orders@example.cn"), again
    assert again.json["sent_at"] > first.json["sent_at"]
    copies = wait_for(lambda: len(m := [m for m in list(smtp.messages) if resent["number"] in subject_of(m)]) == 2
                      and m, timeout=30, message="the quote sent again")
    assert [m["To"] for m in copies] == ["wrong@example.cn", "orders@example.cn"]
    printed = [re.sub(r"\s+", "", pdf_text(pdf_of(m))) for m in copies]
    assert "wrong@example.cn" in printed[0] and "orders@example.cn" not in printed[0]
    assert "orders@example.cn" in printed[1] and "wrong@example.cn" not in printed[1]
    sends = wait_for(lambda: (r := alice.get("/api/v1/emails", params={"quote_id": resent["id"]}).json)["total"] == 2
                     and all(e["status"] == "sent" for e in r["items"]) and r, message="both sends recorded")
    assert sorted(e["to"][0] for e in sends["items"]) == ["orders@example.cn", "wrong@example.cn"]

    # A short line under notify_production: production gets a shortage message.
    short = alice.contract(customer["id"], [("GEAR-40", 3)], delivery_date="2026-11-30")
    alice.post(f"/api/v1/contracts/{short['id']}/confirm")
    shortage = wait_for(lambda: inbox(production, "production")["items"], message="production shortage message")
    assert shortage[0]["reason"] == "shortage" and shortage[0]["type"] == "production.requested"
    assert shortage[0]["text"].startswith(f"合同 {short['number']}")
    assert shortage[0]["text"].endswith("缺货：齿轮 40T × 2 件，交货日期 2026-11-30，请安排生产。")
    assert shortage[0]["lines"] == [{"product_code": "GEAR-40", "name": "齿轮 40T", "unit": "件", "quantity": "2"}]
    assert shortage[0]["contract"]["customer_name"] == customer["name"]

    # Goods bought in rather than made: procurement is asked for them, on its own queue.
    api.product("NUT-M8", stock=0, price="0.50", name="螺母 M8", replenished_by="procurement")
    procurement = api.user("buyer-1", "department", department="procurement")
    bought = alice.contract(customer["id"], [("NUT-M8", 200)], delivery_date="2026-12-31")
    alice.post(f"/api/v1/contracts/{bought['id']}/confirm")
    asked = wait_for(lambda: inbox(procurement, "procurement")["items"], message="procurement asked to buy")
    assert (asked[0]["type"], asked[0]["reason"]) == ("procurement.requested", "shortage")
    assert asked[0]["text"].endswith("缺货：螺母 M8 × 200 件，交货日期 2026-12-31，请安排采购。")
    queued = wait_for(lambda: backdoor.get("crm.department.procurement"), message="crm.department.procurement")
    assert (queued["type"], queued["contract"]["number"]) == ("procurement.requested", bought["number"])
    wait_for(lambda: "procurement.requested" in timeline_types(alice, bought["id"]),
             message="procurement.requested on the timeline")
    [short_entry] = [e["summary"] for e in alice.get(f"/api/v1/contracts/{bought['id']}/timeline").json["items"]
                     if e["type"] == "stock.shortage"]
    assert short_entry.endswith("procurement has been asked"), short_entry  # not production
    assert inbox(production, "production")["total"] == 1

    # Under warn_sales the salesperson is warned in the sales inbox; only they (and managers) see it.
    settings = api.get("/api/v1/settings").json
    assert api.put("/api/v1/settings", json={**settings, "shortage_policy": "warn_sales"}).status_code == 200
    warned = alice.contract(customer["id"], [("GEAR-40", 5)])
    alice.post(f"/api/v1/contracts/{warned['id']}/confirm")
    warning = wait_for(lambda: [m for m in inbox(alice, "sales")["items"] if m["reason"] != "email_delayed"],
                       message="the salesperson's warning")
    assert warning[0]["reason"] == "stock_warning" and warning[0]["recipient_id"] == alice_id(alice)
    assert warning[0]["contract"]["number"] == warned["number"] and "库存不足" in warning[0]["text"]
    assert warning[0]["contract"]["customer_name"] == customer["name"]
    assert inbox(bob, "sales")["total"] == 0
    assert bob.post(f"/api/v1/departments/sales/notifications/{warning[0]['id']}/ack").status_code == 404
    assert inbox(production, "production")["total"] == 1

    # Cancelling tells each department that was asked to act on the contract, once, and no other.
    assert alice.post(f"/api/v1/contracts/{contract['id']}/cancel").status_code == 200
    assert alice.post(f"/api/v1/contracts/{short['id']}/cancel").status_code == 200

    def cancellations(client, department):
        return [m for m in inbox(client, department)["items"] if m["reason"] == "contract_cancelled"]

    told = wait_for(lambda: cancellations(warehouse, "warehouse"), message="the warehouse told of the cancellation")
    assert told[0]["type"] == "contract.cancelled" and told[0]["contract"]["number"] == number
    assert told[0]["text"] == f"合同 {number}（{customer['name']}）已取消（原交货日期 2026-12-20），请停止备货与出库。"
    wait_for(lambda: cancellations(finance, "finance"), message="finance told of the cancellation")
    stopped = wait_for(lambda: cancellations(production, "production"), message="production told to stop")
    assert stopped[0]["contract"]["number"] == short["number"]
    queued = wait_for(lambda: backdoor.get("crm.department.warehouse"), message="the cancellation on the queue")
    assert (queued["reason"], queued["contract"]["id"]) == ("contract_cancelled", contract["id"])
    assert [len(cancellations(c, d)) for c, d in ((warehouse, "warehouse"), (finance, "finance"),
                                                   (production, "production"))] == [1, 1, 1]


def alice_id(api) -> str:
    return api.get("/api/v1/users/me").json["id"]


def test_notifications_embedded(embedded, smtp_server):
    run_notifications(embedded.api, smtp_server, EmbeddedBackdoor(embedded))


def stored_files(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file()]


@pytest.mark.e2e
def test_notifications_on_rabbitmq_and_postgresql(tmp_path, pg_url, amqp_url, smtp_server):
    """As under compose, only the documents processes see the stored PDFs: notifications sees an empty
    DOCUMENTS_DIR of its own, so every PDF it attaches is fetched from the documents service over HTTP."""
    cluster = ProcessCluster(tmp_path, amqp_url=amqp_url, database_url=pg_url, smtp=smtp_server,
                             own_documents_dir=("notifications",))
    try:
        cluster.start()
        run_notifications(cluster.api, smtp_server, ClusterBackdoor(cluster))
        # The PDFs the emails carried (each checked against the served one) were never on notifications' disk.
        assert stored_files(tmp_path / "var" / "documents")
        assert stored_files(cluster.documents_dirs["notifications"]) == []
    except BaseException:
        print(cluster.log_text())
        raise
    finally:
        cluster.stop()
