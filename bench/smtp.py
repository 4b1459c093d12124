"""The bench's SMTP server (aiosmtpd), in its own process: one JSON line per accepted message.

    python -m bench.smtp --port 2525 --log accepted.jsonl [--delay-ms 200]

Each line: {"at": unix time of acceptance, "numbers": document numbers found in the subject (or, when it
names none, in the attachment names and the text parts), "subject", "rcpt", "size", "attachments"}. The load
generator tails the file; it never polls the server.

`--delay-ms` makes it answer each message's DATA that much later, as a remote relay does (a provider's relay
across the internet takes 100–500 ms); sessions wait side by side, not in turn. With it the email senders,
not the cores, can become what limits a saga, which is where a second notifications worker pays.
"""
from __future__ import annotations

import argparse
import asyncio
import email
import email.errors
import email.header
import json
import re
import signal
import threading
import time

NUMBER = re.compile(r"\b[A-Z]{2,4}-\d{4}-\d{4,}\b")
# A part header starts a line. Spelled with a literal newline rather than ^ and MULTILINE with IGNORECASE,
# which tried a match at every byte of the base64 attachment: 1.4 ms per contract email, now 0.1.
ATTACHMENT = re.compile(rb"\n(?i:content-disposition:[ \t]*attachment)")


def numbers_in(raw: bytes) -> tuple[list[str], str, int]:
    """(document numbers, subject, attachment count) of one raw message.

    The numbers come from the subject and X- headers; only when those name none are the parts parsed for
    attachment names and text. Parsing every message whole (its base64 attachment line by line) was 40 % of
    this server's CPU, which the bench counts against the system.
    """
    end = raw.find(b"\r\n\r\n")
    headers = email.message_from_bytes(raw if end < 0 else raw[:end + 4])
    subject = _decoded(headers.get("subject", ""))
    texts = [subject] + [f"{k}: {_decoded(v)}" for k, v in headers.items() if k.lower().startswith("x-")]
    attachments = len(ATTACHMENT.findall(b"\n" + raw))
    if not NUMBER.search("\n".join(texts)):
        texts += _part_texts(email.message_from_bytes(raw))
    found = list(dict.fromkeys(NUMBER.findall("\n".join(texts))))
    return found, subject, attachments


def _part_texts(message) -> list[str]:
    """Attachment names and text parts, decoded (the compat32 policy: policy.default's header objects cost more)."""
    texts = []
    for part in message.walk():
        if part.is_multipart():
            continue
        filename = part.get_filename()
        if filename or part.get_content_disposition() == "attachment":
            texts.append(_decoded(filename or ""))
        elif part.get_content_maintype() == "text":
            try:
                texts.append(part.get_payload(decode=True).decode(part.get_content_charset() or "ascii"))
            except (LookupError, ValueError, AttributeError):
                pass
    return texts


def _decoded(value) -> str:
    """A header's text with RFC 2047 encoded words decoded."""
    try:
        return str(email.header.make_header(email.header.decode_header(str(value))))
    except (LookupError, ValueError, email.errors.HeaderParseError):
        return str(value)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="answer each DATA this much later")
    args = parser.parse_args(argv)

    from aiosmtpd.controller import Controller

    log = open(args.log, "a", buffering=1, encoding="utf-8")
    lock = threading.Lock()

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            if args.delay_ms > 0:
                await asyncio.sleep(args.delay_ms / 1000)  # this session only: the others go on meanwhile
            at = time.time()
            try:
                found, subject, attachments = numbers_in(envelope.content)
            except Exception as exc:  # a message we cannot parse is still accepted, and still logged
                found, subject, attachments = [], f"<unparsable: {exc}>", 0
            line = json.dumps({"at": at, "numbers": found, "subject": subject, "rcpt": list(envelope.rcpt_tos),
                               "size": len(envelope.content), "attachments": attachments}, ensure_ascii=False)
            with lock:
                log.write(line + "\n")
            return "250 Message accepted"

    controller = Controller(Handler(), hostname="127.0.0.1", port=args.port, data_size_limit=64 * 1024 * 1024)
    controller.start()
    print("ready", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    controller.stop()
    log.close()


if __name__ == "__main__":
    main()
