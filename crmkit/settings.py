"""Run-time settings, read from the environment when a factory asks for them (never at import)."""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from crmkit.timeutil import DEFAULT_ZONE

SERVICES = ("contracts", "quotes", "inventory", "documents", "notifications")

# Each service's HTTP port when services run as separate processes; the gateway uses PORT.
DEFAULT_PORTS = {"contracts": 8000, "quotes": 8001, "inventory": 8002, "documents": 8003, "notifications": 8004}

# Every variable the settings read; the compose test checks the compose file against this list.
KNOWN_VARIABLES = {
    "AMQP_URL", "DATABASE_URL", "SMTP_HOST", "SMTP_PORT", "SMTP_USER", "SMTP_PASSWORD", "SMTP_STARTTLS",
    "MAIL_FROM", "CRM_SECRET_KEY", "CRM_ADMIN_USER", "CRM_ADMIN_PASSWORD", "DOCUMENTS_DIR", "PORT",
    "CRM_VAR_DIR", "CRM_LOG_LEVEL", "CRM_SCHEDULER_INTERVAL", "CRM_RELAY_INTERVAL",
    "CRM_WORKER_THREADS", "CRM_EMAIL_SENDERS", "CRM_WORKER_NICE", "CRM_TOKEN_TTL", "CRM_CREATE_TABLES",
    "CRM_RETENTION_DAYS", "CRM_TIMEZONE", "CRM_METRICS_BASE_PORT",
} | {f"{s.upper()}_DATABASE_URL" for s in SERVICES} | {f"{s.upper()}_URL" for s in SERVICES}


