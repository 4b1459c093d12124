"""The bench's SMTP server finds a saga's contract number in what the notifications service sends."""
from bench.smtp import numbers_in
from services.notifications import mailer


def message(subject: str) -> bytes:
    return mailer.render(mailer.Outgoing(
        id="e1", message_id="<e1@example.com>", mail_from="销售部 <sales@example.com>", to=["buyer@例子.公司"],
        subject=subject, body="您好，\n附件为合同 HT-2026-00043。\n",
        attachment=b"%PDF-1.4 not really", attachment_name="合同 HT-2026-00044.pdf"))


def test_the_number_is_found_in_an_encoded_subject():
    found, subject, attachments = numbers_in(message("合同 HT-2026-00042 已确认，请查收附件" * 3))
    assert subject.startswith("合同 HT-2026-00042 已确认")
    assert attachments == 1
    assert found == ["HT-2026-00042"]


def test_without_one_in_the_subject_numbers_are_found_in_the_attachment_name_and_body():
    found, subject, attachments = numbers_in(message("请查收合同附件"))
    assert subject == "请查收合同附件" and attachments == 1
    assert sorted(found) == ["HT-2026-00043", "HT-2026-00044"]


def test_a_message_without_numbers_yields_none():
    raw = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: hello\r\n\r\nplain text\r\n"
    assert numbers_in(raw) == ([], "hello", 0)


def test_attachments_are_counted_by_their_part_headers_in_any_case():
    raw = (b"From: a@example.com\r\nSubject: HT-2026-00045\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
           b"--b\r\nContent-Type: text/plain\r\n\r\nSee the Content-Disposition: attachment below.\r\n"
           b"--b\r\nCONTENT-DISPOSITION: Attachment; filename=a.pdf\r\n\r\nQUJD\r\n"
           b"--b\r\ncontent-disposition:attachment; filename=b.pdf\r\n\r\nREVG\r\n--b--\r\n")
    assert numbers_in(raw) == (["HT-2026-00045"], "HT-2026-00045", 2)


def test_a_delayed_server_accepts_each_message_only_after_its_delay(tmp_path):
    """--smtp-delay stands in for a remote relay: the 250 to DATA comes that much later, for every session."""
    import smtplib
    import threading
    import time

    from bench.system import SmtpServer

    server = SmtpServer(tmp_path, delay_ms=300).start()
    try:
        sent_at = {}

        def send(number):
            with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as smtp:
                sent_at[number] = time.time()
                smtp.sendmail("sales@example.com", ["buyer@example.com"], message(f"合同 {number}"))

        senders = [threading.Thread(target=send, args=(n,)) for n in ("HT-2026-00101", "HT-2026-00102")]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(30)
        accepted = {line["numbers"][0]: line["at"] for line in server.accepted()}
    finally:
        server.stop()
    assert set(accepted) == set(sent_at) == {"HT-2026-00101", "HT-2026-00102"}
    for number, at in accepted.items():
        assert at - sent_at[number] >= 0.3
