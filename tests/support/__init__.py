"""Test support: real infrastructure (databases, vhosts, SMTP, processes) and an HTTP client."""
