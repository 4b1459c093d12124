"""Building a MIME email with its PDF, and handing it to SMTP or, without SMTP_HOST, to a .eml file."""
from __future__ import annotations

import base64
import email.policy
import os
import smtplib
import ssl
import time
import uuid
from dataclasses import dataclass, field
from email import message_from_bytes
from email.header import Header
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from pathlib import Path
from typing import Callable
from urllib.parse import quote

from crmkit.timeutil import utcnow
from services.notifications.rules import RELAY_LOGIN_CODES, address_problem, is_permanent

CRLF = "\r\n"  # SMTP's line ending, which servers require in DATA (and .eml readers accept)
SMTP_TIMEOUT = 30  # seconds per SMTP command; the sender's lease is far longer


class DeliveryFailed(Exception):
    """The email was not accepted; `permanent` when retrying cannot help (a 5xx answer)."""

    def __init__(self, message: str, permanent: bool = False, stale_connection: bool = False,
                 relay_login: bool = False):
        super().__init__(message)
        self.permanent = permanent
        self.relay_login = relay_login  # the operator's to fix (SMTP credentials), not the email's
        self.stale_connection = stale_connection  # the connection failed, not the message


@dataclass
class Outgoing:
    id: str
    message_id: str
    mail_from: str
    to: list
    subject: str
    body: str
    cc: list = field(default_factory=list)
    reply_to: str | None = None
    attachment: bytes | None = None
    attachment_name: str | None = None

    @property
    def recipients(self) -> list[str]:
        return list(dict.fromkeys(self.to + self.cc))


def message_id(email_id: str, mail_from: str) -> str:
    """Deterministic: every attempt for one email carries the same Message-ID, so a resend is recognisable."""
    address = parseaddr(mail_from)[1]  # MAIL_FROM may carry a display name: "销售部 <sales@example.cn>"
    domain = address.rpartition("@")[2] if "@" in address else ""
    return f"<{email_id}@{domain or 'crm.localhost'}>"


def render(out: Outgoing) -> bytes:
    """The whole message as bytes (RFC 5322 + MIME, CRLF line endings), ready for SMTP DATA or a .eml file.

    Written directly rather than through EmailMessage: the standard library's header policy parses and refolds
    every header again when the message is flattened, which cost more CPU than anything else in sending.
    """
    # Headers come only from addresses that passed validation; checking again here keeps a bad event
    # (or a future caller) from ever writing a header line of its own.
    for address in out.recipients + ([out.reply_to] if out.reply_to else []):
        problem = address_problem(address)
        if problem:
            raise DeliveryFailed(f"invalid address {address!r}: {problem}", permanent=True)
    if any(c in out.mail_from for c in "\r\n"):  # MAIL_FROM may carry a display name, never a line break
        raise DeliveryFailed("MAIL_FROM contains a line break.", permanent=True)
    boundary = f"=_crm_{uuid.uuid4().hex}"
    headers = [("From", _sender(out.mail_from)), ("To", ", ".join(map(ascii_address, out.to)))]
    if out.cc:
        headers.append(("Cc", ", ".join(map(ascii_address, out.cc))))
    if out.reply_to:
        headers.append(("Reply-To", ascii_address(out.reply_to)))
    headers += [("Subject", _encoded(out.subject)), ("Date", format_datetime(utcnow())),
                ("Message-ID", out.message_id), ("MIME-Version", "1.0")]
    parts = [_part("text/plain; charset=\"utf-8\"", out.body.encode("utf-8"))]
    if out.attachment is not None:
        name = out.attachment_name or "document.pdf"
        parts.append(_part(f"application/pdf; {_name_param(name)}", out.attachment,
                           f"attachment; {_filename_param(name)}"))
    lines = [f"{name}: {value}" for name, value in headers]
    lines += [f'Content-Type: multipart/mixed; boundary="{boundary}"', ""]
    for part in parts:
        lines += [f"--{boundary}", part]
    lines += [f"--{boundary}--", ""]
    return CRLF.join(lines).encode("ascii")


def build(out: Outgoing) -> EmailMessage:
    """The rendered message read back as an EmailMessage (for tests and tools that inspect it)."""
    return message_from_bytes(render(out), policy=email.policy.default)


def ascii_address(address: str) -> str:
    """An internationalised domain in its ASCII (IDNA) form, as a header without SMTPUTF8 needs it."""
    local, _, domain = address.rpartition("@")
    return address if domain.isascii() else f"{local}@{domain.encode('idna').decode('ascii')}"


def _sender(mail_from: str) -> str:
    name, address = parseaddr(mail_from)
    return formataddr((name, ascii_address(address)), charset="utf-8") if name else ascii_address(address or mail_from)


def _encoded(text: str) -> str:
    return text if text.isascii() and len(text) < 900 else Header(text, "utf-8").encode(linesep=CRLF)


def _filename_param(name: str) -> str:
    if name.isascii() and not any(c in name for c in '"\\'):
        return f'filename="{name}"'
    return f"filename*=utf-8''{quote(name, safe='')}"  # RFC 2231, as mail readers expect for a Chinese name


def _name_param(name: str) -> str:
    """The attachment's name on its Content-Type too, for mail readers that ignore RFC 2231 (older Outlook,
    some webmail): as an encoded word there, the way Gmail and Outlook themselves send a Chinese file name."""
    if name.isascii() and not any(c in name for c in '"\\'):
        return f'name="{name}"'
    return f'name="=?utf-8?b?{base64.b64encode(name.encode("utf-8")).decode("ascii")}?="'


