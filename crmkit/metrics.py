"""Prometheus metrics shared by every service (labelled by service, so the embedded mode can share one registry)."""
from prometheus_client import Counter, Histogram

HTTP_REQUESTS = Counter("crm_http_requests_total", "HTTP requests", ["service", "method", "status"])
HTTP_SECONDS = Histogram("crm_http_request_seconds", "HTTP request duration", ["service", "method"])
EVENTS_PUBLISHED = Counter("crm_events_published_total", "Outbox rows published", ["service"])
EVENTS_HANDLED = Counter("crm_events_handled_total", "Messages consumed", ["service", "type", "outcome"])
HANDLER_SECONDS = Histogram("crm_handler_seconds", "Message handling time", ["service", "type"])
QUEUE_WAIT_SECONDS = Histogram("crm_queue_wait_seconds", "Time from occurred_at to handling start",
                               ["service", "type"])

# The email senders: how long a due email waited for a free sender, and how long its delivery took (the PDF
# fetch and the SMTP exchange). A wait that grows while deliveries take as long as before means too few
# senders: raise CRM_EMAIL_SENDERS or start another notifications worker. The waits run far past the default
# buckets' 10 s when a slow relay falls behind.
_EMAIL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
EMAIL_WAIT_SECONDS = Histogram("crm_email_wait_seconds", "Time from an email being due to a sender starting it",
                               ["service"], buckets=_EMAIL_BUCKETS)
EMAIL_SEND_SECONDS = Histogram("crm_email_send_seconds", "Delivery of one email: PDF fetch and SMTP exchange",
                               ["service"], buckets=_EMAIL_BUCKETS)

# What became of each attempt: sent, retry (it will be tried again) or failed (given up; the salesperson is told).
EMAILS = Counter("crm_emails_total", "Email attempts by outcome: sent, retry, failed", ["service", "outcome"])
