"""A small mail catcher for tests and the compose stack.

    python -m tools.mailcatcher --smtp-port 1025 --http-port 8025 --dir DIR [--refuse-file PATH]

SMTP (aiosmtpd): every accepted message is stored as DIR/<id>.eml, with its
envelope and a summary beside it in DIR/<id>.json.  While --refuse-file exists,
every RCPT and DATA is answered 451 (a temporary failure), for chaos tests.

HTTP (standard library):
    GET    /healthz           {"status": "ok"}
    GET    /messages          [{id, mail_from, rcpt_tos, subject, received_at, size,
                                attachments: [{filename, sha256, size}]}], oldest first
    GET    /messages/<id>.eml the raw message (message/rfc822)
    DELETE /messages          forget every stored message
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import hashlib
import json
import logging
import os
import re
import signal
import threading
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from aiosmtpd.smtp import SMTP, AuthResult

log = logging.getLogger("mailcatcher")

REFUSED = "451 4.3.0 Temporary failure, try again later"
_ID_RE = re.compile(r"^[0-9A-Za-z_-]+$")


def summarize(raw: bytes) -> dict:
    """Subject and attachments of one raw message."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    attachments = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        filename = part.get_filename()
        if not filename and part.get_content_disposition() != "attachment":
            continue
        payload = part.get_payload(decode=True) or b""
        attachments.append({
            "filename": filename,
            "content_type": part.get_content_type(),
            "sha256": hashlib.sha256(payload).hexdigest(),
            "size": len(payload),
        })
    return {"subject": str(msg.get("subject", "")), "attachments": attachments}


class Store:
    def __init__(self, directory: Path):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def add(self, mail_from: str, rcpt_tos: list[str], raw: bytes) -> str:
        now = datetime.now(timezone.utc)
        msg_id = now.strftime("%Y%m%dT%H%M%S%fZ") + "-" + uuid.uuid4().hex[:8]
        meta = {"id": msg_id, "mail_from": mail_from, "rcpt_tos": list(rcpt_tos),
                "received_at": now.isoformat(), "size": len(raw), **summarize(raw)}
        with self._lock:
            self._write(self.dir / f"{msg_id}.eml", raw)
            # the .json is written last: a message is listed only once it is complete
            self._write(self.dir / f"{msg_id}.json", json.dumps(meta).encode())
        return msg_id

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def list(self) -> list[dict]:
        out = []
        for path in sorted(self.dir.glob("*.json")):
            try:
                out.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue
        return out

    def raw(self, msg_id: str) -> bytes | None:
        if not _ID_RE.match(msg_id):
            return None
        path = self.dir / f"{msg_id}.eml"
        return path.read_bytes() if path.exists() else None

    def clear(self) -> int:
        n = 0
        with self._lock:
            for path in list(self.dir.glob("*.json")) + list(self.dir.glob("*.eml")):
                path.unlink(missing_ok=True)
                n += path.suffix == ".json"
        return n


class Handler:
    """aiosmtpd handler: store messages, or refuse while the refuse file exists."""

    def __init__(self, store: Store, refuse_file: Path | None):
        self.store = store
        self.refuse_file = refuse_file

    def refusing(self) -> bool:
        return self.refuse_file is not None and self.refuse_file.exists()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refusing():
            return REFUSED
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.refusing():
            return REFUSED
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        msg_id = self.store.add(envelope.mail_from, envelope.rcpt_tos, raw)
        log.info("stored %s from %s to %s (%d bytes)", msg_id, envelope.mail_from,
                 ",".join(envelope.rcpt_tos), len(raw))
        return "250 Message accepted for delivery"


def _accept_any_login(server, session, envelope, mechanism, auth_data):
    return AuthResult(success=True, auth_data=auth_data)


def make_http_handler(store: Store):
    class HTTPHandler(BaseHTTPRequestHandler):
        server_version = "mailcatcher/1"

        def _send(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, status: int, data) -> None:
            self._send(status, json.dumps(data).encode(), "application/json")

        def do_GET(self):
            path = self.path.split("?", 1)[0].rstrip("/")
            if path == "/healthz":
                return self._json(200, {"status": "ok"})
            if path == "/messages":
                return self._json(200, store.list())
            m = re.fullmatch(r"/messages/([^/]+)\.eml", path)
            if m:
                raw = store.raw(m.group(1))
                if raw is not None:
                    return self._send(200, raw, "message/rfc822")
            return self._json(404, {"error": "not found"})

        do_HEAD = do_GET

        def do_DELETE(self):
            if self.path.split("?", 1)[0].rstrip("/") == "/messages":
                return self._json(200, {"deleted": store.clear()})
            return self._json(404, {"error": "not found"})

        def log_message(self, fmt, *args):
            log.debug("http %s " + fmt, self.address_string(), *args)

    return HTTPHandler


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m tools.mailcatcher", description=__doc__.split("\n")[0])
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--smtp-port", type=int, default=1025)
    p.add_argument("--http-port", type=int, default=8025)
    p.add_argument("--dir", type=Path, default=Path("var/mailcatcher"))
    p.add_argument("--refuse-file", type=Path, default=None,
                   help="while this file exists, RCPT and DATA are answered 451")
    args = p.parse_args(argv)
    logging.basicConfig(level=os.environ.get("CRM_LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if logging.getLogger().level > logging.DEBUG:
        logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP line at INFO

    store = Store(args.dir)
    handler = Handler(store, args.refuse_file)
    loop = asyncio.new_event_loop()
    smtp = loop.run_until_complete(loop.create_server(
        lambda: SMTP(handler, decode_data=False, enable_SMTPUTF8=True,
                     authenticator=_accept_any_login, auth_require_tls=False),
        args.host, args.smtp_port))
    threading.Thread(target=loop.run_forever, name="smtp", daemon=True).start()

    httpd = ThreadingHTTPServer((args.host, args.http_port), make_http_handler(store))
    httpd.daemon_threads = True

    def _stop(signum, frame):  # PID 1 in a container ignores SIGTERM unless handled
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    log.info("SMTP on %s:%d, HTTP on %s:%d, storing in %s", args.host, args.smtp_port,
             args.host, args.http_port, args.dir)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
        loop.call_soon_threadsafe(smtp.close)
        loop.call_soon_threadsafe(loop.stop)


if __name__ == "__main__":
    main()