def _part(content_type: str, payload: bytes, disposition: str | None = None) -> str:
    head = [f"Content-Type: {content_type}", "Content-Transfer-Encoding: base64"]
    if disposition:
        head.append(f"Content-Disposition: {disposition}")
    # Lines of 76 (RFC 2045). One b64encode and slicing: encodebytes calls into C once per 57-byte line.
    encoded = base64.b64encode(payload).decode("ascii")
    body = CRLF.join([encoded[i:i + 76] for i in range(0, len(encoded), 76)])
    return CRLF.join(head) + CRLF + CRLF + body


def deliver(settings, out: Outgoing, before_data: Callable[[], None] | None = None,
            message: bytes | None = None, connection: "SmtpConnection | None" = None) -> list[str]:
    """Send over SMTP, or write var/outbox/<id>.eml without SMTP_HOST; returns the addresses refused.

    `before_data` runs once the server has accepted the recipients, just before the message itself is sent:
    only from then on may a crash leave it unknown whether the server took the message. `message` is
    `render(out)` when the caller has already rendered it; `connection` one kept open for a batch of emails.
    """
    message = message if message is not None else render(out)
    if not settings.smtp_host:
        if before_data is not None:
            before_data()
        write_eml(settings.outbox_dir, out.id, message)
        return []
    recipients = [ascii_address(a) for a in out.recipients]
    if connection is not None:
        return connection.send(message, recipients, before_data)
    with SmtpConnection(settings) as single:
        return single.send(message, recipients, before_data)


def write_eml(directory: Path, name: str, message: bytes) -> Path:
    """Atomically, under a name fixed per email: writing it again replaces it, never adds a second one."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.eml"
    partial = directory / f".{name}.eml.partial"
    partial.write_bytes(message)
    os.replace(partial, path)
    return path


class _SMTP(smtplib.SMTP):
    """smtplib's client, with a hook between the last accepted RCPT and DATA (sendmail calls data() there)."""

    before_data: Callable[[], None] | None = None

    def data(self, msg: bytes):
        r"""smtplib.SMTP.data for a message already in bytes with CRLF endings (render() makes it so).

        Its dot-stuffing is a regex, (?m)^\., which tries a match at every byte: about 1 ms for a contract's
        base64 PDF. bytes.replace does the same in a fraction of that.
        """
        if self.before_data is not None:
            self.before_data()
        self.putcmd("data")
        code, reply = self.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        payload = dot_stuffed(msg)
        if not payload.endswith(b"\r\n"):
            payload += b"\r\n"
        self.send(payload + b".\r\n")
        return self.getreply()


def dot_stuffed(data: bytes) -> bytes:
    """RFC 5321 §4.5.2: a line that starts with "." gets a second one, so no line of the message ends DATA."""
    data = data.replace(b"\n.", b"\n..")
    return b"." + data if data.startswith(b".") else data


class SmtpConnection:
    """One SMTP session for several emails: a batch, or a sender's run of batches until it idles.

    Any error closes it; the next email opens a new one. A kept connection the server has dropped since is
    noticed before DATA, so that email is simply tried on a fresh connection at once.
    """

    def __init__(self, settings):
        self.settings = settings
        self.smtp: _SMTP | None = None
        self.last_used = 0.0  # time.monotonic() of the last exchange

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def send(self, message: bytes, recipients: list[str],
             before_data: Callable[[], None] | None = None) -> list[str]:
        reused = self.smtp is not None
        started = []

        def hook():
            started.append(True)
            if before_data is not None:
                before_data()

        try:
            return self._send(message, recipients, hook)
        except DeliveryFailed as exc:
            if reused and not started and exc.stale_connection:
                return self._send(message, recipients, hook)
            raise
        finally:
            self.last_used = time.monotonic()

    def _send(self, message, recipients, hook) -> list[str]:
        settings = self.settings
        try:
            if self.smtp is None:
                self.smtp = _SMTP(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT)
                if settings.smtp_starttls:
                    self.smtp.starttls(context=ssl.create_default_context())
                if settings.smtp_user:
                    self.smtp.login(settings.smtp_user, settings.smtp_password or "")
            self.smtp.before_data = hook
            refused = self.smtp.sendmail(settings.mail_from, recipients, message)
        except smtplib.SMTPRecipientsRefused as exc:
            self.close()
            codes = [code for code, _ in exc.recipients.values()]
            detail = "; ".join(f"{addr}: {code} {_text(text)}" for addr, (code, text) in exc.recipients.items())
            raise DeliveryFailed(f"every recipient was refused ({detail})",
                                 permanent=bool(codes) and all(is_permanent(c) for c in codes))
        except smtplib.SMTPResponseException as exc:
            self.close()
            if exc.smtp_code in RELAY_LOGIN_CODES:
                raise DeliveryFailed(f"SMTP {exc.smtp_code} {_text(exc.smtp_error)}: the mail relay refused our login; "
                                     "check SMTP_USER, SMTP_PASSWORD and SMTP_STARTTLS", relay_login=True)
            raise DeliveryFailed(f"SMTP {exc.smtp_code} {_text(exc.smtp_error)}",
                                 permanent=is_permanent(exc.smtp_code), stale_connection=exc.smtp_code == 421)
        except (smtplib.SMTPException, OSError) as exc:
            self.close()
            raise DeliveryFailed(f"SMTP server unreachable: {type(exc).__name__}: {exc}", stale_connection=True)
        return sorted(refused)

    def close_if_idle(self, seconds: float) -> None:
        if self.smtp is not None and time.monotonic() - self.last_used >= seconds:
            self.close()

    def close(self) -> None:
        if self.smtp is not None:
            _quit(self.smtp)
            self.smtp = None


def _quit(smtp: smtplib.SMTP) -> None:
    # The message is already accepted or refused; a failing QUIT must not turn a delivery into a retry.
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
