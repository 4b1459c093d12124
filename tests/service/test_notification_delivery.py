"""Notifications' handlers and sender on real SQLite and PostgreSQL databases and a real SMTP server.

The PDF fetch is stubbed."""
from __future__ import annotations

import dataclasses
import json
import smtplib
import threading
import time
import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from crmkit.messaging.envelope import Envelope
from crmkit.models import OutboxMessage
from crmkit.settings import Settings
from crmkit.timeutil import iso, utcnow
from services.notifications import emails, mailer
from services.notifications.handlers import HANDLERS, make_context
from services.notifications.models import TABLES, DepartmentMessage, Email
from support.handlers import run_handler
from support.infra import wait_for

PDF = b"%PDF-1.4 a contract"


@pytest.fixture
def db(make_db):
    return make_db(TABLES)


@pytest.fixture
def settings(tmp_path, smtp_server):
    return Settings.from_env("notifications", {"CRM_VAR_DIR": str(tmp_path), "CRM_SECRET_KEY": "test",
                                               **smtp_server.env})


@pytest.fixture(autouse=True)
def no_documents_service(monkeypatch):
    monkeypatch.setattr(emails, "fetch_pdf", lambda settings, document_id, sha256: PDF)


def handle(db, settings, type: str, data: dict, source: str = "contracts", id: str | None = None) -> Envelope:
    envelope = Envelope(type=type, source=source, data=data, correlation_id=data.get("contract_id"))
    if id:
        envelope.id = id
    run_handler(db, HANDLERS, envelope, make_context(settings, db))
    return envelope


def confirmed(contract_id: str, **extra) -> dict:
    return {"contract_id": contract_id, "number": "HT-2026-000001", "customer": {
        "name": "杭州明远机械有限公司", "email": "buyer@example.cn", "language": "zh-CN"},
        "company": {"name": "恒达五金"}, "company_language": "zh-CN", "owner_id": "u-alice",
        "owner": {"id": "u-alice", "username": "alice", "email": "alice@example.cn"},
        "lines": [{"line_no": 1, "product_code": "BOLT-M8", "name": "六角螺栓 M8", "unit": "件", "quantity": "4"}],
        "delivery_date": "2026-12-20", "notify_departments": ["warehouse", "finance"], "send_to_customer": True,
        **extra}


def rendered(contract_id: str, document_id: str = "doc-1") -> dict:
    return {"document_id": document_id, "kind": "contract", "owner_id": contract_id, "contract_id": contract_id,
            "number": "HT-2026-000001", "sha256": "0" * 64, "size": len(PDF),
            "filename": "销售合同-HT-2026-000001.pdf"}


def counted() -> dict[str, float]:
    """crm_emails_total of this process by outcome, as an operator's dashboard reads it."""
    from prometheus_client import REGISTRY
    return {outcome: REGISTRY.get_sample_value("crm_emails_total", {"service": "notifications", "outcome": outcome})
            or 0.0 for outcome in ("sent", "retry", "failed")}


def changed(before: dict, after: dict) -> dict:
    return {k: after[k] - before[k] for k in after if after[k] != before[k]}


def the_emails(db) -> list[Email]:
    with db.session() as session:
        return session.execute(select(Email).order_by(Email.created_at)).scalars().all()


def outbox(db, routing_key: str) -> list[dict]:
    with db.session() as session:
        rows = session.execute(select(OutboxMessage.body).where(OutboxMessage.routing_key == routing_key)
                               .order_by(OutboxMessage.seq)).scalars().all()
    return [json.loads(body) for body in rows]


def sales_messages(db) -> list[DepartmentMessage]:
    with db.session() as session:
        return session.execute(select(DepartmentMessage).where(DepartmentMessage.department == "sales")).scalars().all()


def test_confirmed_contract_is_emailed_once_its_pdf_is_rendered(db, settings, smtp_server):
    handle(db, settings, "contract.confirmed", confirmed("c-1"))
    [email] = the_emails(db)
    assert (email.status, email.document_id, email.to) == ("waiting", None, ["buyer@example.cn"])
    assert emails.send_due(settings, db) == 0  # nothing to attach yet

    handle(db, settings, "document.rendered", rendered("c-1"), source="documents")
    assert emails.send_due(settings, db) == 1
    [message] = smtp_server.messages
    assert message["To"] == "buyer@example.cn" and message["Reply-To"] == "alice@example.cn"
    [email] = the_emails(db)
    assert (email.status, email.attempts, email.document_id) == ("sent", 1, "doc-1")
    [sent] = outbox(db, "email.sent")
    assert sent["data"]["email_id"] == email.id and sent["data"]["contract_id"] == "c-1"

    # The same PDF announced again, or a new rendering of it: no second email.
    handle(db, settings, "document.rendered", rendered("c-1"), source="documents")
    handle(db, settings, "document.rendered", rendered("c-1", "doc-2"), source="documents")
    emails.housekeeping(db)
    assert emails.send_due(settings, db) == 0
    assert len(the_emails(db)) == 1 and len(smtp_server.messages) == 1


