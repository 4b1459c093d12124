"""Unit tests for services.notifications.rules: texts, subjects, addresses, retries, inbox access."""
from __future__ import annotations

import email.policy
from email import message_from_bytes

import pytest

from services.notifications import rules
from services.notifications.mailer import DeliveryFailed, Outgoing, build, message_id, render


# ---------------------------------------------------------------------------- department texts

def test_contract_confirmed_in_chinese():
    text = rules.department_text("contract_confirmed", "zh-CN", "production", number="HT-2026-000001",
                                 customer="杭州明远机械有限公司", delivery_date="2026-12-20")
    assert text == "合同 HT-2026-000001（杭州明远机械有限公司）已确认，交货日期 2026-12-20，请安排生产。"


def test_contract_confirmed_in_english_names_the_departments_task():
    text = rules.department_text("contract_confirmed", "en", "warehouse", number="HT-2026-000001",
                                 customer="Mingyuan Machinery", delivery_date="2026-12-20")
    assert text == ("Contract HT-2026-000001 (Mingyuan Machinery) has been confirmed with delivery on 2026-12-20; "
                    "please prepare the goods.")


@pytest.mark.parametrize("department, zh, en", [
    ("production", "请安排生产。", "please schedule production."),
    ("procurement", "请安排采购。", "please arrange the purchase."),
    ("warehouse", "请安排备货。", "please prepare the goods."),
    ("finance", "请准备开票与收款。", "please prepare invoicing and collection."),
])
def test_each_department_is_asked_for_its_own_work(department, zh, en):
    facts = {"number": "HT-1", "customer": "C", "delivery_date": "2026-01-01"}
    assert rules.department_text("contract_confirmed", "zh-CN", department, **facts).endswith(zh)
    assert rules.department_text("contract_confirmed", "en", department, **facts).endswith(en)


def test_missing_facts_print_as_placeholders_not_none():
    zh = rules.department_text("contract_confirmed", "zh-CN", "finance", number="HT-1")
    assert zh == "合同 HT-1 已确认，交货日期 待定，请准备开票与收款。"
    en = rules.department_text("delivery_created", "en", "warehouse", number=None)
    assert "None" not in en and "to be agreed" in en and "—" in en


def test_shortage_lists_the_missing_goods():
    items = rules.items_text([("六角螺栓 M8", "6"), ("螺母 M8", "2")], "zh-CN")
    text = rules.department_text("shortage", "zh-CN", "production", number="HT-1", customer="客户",
                                 delivery_date="2026-12-20", items=items)
    assert text == "合同 HT-1（客户）缺货：六角螺栓 M8 × 6、螺母 M8 × 2，交货日期 2026-12-20，请安排生产。"
    en = rules.department_text("shortage", "en", "production", number="HT-1", customer="C", delivery_date=None,
                               items=rules.items_text([("BOLT", "6")], "en"))
    assert en == "Contract HT-1 (C) is short of BOLT × 6, delivery on a date to be agreed; please schedule production."


def test_an_error_ending_in_a_full_stop_is_not_followed_by_a_second_one():
    error = "There is no address to send to (the customer has no email address)."
    zh = rules.department_text("email_failed", "zh-CN", "sales", number="HT-1", to="—", error=error)
    assert "email address)。请核对" in zh and ".。" not in zh
    en = rules.department_text("email_failed", "en", "sales", number="HT-1", to="—", error=error)
    assert "email address). Please check" in en and ".." not in en


def test_every_reason_has_both_languages_and_formats():
    for reason in rules.REASONS:
        for language in rules.LANGUAGES:
            text = rules.department_text(reason, language, "sales", number="HT-1", customer="C")
            assert text and "{" not in text and "None" not in text


@pytest.mark.parametrize("value, expected", [("zh-CN", "zh-CN"), ("en", "en"), ("en-GB", "en"), (None, "zh-CN"),
                                             ("", "zh-CN"), ("fr", "zh-CN"), (3, "zh-CN")])
def test_language_falls_back_to_chinese(value, expected):
    assert rules.language_of(value) == expected


# ---------------------------------------------------------------------------- subjects and bodies

def test_default_subject_is_bilingual_with_the_number():
    assert rules.default_subject("contract", "HT-2026-000001") == \
        "销售合同 HT-2026-000001 / Sales Contract HT-2026-000001"
    assert rules.default_subject("quote", "QT-2026-000007") == "报价单 QT-2026-000007 / Quotation QT-2026-000007"


