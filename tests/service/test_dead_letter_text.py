"""Dead letters whose text a database column cannot hold (NUL, unpaired surrogates, bytes that are not UTF-8) are
stored escaped, with the original bytes kept and the letter saying so, on SQLite and PostgreSQL; on RabbitMQ the
contracts worker stores such a letter once instead of sending it back to crm.dead for good."""
from __future__ import annotations

import base64
import json
import threading

import pytest
from kombu import Connection, Producer
from sqlalchemy import func, select

from crmkit.db import Database
from crmkit.errors import Conflict
from crmkit.messaging import topology
from crmkit.messaging.consumer import Worker
from crmkit.models import KIT_TABLES, OutboxMessage
from crmkit.service import open_database
from crmkit.settings import Settings
from services.contracts import dead_letters, spec
from services.contracts.dead_letters import ESCAPED_HEADER, DeadLetter
from support.infra import wait_for

HEADERS = {"x-error": "undecodable message: Invalid control character at: line 1 column 80 (char 79)",
           "x-original-queue": "crm.inventory.stock", "x-original-exchange": "crm.events",
           "x-original-routing-key": "contract.cancelled", "x-dead-lettered-at": "2026-03-01T08:00:00.123456Z",
           "x-consumer": "inventory"}
# A contract.cancelled whose body holds a raw NUL byte: no JSON (a control character inside a string).
NUL_BODY = (b'{"id": "5b1c7e2a-0000-4000-8000-000000000001", "type": "contract.cancelled", "source": "contracts", '
            b'"data": {"contract_id": "c-1", "reason": "a\x00b"}}')


@pytest.fixture
def db(db_url):
    database = Database(db_url, tables=KIT_TABLES + dead_letters.TABLES)
    database.create_all()
    yield database
    database.dispose()


def record(db, body: bytes, headers: dict, properties: dict | None = None) -> None:
    with db.session() as session:
        dead_letters.record(body, dict(headers), properties or {}, session)


def letters(db) -> list[DeadLetter]:
    with db.session() as session:
        return list(session.execute(select(DeadLetter).order_by(DeadLetter.recorded_at)).scalars())


def outbox_rows(db) -> int:
    with db.session() as session:
        return session.execute(select(func.count()).select_from(OutboxMessage)).scalar_one()


def test_a_body_with_a_nul_byte_is_stored_escaped_with_its_bytes_and_is_not_replayed(db):
    for _ in range(2):  # crm.dead delivers at least once: the copy is the same letter
        record(db, NUL_BODY, HEADERS, {"message_id": "m-nul"})
    [letter] = letters(db)
    assert (letter.message_id, letter.type, letter.original_queue) == ("m-nul", "contract.cancelled",
                                                                      "crm.inventory.stock")
    assert "\x00" not in letter.body and '"reason": "a\\x00b"' in letter.body
    escaped = letter.headers[ESCAPED_HEADER]
    assert escaped["fields"] == ["body"] and "backslash-escaped" in escaped["note"]
    assert base64.b64decode(escaped["body_base64"]) == NUL_BODY  # the original, byte for byte
    assert letter.error == HEADERS["x-error"] and letter.headers["x-original-queue"] == "crm.inventory.stock"

    # The escaped copy is not the message, and the message is no JSON a consumer reads: a replay is refused.
    with pytest.raises(Conflict) as refused, db.session() as session:
        dead_letters.replay(session, letter.id)
    assert ESCAPED_HEADER in refused.value.message and "body" in refused.value.fields
    assert outbox_rows(db) == 0 and letters(db)[0].replay_count == 0


def test_bytes_that_are_not_utf8_are_kept_recoverable(db):
    body = b'{"id": "m-ff", "type": "contract.cancelled", "data": {"name": "\xff\xfe \xed\xa0\x80"}}'
    record(db, body, HEADERS, {"message_id": "m-ff"})
    [letter] = letters(db)
    assert letter.body == '{"id": "m-ff", "type": "contract.cancelled", "data": {"name": "\\xff\\xfe \\xed\\xa0\\x80"}}'
    assert base64.b64decode(letter.headers[ESCAPED_HEADER]["body_base64"]) == body