def test_the_senders_report_how_long_due_emails_waited_and_how_long_delivery_took(db, settings, smtp_server):
    """What an operator reads to know whether notifications needs more senders or another worker."""
    from prometheus_client import REGISTRY

    def sample(name: str, **labels) -> float:
        return REGISTRY.get_sample_value(name, {"service": "notifications", **labels}) or 0.0

    names = ("crm_email_wait_seconds_count", "crm_email_wait_seconds_sum", "crm_email_send_seconds_count",
             "crm_email_send_seconds_sum")
    before = {name: sample(name) for name in names}
    waited_30s_or_less = sample("crm_email_wait_seconds_bucket", le="30.0")
    outcomes = counted()
    for n in range(2):
        handle(db, settings, "contract.confirmed", confirmed(f"c-{n}"))
        handle(db, settings, "document.rendered", rendered(f"c-{n}", f"doc-{n}"), source="documents")
    with db.session() as session:  # both became due a minute ago and no sender was free since
        session.execute(update(Email).values(next_attempt_at=utcnow() - timedelta(seconds=60)))
    assert emails.send_due(settings, db) == 2
    assert len(smtp_server.messages) == 2
    assert changed(outcomes, counted()) == {"sent": 2}

    assert sample("crm_email_wait_seconds_count") - before["crm_email_wait_seconds_count"] == 2
    assert sample("crm_email_wait_seconds_sum") - before["crm_email_wait_seconds_sum"] >= 120
    assert sample("crm_email_send_seconds_count") - before["crm_email_send_seconds_count"] == 2
    assert sample("crm_email_send_seconds_sum") - before["crm_email_send_seconds_sum"] > 0
    # Both fall past the 30 s bucket, where a backlog shows (the default buckets would stop at 10 s).
    assert sample("crm_email_wait_seconds_bucket", le="30.0") == waited_30s_or_less


def test_an_outcome_counts_only_once_its_transaction_commits(db):
    from sqlalchemy.orm import Session
    before = counted()
    with Session(db.engine) as session:
        session.execute(update(Email).values(attempts=Email.attempts))  # the failure's own write
        emails._count(session, "failed")
        session.rollback()  # the write did not happen, so neither did the failure
        session.execute(update(Email).values(attempts=Email.attempts))
        session.commit()
        assert changed(before, counted()) == {}
        session.execute(update(Email).values(attempts=Email.attempts))
        emails._count(session, "sent")
        session.commit()
    assert changed(before, counted()) == {"sent": 1}


def test_a_batch_of_emails_shares_one_smtp_connection_and_survives_the_server_closing_it(db, settings,
                                                                                         smtp_server):
    for n in range(4):
        handle(db, settings, "contract.confirmed", confirmed(f"c-{n}"))
        handle(db, settings, "document.rendered", rendered(f"c-{n}", f"doc-{n}"), source="documents")
    smtp_server.messages_per_connection = 2  # the server hangs up on the third MAIL of a session
    assert emails.send_due(settings, db, limit=4) == 4
    assert len(smtp_server.messages) == 4
    assert smtp_server.connections == 2  # two per connection, and the third went out on a new one at once
    assert [(e.status, e.attempts) for e in the_emails(db)] == [("sent", 1)] * 4


def test_a_sender_keeps_its_smtp_connection_between_batches_and_hangs_up_when_idle(db, settings, smtp_server,
                                                                                  monkeypatch):
    monkeypatch.setattr(emails, "_due", emails._DueSignal())
    monkeypatch.setattr(emails, "POLL_INTERVAL", 0.05)
    monkeypatch.setattr(emails, "SMTP_KEEP_SECONDS", 0.5)
    stop = threading.Event()
    loop = threading.Thread(target=emails.sender_loop, args=(dataclasses.replace(settings, email_senders=1), db,
                                                             None, stop))
    loop.start()
    try:
        for n in range(3):  # one at a time: three batches
            handle(db, settings, "contract.confirmed", confirmed(f"c-{n}"))
            handle(db, settings, "document.rendered", rendered(f"c-{n}", f"doc-{n}"), source="documents")
            wait_for(lambda: len(smtp_server.messages) == n + 1, timeout=10, message=f"email {n + 1}")
        assert smtp_server.connections == 1

        # Idle past the keep time, the sender hangs up; the next email opens a session.
        wait_for(lambda: smtp_server.quits == 1, timeout=10, message="the idle sender's QUIT")
        handle(db, settings, "contract.confirmed", confirmed("c-3"))
        handle(db, settings, "document.rendered", rendered("c-3", "doc-3"), source="documents")
        wait_for(lambda: len(smtp_server.messages) == 4, timeout=10, message="the email after the pause")
        assert smtp_server.connections == 2
    finally:
        stop.set()
        loop.join(10)
    assert not loop.is_alive()
    assert [e.status for e in the_emails(db)] == ["sent"] * 4