def test_body_in_the_customers_language_with_the_salespersons_message_first():
    zh = rules.email_body("contract", "HT-1", "zh-CN", "杭州明远", "请尽快签回。", "某某公司")
    assert zh.startswith("杭州明远，您好：\n\n请尽快签回。\n\n附件为销售合同 HT-1（PDF），请查收。")
    assert zh.rstrip().endswith("某某公司")
    en = rules.email_body("quote", "QT-1", "en", "Acme", None, None)
    assert en == "Dear Acme,\n\nPlease find attached quotation QT-1 (PDF).\n\nBest regards,\n"


# ---------------------------------------------------------------------------- addresses and subjects

@pytest.mark.parametrize("address", ["buyer@example.cn", "a.b+c@mail.example.com", "x@xn--fiqs8s.cn",
                                     "caigou@例子.中国"])
def test_plain_addresses_are_accepted(address):
    assert rules.address_problem(address) is None


@pytest.mark.parametrize("address", [
    "a@b.com\r\nBcc: x@y.com",
    "a@b.com\nBcc: x@y.com",
    "a@b.com, c@d.com",
    "a@b.com;c@d.com",
    "Buyer <a@b.com>",
    "a@b@c.com",
    "a@localhost",
    "@b.com",
    "a@",
    "a @b.com",
    "a@b.com\x00",
    "a..b@c.com",
    "a@-b.com",
    "",
    None,
    ["a@b.com"],
    "x" * 250 + "@b.com",
])
def test_injections_and_several_addresses_are_refused(address):
    assert rules.address_problem(address) is not None


def test_recipient_lists_name_the_bad_entry_and_cap_the_count():
    assert rules.recipients_problems(["a@b.com", "a@b.com\r\nBcc: x@y.com"], "to") == {
        "to.1": ["Must not contain line breaks or control characters."]}
    assert rules.recipients_problems(["a@b.com, c@d.com"], "cc") == {
        "cc.0": ["Must be a single address without a display name."]}
    assert "to" in rules.recipients_problems([f"u{i}@b.com" for i in range(11)], "to")
    assert "to" in rules.recipients_problems("a@b.com", "to")
    assert rules.recipients_problems([f"u{i}@b.com" for i in range(10)], "to") == {}


@pytest.mark.parametrize("subject, ok", [
    ("销售合同 HT-1 / Sales Contract HT-1", True),
    ("x" * 200, True),
    ("x" * 201, False),
    ("Hello\r\nBcc: x@y.com", False),
    ("Hello\nthere", False),
    ("   ", False),
    (12, False),
])
def test_subject_rules(subject, ok):
    assert (rules.subject_problem(subject) is None) is ok


# ---------------------------------------------------------------------------- retries

def test_retries_back_off_to_every_half_hour_then_give_up_after_a_day():
    assert [rules.retry_delay(n, 0) for n in range(1, 6)] == [2, 5, 15, 30, 60]
    assert [rules.retry_delay(n, 3600) for n in (10, 11, 50)] == [1800, 1800, 1800]
    assert rules.retry_delay(20, 24 * 3600 - 1800) == 1800
    assert rules.retry_delay(20, 24 * 3600 - 1799) is None  # the next attempt would fall after the day
    assert rules.retry_delay(0, 0) is None


def test_a_failing_email_is_tried_at_ten_minutes_so_the_salesperson_hears_then():
    """Attempts on the real schedule (each taking a second): the first failure at or past ten minutes, when the
    salesperson is told, comes at ten minutes, not at the next step of the backoff (about nineteen)."""
    elapsed, attempts = 0.0, 0
    while elapsed < rules.DELAY_NOTICE_AFTER:
        attempts += 1
        elapsed += 1.0 + rules.retry_delay(attempts, elapsed + 1.0)
    assert rules.DELAY_NOTICE_AFTER <= elapsed <= rules.DELAY_NOTICE_AFTER + 2


def test_only_5xx_answers_are_permanent():
    assert rules.is_permanent(550) and rules.is_permanent(554)
    assert not rules.is_permanent(451) and not rules.is_permanent(None) and not rules.is_permanent(421)


# ---------------------------------------------------------------------------- inbox access

@pytest.mark.parametrize("role, own, department, expected", [
    ("manager", None, "finance", rules.ALL),
    ("admin", None, "production", rules.ALL),
    ("department", "warehouse", "warehouse", rules.ALL),
    ("department", "warehouse", "finance", None),
    ("department", None, "finance", None),
    ("sales", "sales", "sales", rules.ADDRESSED),
    ("sales", None, "sales", rules.ADDRESSED),
    ("sales", "sales", "production", None),
])
def test_inbox_scope(role, own, department, expected):
    assert rules.inbox_scope(role, own, department) == expected


# ---------------------------------------------------------------------------- the MIME message