def _bool(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


DEFAULT_WORKER_THREADS = 4  # message handlers per worker process (CRM_WORKER_THREADS)
DEFAULT_EMAIL_SENDERS = 2  # parallel email senders of the notifications worker (CRM_EMAIL_SENDERS)
# How much a worker process yields the CPU to the web processes on a shared host (CRM_WORKER_NICE, the Unix
# nice increment): a request waits for a core less often behind a PDF or an email, and the background work
# still gets the CPU nobody asks for. At 10 sagas/s on two cores with 10,000 contracts, POST /contracts p99
# 30.4-40.2 -> 22.4-23.7 ms and saga p99 117-167 -> 108-110 ms (docs/performance.md, fifth round).
DEFAULT_WORKER_NICE = 5
# How long the kit's tables keep a published event, a handled message's id and a replayable answer
# (CRM_RETENTION_DAYS; 0 keeps them for good). It bounds how late a redelivered message is still recognised
# and how late a retry with an Idempotency-Key still gets the first answer (crmkit/housekeeping.py).
DEFAULT_RETENTION_DAYS = 30


@dataclass(frozen=True)
class Settings:
    service: str
    database_url: str
    db_schema: str | None
    amqp_url: str | None
    var_dir: Path
    documents_dir: Path
    secret_key: str
    admin_user: str
    admin_password: str | None
    smtp_host: str | None
    smtp_port: int
    smtp_user: str | None
    smtp_password: str | None
    smtp_starttls: bool
    mail_from: str
    port: int
    service_urls: dict = field(default_factory=dict)
    relay_interval: float = 0.05
    worker_threads: int = DEFAULT_WORKER_THREADS
    email_senders: int = DEFAULT_EMAIL_SENDERS
    worker_nice: int = DEFAULT_WORKER_NICE
    scheduler_interval: float = 60.0
    token_ttl: int = 8 * 3600
    retention_days: float = DEFAULT_RETENTION_DAYS
    timezone: str = DEFAULT_ZONE  # CRM_TIMEZONE: the company's business dates (crmkit.timeutil)

    @property
    def embedded(self) -> bool:
        """True when no AMQP_URL is set: one process holds every service and the broker."""
        return not self.amqp_url

    @property
    def broker_url(self) -> str:
        return self.amqp_url or f"crmdb+sqlite:///{self.var_dir / 'broker.sqlite'}"

    @property
    def outbox_dir(self) -> Path:
        return self.var_dir / "outbox"

    @classmethod
    def from_env(cls, service: str, env: dict | None = None) -> "Settings":
        env = os.environ if env is None else env
        var_dir = Path(env.get("CRM_VAR_DIR") or "var").resolve()
        own_url = _normalise_db_url(env.get(f"{service.upper()}_DATABASE_URL"))
        shared_url = _normalise_db_url(env.get("DATABASE_URL"))
        if own_url:
            database_url, schema = own_url, None
        elif shared_url:
            # One PostgreSQL database for all: each service keeps its tables in a schema of its own name.
            database_url, schema = shared_url, (service if shared_url.startswith("postgres") else None)
        else:
            database_url, schema = f"sqlite:///{var_dir / (service + '.sqlite')}", None
        port = int(env.get("PORT") or DEFAULT_PORTS["contracts"])
        urls = {}
        for name in SERVICES:
            default_port = port if name == "contracts" else DEFAULT_PORTS[name]
            urls[name] = env.get(f"{name.upper()}_URL") or (
                None if not env.get("AMQP_URL") else f"http://127.0.0.1:{default_port}")
        return cls(
            service=service,
            database_url=database_url,
            db_schema=schema,
            amqp_url=env.get("AMQP_URL") or None,
            var_dir=var_dir,
            documents_dir=Path(env.get("DOCUMENTS_DIR") or var_dir / "documents").resolve(),
            secret_key=env.get("CRM_SECRET_KEY") or _secret_from_file(var_dir),
            admin_user=env.get("CRM_ADMIN_USER") or "admin",
            admin_password=env.get("CRM_ADMIN_PASSWORD") or None,
            smtp_host=env.get("SMTP_HOST") or None,
            smtp_port=int(env.get("SMTP_PORT") or 25),
            smtp_user=env.get("SMTP_USER") or None,
            smtp_password=env.get("SMTP_PASSWORD") or None,
            smtp_starttls=_bool(env.get("SMTP_STARTTLS")),
            mail_from=env.get("MAIL_FROM") or "crm@localhost",
            port=port if service == "contracts" else DEFAULT_PORTS[service],
            service_urls=urls,
            relay_interval=float(env.get("CRM_RELAY_INTERVAL") or 0.05),
            worker_threads=int(env.get("CRM_WORKER_THREADS") or DEFAULT_WORKER_THREADS),
            email_senders=int(env.get("CRM_EMAIL_SENDERS") or DEFAULT_EMAIL_SENDERS),
            worker_nice=int(env.get("CRM_WORKER_NICE") or DEFAULT_WORKER_NICE),
            scheduler_interval=float(env.get("CRM_SCHEDULER_INTERVAL") or 60),
            token_ttl=int(env.get("CRM_TOKEN_TTL") or 8 * 3600),
            retention_days=float(env.get("CRM_RETENTION_DAYS") or DEFAULT_RETENTION_DAYS),
            timezone=_zone_name(env.get("CRM_TIMEZONE")),
        )


def _zone_name(value: str | None) -> str:
    """CRM_TIMEZONE checked when the settings are read, so a misspelt zone stops the start, not a request."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
    name = (value or "").strip() or DEFAULT_ZONE
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"CRM_TIMEZONE={name!r} is not a time zone name such as Asia/Shanghai or UTC") from None
    return name


def _normalise_db_url(url: str | None) -> str | None:
    """Accept the common postgres:// spelling, which SQLAlchemy does not."""
    if url and url.startswith("postgres://"):
        return "postgresql://" + url[len("postgres://"):]
    return url or None


def _secret_from_file(var_dir: Path) -> str:
    """Generate the signing key once and keep it under var/, so every local process shares it."""
    path = var_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    try:
        # Readable by this user alone: whoever reads it can sign tokens, an admin's included.
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(key)
        print(f"Generated CRM_SECRET_KEY into {path}")
        return key
    except FileExistsError:
        return path.read_text().strip()