def test_department_messages_go_to_the_inbox_and_the_department_exchange(db, settings):
    handle(db, settings, "contract.confirmed", confirmed("c-1", send_to_customer=False))
    with db.session() as session:
        messages = session.execute(select(DepartmentMessage).order_by(DepartmentMessage.department)).scalars().all()
        queued = session.execute(select(OutboxMessage).where(OutboxMessage.exchange == "crm.departments")
                                 .order_by(OutboxMessage.routing_key)).scalars().all()
    assert [m.department for m in messages] == ["finance", "warehouse"]
    assert [q.routing_key for q in queued] == ["finance", "warehouse"]
    body = json.loads(queued[1].body)
    assert body["text"] == "合同 HT-2026-000001（杭州明远机械有限公司）已确认，交货日期 2026-12-20，请安排备货。"
    assert [e["data"]["department"] for e in outbox(db, "department.notified")] == ["warehouse", "finance"]
    assert the_emails(db) == []


def test_a_due_email_wakes_one_sender_and_none_made_due_meanwhile_waits_for_the_poll(db, settings, smtp_server,
                                                                                      monkeypatch):
    """Two senders idle: the commit that makes an email due wakes one of them, and the other does not run an
    empty claim (a transaction) for it. Emails made due while the senders are busy go out without the poll."""
    monkeypatch.setattr(emails, "_due", emails._DueSignal())
    monkeypatch.setattr(emails, "POLL_INTERVAL", 60)  # only wake-ups make the senders look
    claims = []
    real_claim = emails._claim

    def counting_claim(session, settings, limit):
        claimed = real_claim(session, settings, limit)
        claims.append(len(claimed))
        return claimed

    monkeypatch.setattr(emails, "_claim", counting_claim)
    stop = threading.Event()
    loop = threading.Thread(target=emails.sender_loop, args=(dataclasses.replace(settings, email_senders=2), db,
                                                             None, stop))
    loop.start()
    try:
        wait_for(lambda: len(claims) == 2, timeout=10, message="each sender's first look")
        handle(db, settings, "contract.confirmed", confirmed("c-1"))
        handle(db, settings, "document.rendered", rendered("c-1"), source="documents")
        wait_for(lambda: len(smtp_server.messages) == 1, timeout=10, message="the first email")
        time.sleep(0.3)
        assert claims == [0, 0, 1]

        for n in range(2, 6):
            handle(db, settings, "contract.confirmed", confirmed(f"c-{n}"))
            handle(db, settings, "document.rendered", rendered(f"c-{n}", f"doc-{n}"), source="documents")
        wait_for(lambda: len(smtp_server.messages) == 5, timeout=10, message="all five emails")
    finally:
        stop.set()
        deadline = time.monotonic() + 10
        while loop.is_alive() and time.monotonic() < deadline:  # wake-ups until both senders have seen the stop
            emails._due.announce()
            loop.join(0.05)
    assert sorted(m["Message-ID"] for m in smtp_server.messages) == sorted(e.message_id for e in the_emails(db))
    assert [e.status for e in the_emails(db)] == ["sent"] * 5


def test_an_email_requested_before_the_pdf_waits_for_it(db, settings, smtp_server):
    handle(db, settings, "document.rendered", rendered("c-1"), source="documents")
    handle(db, settings, "email.requested", {
        "email_id": "e-1", "contract_id": "c-1", "number": "HT-2026-000001", "to": ["a@example.cn"],
        "cc": ["b@example.cn"], "subject": "合同", "message": "请查收", "document_id": None, "language": "en",
        "customer": {"name": "Acme"}, "owner_id": "u-alice"})
    [email] = the_emails(db)
    assert (email.id, email.status, email.document_id) == ("e-1", "queued", "doc-1")
    emails.send_due(settings, db)
    [message] = smtp_server.messages
    assert message["Message-ID"] == "<e-1@example.cn>" and message["Cc"] == "b@example.cn"


