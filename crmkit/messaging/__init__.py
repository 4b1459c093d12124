"""Messaging: the topology, the envelope, the outbox relay and the idempotent consumer."""