def test_message_carries_a_stable_message_id_and_the_pdf():
    out = Outgoing(id="e1", message_id=message_id("e1", "sales@example.cn"), mail_from="sales@example.cn",
                   to=["buyer@example.cn"], cc=["boss@example.cn"], subject="销售合同 HT-1 / Sales Contract HT-1",
                   body="您好", attachment=b"%PDF-1.4 test", attachment_name="销售合同-HT-1.pdf")
    message = build(out)
    assert message["Message-ID"] == "<e1@example.cn>"
    assert message["To"] == "buyer@example.cn" and message["Cc"] == "boss@example.cn"
    assert str(message["Subject"]) == "销售合同 HT-1 / Sales Contract HT-1"
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == "销售合同-HT-1.pdf"
    assert attachment.get_content() == b"%PDF-1.4 test"


@pytest.mark.parametrize("mail_from", ["sales@example.cn", "恒达五金 销售部 <sales@example.cn>",
                                       '"Sales, HengDa" <sales@example.cn>'])
def test_the_message_id_is_well_formed_whatever_the_sender_looks_like(mail_from):
    out = Outgoing(id="e3", message_id=message_id("e3", mail_from), mail_from=mail_from, to=["buyer@example.cn"],
                   subject="合同", body="您好", attachment=b"%PDF-1.4", attachment_name="合同.pdf")
    message = message_from_bytes(render(out), policy=email.policy.default)
    assert message["Message-ID"] == "<e3@example.cn>"  # was "<e3@example.cn>>" with a display name
    assert not message["Message-ID"].defects


def test_message_headers_are_ascii_and_read_back_as_written():
    out = Outgoing(id="e2", message_id="<e2@example.cn>", mail_from="恒达五金 销售部 <sales@example.cn>",
                   to=["buyer@例子.cn"], subject="销售合同 HT-2 " * 12, body="您好，\n附件是合同。",
                   attachment=b"%PDF-1.4 " + bytes(range(256)) * 40, attachment_name='contract "HT-2".pdf')
    raw = render(out)
    assert raw.isascii() and max(len(line) for line in raw.split(b"\r\n")) <= 998
    assert b"\n" not in raw.replace(b"\r\n", b"")  # SMTP servers refuse bare line feeds in DATA
    message = build(out)
    assert str(message["From"]) == "恒达五金 销售部 <sales@example.cn>"
    assert message["To"] == "buyer@xn--fsqu00a.cn"  # the domain in IDNA form, as SMTP without SMTPUTF8 needs
    assert str(message["Subject"]) == "销售合同 HT-2 " * 12
    assert message.get_body(("plain",)).get_content() == "您好，\n附件是合同。"
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == 'contract "HT-2".pdf' and attachment.get_content() == out.attachment


def test_message_refuses_a_header_breaking_address():
    out = Outgoing(id="e1", message_id="<e1@x.cn>", mail_from="s@x.cn", to=["a@b.com\r\nBcc: x@y.com"],
                   subject="s", body="b")
    with pytest.raises(DeliveryFailed) as failure:
        build(out)
    assert failure.value.permanent


@pytest.mark.parametrize("amount, currency, text", [
    ("425596252.55", "CNY", "CNY 425,596,252.55"), ("5000", None, "CNY 5,000.00"), ("0.50", "USD", "USD 0.50"),
    (None, "CNY", "—")])
def test_amounts_in_department_texts_are_grouped_as_on_the_documents(amount, currency, text):
    assert rules.money_text(amount, currency) == text


def test_a_chinese_attachment_name_reaches_readers_of_either_convention():
    out = Outgoing(id="e4", message_id="<e4@x.cn>", mail_from="s@x.cn", to=["buyer@example.cn"], subject="合同",
                   body="您好", attachment=b"%PDF-1.4", attachment_name="销售合同-HT-2026-000061.pdf")
    raw = render(out).decode("ascii")
    [attachment] = list(build(out).iter_attachments())
    assert attachment.get_filename() == "销售合同-HT-2026-000061.pdf"  # RFC 2231 on Content-Disposition
    name = attachment.get_param("name")  # and an encoded word on Content-Type, for readers without RFC 2231
    from email.header import decode_header, make_header
    assert str(make_header(decode_header(name))) == "销售合同-HT-2026-000061.pdf", raw
    assert 'name="contract.pdf"' in render(Outgoing(id="e5", message_id="<e5@x.cn>", mail_from="s@x.cn",
                                                   to=["b@x.cn"], subject="s", body="b", attachment=b"%PDF",
                                                   attachment_name="contract.pdf")).decode("ascii")