def cancelled(contract_id: str) -> dict:
    return {"contract_id": contract_id, "number": "HT-2026-000001", "was_confirmed": True, "owner_id": "u-alice",
            "customer_name": "杭州明远机械有限公司", "notify_departments": [], "company_language": "zh-CN"}


def test_a_cancelled_contracts_unsent_email_is_withdrawn(db, settings, smtp_server):
    smtp_server.refusing = True  # the mail relay is away: the email waits for a retry
    handle(db, settings, "contract.confirmed", confirmed("c-1", notify_departments=[]))
    handle(db, settings, "contract.confirmed", confirmed("c-2", notify_departments=[]))
    handle(db, settings, "document.rendered", rendered("c-1"), source="documents")
    assert emails.send_due(settings, db) == 1
    handle(db, settings, "contract.cancelled", cancelled("c-1"))
    handle(db, settings, "contract.cancelled", cancelled("c-2"))  # still waiting for its PDF
    smtp_server.refusing = False
    with db.session() as session:
        session.execute(update(Email).values(next_attempt_at=utcnow()))
    handle(db, settings, "document.rendered", rendered("c-2", "doc-2"), source="documents")
    assert emails.send_due(settings, db) == 0
    assert smtp_server.messages == []
    assert [(e.contract_id, e.status, e.last_error) for e in sorted(the_emails(db), key=lambda e: e.contract_id)] \
        == [("c-1", "failed", emails.WITHDRAWN), ("c-2", "failed", emails.WITHDRAWN)]
    assert sales_messages(db) == []  # the salesperson cancelled it: no "email failed" notice


def test_a_contract_cancelled_while_its_email_is_being_tried_is_not_tried_again(db, settings, smtp_server,
                                                                                  monkeypatch):
    """withdraw() cannot reach an email a sender holds: the failed attempt itself must see the cancellation, or
    the email is retried for a day and reaches the customer once the relay is back."""
    smtp_server.refusing = True
    handle(db, settings, "contract.confirmed", confirmed("c-1", notify_departments=[]))
    handle(db, settings, "document.rendered", rendered("c-1"), source="documents")

    def cancelled_meanwhile(settings_, document_id, sha256):  # during the attempt, before the SMTP exchange
        handle(db, settings, "contract.cancelled", cancelled("c-1"))
        return PDF
    monkeypatch.setattr(emails, "fetch_pdf", cancelled_meanwhile)
    assert emails.send_due(settings, db) == 1
    [email] = the_emails(db)
    assert (email.status, email.last_error) == ("failed", emails.WITHDRAWN)
    smtp_server.refusing = False
    with db.session() as session:
        session.execute(update(Email).values(next_attempt_at=utcnow()))
    assert emails.send_due(settings, db) == 0 and smtp_server.messages == []


def test_a_sender_that_died_is_not_replaced_for_a_cancelled_contract(db, settings, smtp_server):
    handle(db, settings, "contract.confirmed", confirmed("c-1", notify_departments=[]))
    handle(db, settings, "document.rendered", rendered("c-1"), source="documents")
    with db.session() as session:
        emails._claim(session, settings, 10)  # ...and the sender dies before the SMTP exchange
    handle(db, settings, "contract.cancelled", cancelled("c-1"))
    with db.session() as session:
        session.execute(update(Email).values(lease_until=utcnow() - timedelta(seconds=1)))
    emails.housekeeping(db)
    assert emails.send_due(settings, db) == 0 and smtp_server.messages == []
    assert [(e.status, e.last_error) for e in the_emails(db)] == [("failed", emails.WITHDRAWN)]


def test_a_confirmation_handled_after_its_cancellation_emails_nobody(db, settings, smtp_server):
    handle(db, settings, "contract.cancelled", cancelled("c-1"))
    handle(db, settings, "contract.confirmed", confirmed("c-1"))
    handle(db, settings, "document.rendered", rendered("c-1"), source="documents")
    assert emails.send_due(settings, db) == 0
    assert the_emails(db) == [] and smtp_server.messages == []
    with db.session() as session:
        assert session.execute(select(DepartmentMessage)).scalars().all() == []


def test_no_customer_address_fails_at_once_and_tells_the_salesperson(db, settings):
    data = confirmed("c-1", notify_departments=[])
    data["customer"]["email"] = None
    before = counted()
    handle(db, settings, "contract.confirmed", data)
    assert changed(before, counted()) == {"failed": 1}
    [email] = the_emails(db)
    assert email.status == "failed" and "no email address" in email.last_error
    [failed] = outbox(db, "email.failed")
    assert failed["data"]["contract_id"] == "c-1"
    [notice] = sales_messages(db)
    assert notice.recipient_id == "u-alice" and notice.reason == "email_failed"


