"""The embedded broker keeps a fetched but unacknowledged message: a crash gives it back on the next start."""
from __future__ import annotations

from kombu import Connection, Exchange, Queue

from crmkit.messaging import embedded

EXCHANGE = Exchange("crm.test", type="topic", durable=True)
QUEUE = Queue("crm.test.leases", exchange=EXCHANGE, routing_key="test.#", durable=True)


def connect(path):
    embedded.register()
    return Connection(f"crmdb+sqlite:///{path}", transport_options={"polling_interval": 0.01})


def publish(path, body: str, message_id: str):
    with connect(path) as conn:
        conn.Producer(serializer="json").publish(
            body, exchange=EXCHANGE, routing_key="test.lease", declare=[QUEUE], serializer=None,
            content_type="application/json", content_encoding="utf-8", message_id=message_id)


def test_a_message_fetched_by_a_crashed_process_comes_back_after_its_leases_are_released(tmp_path):
    path = tmp_path / "broker.sqlite"
    publish(path, '{"n": 1}', "m-1")
    publish(path, '{"n": 2}', "m-2")

    # The "crashed" process: fetches m-1, never acks, and its connection is dropped without closing
    # (closing would hand the message back; a SIGKILL gives nobody the chance).
    crashed = connect(path)
    first = QUEUE(crashed.default_channel).get(no_ack=False)
    assert first.properties["message_id"] == "m-1"
    abandoned = [crashed, first]  # kept referenced: no finaliser may tidy up on the process's behalf

    # Another consumer sees only m-2 while m-1 is leased ...
    with connect(path) as other:
        queue = QUEUE(other.default_channel)
        second = queue.get(no_ack=False)
        assert second.properties["message_id"] == "m-2"
        second.ack()
        assert queue.get(no_ack=False) is None

    # ... and the next start releases the crashed process's leases: m-1 comes back, once.
    assert embedded.release_all_leases(str(path)) == 1
    with connect(path) as restarted:
        queue = QUEUE(restarted.default_channel)
        again = queue.get(no_ack=False)
        assert again.properties["message_id"] == "m-1"
        assert again.body == first.body
        again.ack()
        assert queue.get(no_ack=False) is None
    assert embedded.release_all_leases(str(path)) == 0
    del abandoned


def test_a_message_rejected_with_requeue_is_visible_again_and_an_acked_one_is_gone(tmp_path):
    path = tmp_path / "broker.sqlite"
    publish(path, '{"n": 1}', "m-1")
    with connect(path) as conn:
        queue = QUEUE(conn.default_channel)
        message = queue.get(no_ack=False)
        message.requeue()
        again = queue.get(no_ack=False)
        assert again.properties["message_id"] == "m-1"
        again.ack()
        assert queue.get(no_ack=False) is None
    assert embedded.release_all_leases(str(path)) == 0