def test_text_fields_and_headers_a_column_cannot_hold_are_escaped_and_a_text_body_still_replays(db):
    # The body itself is plain ASCII JSON; its \u escapes decode to a NUL and an unpaired surrogate in the
    # envelope's id and type, and the headers (decoded by the AMQP client with surrogatepass) hold both too.
    body = json.dumps({"id": "m-\u0000-\ud800", "type": "contract.\u0000cancelled", "source": "contracts",
                       "data": {}}).encode()
    headers = dict(HEADERS, **{"x-error": "KeyError: 'contract\x00id' \udc80", "x-consumer": "inv\x00entory",
                               "x-note\x00": {"nested": ["\ud83d", b"\x00\xff", float("nan")]},
                               "x-original-queue": "crm.inventory.stock"})
    for _ in range(2):
        record(db, body, headers)
    [letter] = letters(db)
    assert letter.message_id == "m-\\u0000-\\ud800" and letter.type == "contract.\\u0000cancelled"
    assert letter.error == "KeyError: 'contract\\u0000id' \\udc80" and letter.consumer == "inv\\u0000entory"
    assert letter.headers["x-note\\u0000"] == {"nested": ["\\ud83d", "\\u0000\\xff", "nan"]}
    assert letter.headers["x-error"] == letter.error and ESCAPED_HEADER not in letter.headers
    assert letter.body == body.decode()  # kept verbatim: it is text
    with db.session() as session:
        dead_letters.replay(session, letter.id)
    with db.session() as session:
        [row] = session.execute(select(OutboxMessage)).scalars()
        assert (row.routing_key, row.body) == ("crm.inventory.stock", body.decode())


def test_a_dead_lettered_at_utc_cannot_hold_is_read_as_now(db):
    record(db, b'{"id": "m-old"}', dict(HEADERS, **{"x-dead-lettered-at": "0001-01-01T00:00:00+05:00"}))
    [letter] = letters(db)
    assert letter.dead_lettered_at.year >= 2026


# --- through RabbitMQ and the gateway, on PostgreSQL ------------------------------------------------------------

WORK = topology.queue_of("crm.inventory.stock")  # a real queue, so a replay would have somewhere to go


def never_called(envelope, session, ctx):
    raise AssertionError("an undecodable body reached a handler")


def test_a_nul_body_on_rabbitmq_lands_in_the_table_once_and_is_listed(tmp_path, pg_url, amqp_url):
    config = Settings.from_env("contracts", {"AMQP_URL": amqp_url, "DATABASE_URL": pg_url,
                                             "CRM_VAR_DIR": str(tmp_path / "var"), "CRM_SECRET_KEY": "test-secret",
                                             "CRM_ADMIN_PASSWORD": "admin-pass", "CRM_WORKER_THREADS": "2"})
    the_spec = spec()
    db = open_database(the_spec, config)
    # The consumer that gives up (inventory's queue) and the crm.dead consumer of the contracts worker, in one.
    worker = Worker(db, config, {"contract.cancelled": never_called}, queues=[WORK], threads=2,
                    retry_delays=(0.05, 0.1), raw_consumers=the_spec.raw_consumers)
    thread = threading.Thread(target=worker.run_forever, daemon=True)
    thread.start()
    try:
        assert worker.ready.wait(20), "worker did not start consuming"
        with Connection(amqp_url) as conn:
            Producer(conn.default_channel).publish(
                NUL_BODY, exchange=topology.EVENTS, routing_key="contract.cancelled", serializer=None,
                content_type="application/json", content_encoding="utf-8", delivery_mode=2, message_id="m-nul")
        [letter] = wait_for(lambda: letters(db), timeout=60, message="the NUL letter stored")

        def dead_queue_empty():
            with Connection(amqp_url) as conn:
                return topology.DEAD_QUEUE(conn.default_channel).queue_declare(passive=True).message_count == 0
        wait_for(dead_queue_empty, timeout=30, message="crm.dead drained")
    finally:
        worker.stop()
        thread.join(10)
        worker.pool.shutdown(wait=True)
        worker.connection.release()
    assert letter.original_queue == WORK.name and letter.type == "contract.cancelled"
    assert "undecodable" in letter.error and letter.message_id == "m-nul"
    assert base64.b64decode(letter.headers[ESCAPED_HEADER]["body_base64"]) == NUL_BODY
    assert len(letters(db)) == 1  # stored and acknowledged once, not requeued and stored again

    client = the_spec.build_app(config, db).test_client()
    token = client.post("/api/v1/auth/token", json={"username": "admin", "password": "admin-pass"}).get_json()
    auth = {"Authorization": f"Bearer {token['access_token']}"}
    listed = client.get("/api/v1/admin/dead-letters", headers=auth).get_json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == letter.id
    detail = client.get(f"/api/v1/admin/dead-letters/{letter.id}", headers=auth).get_json()
    assert detail["body"] == letter.body and detail["headers"][ESCAPED_HEADER]["fields"] == ["body"]
    replay = client.post(f"/api/v1/admin/dead-letters/{letter.id}/replay", headers=auth)
    assert replay.status_code == 409 and "body" in replay.get_json()["error"]["fields"]
    db.dispose()