def _age_first_attempt(db, seconds: float) -> None:
    """As if the first attempt were `seconds` ago, and the next one due now: no waiting for the backoff."""
    with db.session() as session:
        session.execute(update(Email).values(first_attempt_at=utcnow() - timedelta(seconds=seconds),
                                             next_attempt_at=utcnow()))


def test_a_refusing_relay_is_retried_for_a_day_and_the_salesperson_told_after_ten_minutes(db, settings,
                                                                                           smtp_server):
    smtp_server.refusing = True  # 451 to every recipient: the relay's trouble, not the address
    before = counted()
    handle(db, settings, "contract.confirmed", confirmed("c-1", notify_departments=[]))
    handle(db, settings, "document.rendered", rendered("c-1"), source="documents")
    for attempt in (1, 2, 3):  # the first minutes: retried, nobody bothered
        assert emails.send_due(settings, db) == 1
        _age_first_attempt(db, 60 * attempt)
    [email] = the_emails(db)
    assert (email.status, email.attempts) == ("queued", 3) and "451" in email.last_error
    assert sales_messages(db) == [] and outbox(db, "email.delayed") == []

    _age_first_attempt(db, 11 * 60)  # still not gone after ten minutes: the salesperson hears of it, once
    for _ in range(3):
        assert emails.send_due(settings, db) == 1
        _age_first_attempt(db, 2 * 3600)
    [email] = the_emails(db)
    assert (email.status, email.attempts) == ("queued", 6)
    [notice] = sales_messages(db)
    assert (notice.reason, notice.recipient_id) == ("email_delayed", "u-alice")
    assert "尚未发出" in notice.text and "451" in notice.text and "继续重试至" in notice.text
    [delayed] = outbox(db, "email.delayed")
    retry_until = datetime.fromisoformat(delayed["data"]["retry_until"].replace("Z", "+00:00"))
    assert timedelta(hours=23) < retry_until - utcnow() <= timedelta(hours=24)  # a day from the first attempt
    assert outbox(db, "email.failed") == []

    _age_first_attempt(db, 24 * 3600 - 60)  # the last attempt of the day fails: given up, and said so
    assert emails.send_due(settings, db) == 1
    [email] = the_emails(db)
    assert (email.status, email.attempts) == ("failed", 7) and smtp_server.messages == []
    assert len(outbox(db, "email.failed")) == 1
    assert sorted(m.reason for m in sales_messages(db)) == ["email_delayed", "email_failed"]
    assert changed(before, counted()) == {"retry": 6, "failed": 1}


def test_a_mail_relay_that_is_down_is_retried_and_the_email_sent_once_it_is_back(db, settings, smtp_server):
    handle(db, settings, "contract.confirmed", confirmed("c-1", notify_departments=[]))
    handle(db, settings, "document.rendered", rendered("c-1"), source="documents")
    smtp_server.stop()  # nothing listens on its port: connections are refused
    try:
        emails.send_due(settings, db)
        [email] = the_emails(db)
        assert email.status == "queued" and email.attempts >= 1, email.last_error
        assert "SMTP server unreachable" in email.last_error
    finally:
        smtp_server.start()
    tries = email.attempts
    with db.session() as session:  # no waiting for the backoff in a test: make the retry due now
        session.execute(update(Email).values(next_attempt_at=utcnow()))
    assert emails.send_due(settings, db) == 1
    [email] = the_emails(db)
    assert (email.status, email.attempts) == ("sent", tries + 1)
    assert len(smtp_server.messages) == 1 and outbox(db, "email.failed") == []


def test_a_mailbox_the_relay_rejects_fails_at_once_and_tells_the_salesperson(db, settings, smtp_server):
    smtp_server.rejecting = True
    handle(db, settings, "contract.confirmed", confirmed("c-1", notify_departments=[]))
    handle(db, settings, "document.rendered", rendered("c-1"), source="documents")
    assert emails.send_due(settings, db) == 1
    [email] = the_emails(db)
    assert (email.status, email.attempts) == ("failed", 1) and "550" in email.last_error
    assert len(outbox(db, "email.failed")) == 1
    [notice] = sales_messages(db)
    assert notice.reason == "email_failed" and "550" in notice.text
    with db.session() as session:
        session.execute(update(Email).values(next_attempt_at=utcnow()))
    assert emails.send_due(settings, db) == 0 and smtp_server.messages == []


