"""Prometheus metrics shared by every service (labelled by service, so the embedded mode can share one registry)."""
from prometheus_client import Counter, Histogram

HTTP_REQUESTS = Counter("crm_http_requests_total", "HTTP requests", ["service", "method", "status"])
HTTP_SECONDS = Histogram("crm_http_request_seconds", "HTTP request duration", ["service", "method"])
EVENTS_PUBLISHED = Counter("crm_events_published_total", "Outbox rows published", ["service"])
EVENTS_HANDLED = Counter("crm_events_handled_total", "Messages consumed", ["service", "type", "outcome"])
HANDLER_SECONDS = Histogram("crm_handler_seconds", "Message handling time", ["service", "type"])
QUEUE_WAIT_SECONDS = Histogram("crm_queue_wait_seconds", "Time from occurred_at to handling start",
                               ["service", "type"])