def test_a_relay_refusing_our_login_retries_the_email_while_the_operator_fixes_it(db, settings, smtp_server, caplog):
    """A 530/535 is the relay's configuration (SMTP_USER, SMTP_PASSWORD), not the customer's address: the email
    is retried as for a relay that is down, and the log says what to fix. It used to fail at once, telling the
    salesperson as if the address were bad."""
    smtp_server.requiring_login = True
    handle(db, settings, "contract.confirmed", confirmed("c-1", notify_departments=[]))
    handle(db, settings, "document.rendered", rendered("c-1"), source="documents")
    with caplog.at_level("ERROR", logger="services.notifications.emails"):
        assert emails.send_due(settings, db) == 1  # one attempt
    [email] = the_emails(db)
    assert (email.status, email.attempts) == ("queued", 1) and "SMTP_PASSWORD" in email.last_error, email.last_error
    assert any("refused our login" in r.getMessage() for r in caplog.records if r.levelname == "ERROR")
    assert outbox(db, "email.failed") == [] and sales_messages(db) == []
    smtp_server.requiring_login = False  # the operator fixed the settings
    with db.session() as session:
        session.execute(update(Email).values(next_attempt_at=utcnow()))
    assert emails.send_due(settings, db) == 1 and len(smtp_server.messages) == 1
    assert the_emails(db)[0].status == "sent"


def test_a_sender_that_died_mid_smtp_is_not_resent(db, settings, smtp_server):
    handle(db, settings, "contract.confirmed", confirmed("c-1", notify_departments=[]))
    handle(db, settings, "document.rendered", rendered("c-1"), source="documents")
    with db.session() as session:
        [claim] = emails._claim(session, settings, 10)
    assert emails._mark_started(db, claim)
    # ...and the process dies here: the lease runs out with the SMTP exchange maybe done.
    with db.session() as session:
        session.execute(update(Email).values(lease_until=utcnow() - timedelta(seconds=1)))
    emails.housekeeping(db)
    assert emails.send_due(settings, db) == 0
    [email] = the_emails(db)
    assert email.status == "failed" and "may or may not" in email.last_error
    assert smtp_server.messages == [] and len(sales_messages(db)) == 1


def test_a_sender_that_died_before_smtp_is_retried(db, settings, smtp_server):
    handle(db, settings, "contract.confirmed", confirmed("c-1", notify_departments=[]))
    handle(db, settings, "document.rendered", rendered("c-1"), source="documents")
    with db.session() as session:
        emails._claim(session, settings, 10)
        session.execute(update(Email).values(lease_until=utcnow() - timedelta(seconds=1)))
    assert emails.send_due(settings, db) == 0  # still leased as far as the claim knows
    emails.housekeeping(db)
    assert emails.send_due(settings, db) == 1
    [email] = the_emails(db)
    assert (email.status, email.attempts) == ("sent", 2) and len(smtp_server.messages) == 1


class Died(BaseException):
    """A SIGKILL, as far as the sender can tell: nothing after it runs."""


def test_a_sender_that_died_before_data_is_retried_not_failed(db, settings, smtp_server, monkeypatch):
    # The chaos run's notifications kill landed here (connected, recipients sent, no DATA yet); the email was
    # then failed as "maybe sent" although the server had taken nothing.
    handle(db, settings, "contract.confirmed", confirmed("c-1", notify_departments=[]))
    handle(db, settings, "document.rendered", rendered("c-1"), source="documents")

    def die(self, *args, **kwargs):
        raise Died()

    with monkeypatch.context() as patch:
        patch.setattr("smtplib.SMTP.rcpt", die)
        with pytest.raises(Died):
            emails.send_due(settings, db)
    [email] = the_emails(db)
    assert email.status == "sending" and email.smtp_started_at is None
    with db.session() as session:
        session.execute(update(Email).values(lease_until=utcnow() - timedelta(seconds=1)))
    emails.housekeeping(db)
    assert emails.send_due(settings, db) == 1
    [email] = the_emails(db)
    assert (email.status, email.attempts) == ("sent", 2) and len(smtp_server.messages) == 1
    assert outbox(db, "email.failed") == [] and sales_messages(db) == []


def test_the_exchange_counts_as_started_only_once_the_recipients_are_accepted(db, settings, smtp_server,
                                                                             monkeypatch):
    handle(db, settings, "contract.confirmed", confirmed("c-1", notify_departments=[]))
    handle(db, settings, "document.rendered", rendered("c-1"), source="documents")
    at_rcpt = []
    real_rcpt = smtplib.SMTP.rcpt

    def rcpt(self, *args, **kwargs):
        at_rcpt.append(the_emails(db)[0].smtp_started_at)
        return real_rcpt(self, *args, **kwargs)

    monkeypatch.setattr(smtplib.SMTP, "rcpt", rcpt)
    assert emails.send_due(settings, db) == 1
    [email] = the_emails(db)
    assert at_rcpt == [None] and email.status == "sent" and email.smtp_started_at is not None


def test_a_sent_email_is_recorded_sent_through_a_database_hiccup(db, settings, smtp_server, monkeypatch):
    # Seen in the chaos run: PostgreSQL out of connections right after the server's 250 left accepted emails
    # leased, and the lease then failed them as "may or may not have arrived".
    handle(db, settings, "contract.confirmed", confirmed("c-1", notify_departments=[]))
    handle(db, settings, "document.rendered", rendered("c-1"), source="documents")
    real, calls = emails._record_sent, []

    def flaky(*args):
        calls.append(1)
        if len(calls) <= 2:
            raise OperationalError("UPDATE notif_emails", {}, Exception("sorry, too many clients already"))
        return real(*args)

    monkeypatch.setattr(emails, "_record_sent", flaky)
    monkeypatch.setattr(emails.time, "sleep", lambda seconds: None)
    assert emails.send_due(settings, db) == 1
    [email] = the_emails(db)
    assert (email.status, email.attempts, len(calls)) == ("sent", 1, 3) and len(smtp_server.messages) == 1
    assert len(outbox(db, "email.sent")) == 1 and outbox(db, "email.failed") == []


def test_without_smtp_host_each_email_is_one_eml_file(db, tmp_path):
    settings = Settings.from_env("notifications", {"CRM_VAR_DIR": str(tmp_path), "CRM_SECRET_KEY": "test"})
    handle(db, settings, "contract.confirmed", confirmed("c-1", notify_departments=[]))
    handle(db, settings, "document.rendered", rendered("c-1"), source="documents")
    assert emails.send_due(settings, db) == 1
    [email] = the_emails(db)
    files = list((tmp_path / "outbox").glob("*.eml"))
    assert [f.name for f in files] == [f"{email.id}.eml"] and email.status == "sent"
    assert b"Content-Type: application/pdf" in files[0].read_bytes()


def test_warn_sales_shortage_is_addressed_to_the_salesperson(db, settings):
    handle(db, settings, "stock.shortage", {
        "contract_id": "c-1", "number": "HT-2026-000001", "owner_id": "u-alice", "policy": "warn_sales",
        "customer_name": "Acme", "delivery_date": None, "language": "en",
        "lines": [{"line_no": 1, "product_code": "GEAR", "requested": "5", "reserved": "1", "missing": "4"},
                  {"line_no": 2, "product_code": "BOLT", "requested": "2", "reserved": "2", "missing": "0"}]},
        source="inventory")
    [notice] = sales_messages(db)
    assert notice.recipient_id == "u-alice" and [l["product_code"] for l in notice.lines] == ["GEAR"]
    assert notice.text == ("Contract HT-2026-000001 (Acme) is short of stock: GEAR × 4; please agree the delivery "
                           "with the customer.")
    handle(db, settings, "stock.shortage", {"contract_id": "c-2", "policy": "notify_production", "lines": []},
           source="inventory")
    assert len(sales_messages(db)) == 1


def test_overdue_goes_to_finance_and_the_salesperson(db, settings):
    handle(db, settings, "receivable.overdue", {
        "contract_id": "c-1", "contract_number": "HT-2026-000001", "customer_name": "Acme", "owner_id": "u-alice",
        "receivable_id": "r-1", "seq": 2, "label": "尾款", "amount": "5000.00", "due_date": "2026-10-01",
        "currency": "CNY", "company_language": "zh-CN"})
    with db.session() as session:
        messages = session.execute(select(DepartmentMessage).order_by(DepartmentMessage.department)).scalars().all()
    assert [(m.department, m.recipient_id) for m in messages] == [("finance", None), ("sales", "u-alice")]
    assert messages[0].text == "合同 HT-2026-000001（Acme）第 2 期（尾款）CNY 5,000.00 已于 2026-10-01 到期未付，请催收。"


def test_unknown_departments_and_duplicates_post_nothing_twice(db, settings):
    event_id = str(uuid.uuid4())
    data = confirmed("c-1", notify_departments=["warehouse", "marketing", "warehouse"], send_to_customer=False)
    handle(db, settings, "contract.confirmed", data, id=event_id)
    handle(db, settings, "contract.confirmed", data, id=event_id)
    with db.session() as session:
        assert [m.department for m in session.execute(select(DepartmentMessage)).scalars()] == ["warehouse"]


@pytest.mark.parametrize("text", [".starts with a dot", "a line\n.\nthen a lone dot", "..two\n.three\nend."])
def test_lines_starting_with_a_dot_arrive_as_written(settings, smtp_server, text):
    """DATA ends at a line holding one dot: ours are doubled on the wire (RFC 5321 dot-stuffing) and the
    server removes the extra one."""
    out = mailer.Outgoing(id="e-dots", message_id="<e-dots@example.cn>", mail_from=settings.mail_from,
                          to=["buyer@example.cn"], subject="点", body=text, attachment=PDF, attachment_name="a.pdf")
    assert mailer.deliver(settings, out) == []
    [message] = smtp_server.messages
    [body] = [part for part in message.walk() if part.get_content_type() == "text/plain"]
    assert body.get_payload(decode=True).decode().replace("\r\n", "\n").rstrip("\n") == text


def test_dot_stuffing_matches_the_standard_librarys():
    for data in [b"", b".", b"..", b"a\r\n.b\r\n", b".a\r\n..b\r\n.\r\n", b"x.y\r\n\r\n.", PDF]:
        assert mailer.dot_stuffed(data) == smtplib._quote_periods(data)


def test_the_attachment_arrives_byte_for_byte_in_lines_of_76(settings, smtp_server):
    pdf = bytes(range(256)) * 40 + b"%%EOF"  # every byte value; not a multiple of 57
    out = mailer.Outgoing(id="e-pdf", message_id="<e-pdf@example.cn>", mail_from=settings.mail_from,
                          to=["buyer@example.cn"], subject="合同", body="附件", attachment=pdf, attachment_name="a.pdf")
    raw = mailer.render(out)
    encoded = raw.split(b"a.pdf\"\r\n\r\n", 1)[1].split(b"\r\n--", 1)[0].split(b"\r\n")
    assert {len(line) for line in encoded[:-1]} == {76} and 0 < len(encoded[-1]) <= 76
    assert mailer.deliver(settings, out, message=raw) == []
    [message] = smtp_server.messages
    [part] = [p for p in message.walk() if p.get_content_type() == "application/pdf"]
    assert part.get_payload(decode=True) == pdf


def test_a_contract_ticking_the_sales_department_tells_its_own_salesperson(db, settings):
    """The sales queue and inbox are shared by every salesperson and read by recipient_id: a message without one
    reached no salesperson's inbox at all, only managers'."""
    handle(db, settings, "contract.confirmed", confirmed("c-1", notify_departments=["sales", "warehouse"],
                                                         send_to_customer=False))
    told = {m.department: m.recipient_id for m in all_messages(db)}
    assert told == {"sales": "u-alice", "warehouse": None}


def all_messages(db) -> list[DepartmentMessage]:
    with db.session() as session:
        return session.execute(select(DepartmentMessage)).scalars().all()


def test_a_quote_sent_again_takes_only_the_pdf_printed_for_that_send(db, settings, smtp_server):
    """The first send's PDF prints the address the customer has since corrected. Neither the sender's sweep of
    waiting emails nor a late announcement of that PDF may give it to the second send's email."""
    def at(envelope_type, data, when, source):
        envelope = Envelope(type=envelope_type, source=source, data=data, correlation_id=data.get("quote_id"))
        envelope.occurred_at = iso(when)
        run_handler(db, HANDLERS, envelope, make_context(settings, db))

    def sent(address):
        return {"quote_id": "q-1", "number": "QT-2026-000001", "owner_id": "u-alice", "company_language": "zh-CN",
                "customer": {"name": "宁波北仑机电", "email": address, "language": "zh-CN"}}

    def quote_pdf(document_id):
        return {"document_id": document_id, "kind": "quote", "owner_id": "q-1", "quote_id": "q-1",
                "number": "QT-2026-000001", "sha256": "0" * 64, "size": len(PDF), "filename": "报价单.pdf"}

    now = utcnow()
    at("quote.sent", sent("wrong@example.cn"), now - timedelta(minutes=5), "quotes")
    at("document.rendered", quote_pdf("doc-first"), now - timedelta(minutes=5) + timedelta(seconds=1), "documents")
    at("quote.sent", sent("orders@example.cn"), now, "quotes")
    emails.housekeeping(db)  # the sender's sweep, every couple of seconds
    # The first send's PDF announced again, late (a redelivery): not this send's either.
    at("document.rendered", quote_pdf("doc-first"), now - timedelta(minutes=5) + timedelta(seconds=1), "documents")
    by_address = {e.to[0]: (e.status, e.document_id) for e in the_emails(db)}
    assert by_address == {"wrong@example.cn": ("queued", "doc-first"), "orders@example.cn": ("waiting", None)}

    at("document.rendered", quote_pdf("doc-second"), now + timedelta(seconds=1), "documents")
    assert emails.send_due(settings, db) == 2
    assert {e.to[0]: (e.status, e.document_id) for e in the_emails(db)} == {
        "wrong@example.cn": ("sent", "doc-first"), "orders@example.cn": ("sent", "doc-second")}
