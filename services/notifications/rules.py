"""Notification rules free of any framework: department texts, email subjects and bodies, addresses, retries."""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

# The address and subject rules are the kit's: the gateway checks a send request with the very same ones.
from crmkit.mail_rules import SUBJECTS, address_problem, default_subject, recipients_problems, subject_problem

DEPARTMENTS = ("production", "procurement", "warehouse", "finance", "sales")
LANGUAGES = ("zh-CN", "en")

# --- who reads which inbox -------------------------------------------------------------------------------------

ALL, ADDRESSED = "all", "addressed"


def inbox_scope(role: str, user_department: str | None, department: str) -> str | None:
    """What of `department`'s inbox a user may read: ALL, only messages ADDRESSED to them, or None."""
    if role in ("manager", "admin", "system"):
        return ALL
    if role == "department" and user_department == department:
        return ALL
    # A salesperson's warnings sit in the sales inbox, each addressed to one salesperson.
    if role == "sales" and department == "sales":
        return ADDRESSED
    return None


# --- department message texts ----------------------------------------------------------------------------------

ACTIONS = {
    "zh-CN": {"production": "请安排生产。", "procurement": "请安排采购。", "warehouse": "请安排备货。",
              "finance": "请准备开票与收款。", "sales": "请跟进。"},
    "en": {"production": "please schedule production.", "procurement": "please arrange the purchase.",
           "warehouse": "please prepare the goods.", "finance": "please prepare invoicing and collection.",
           "sales": "please follow up."},
}

# What a department stops doing when a contract it was told about is cancelled.
STOP_ACTIONS = {
    "zh-CN": {"production": "请停止为其安排的生产。", "procurement": "请停止为其安排的采购。",
              "warehouse": "请停止备货与出库。", "finance": "请停止开票与收款。", "sales": "请知悉。"},
    "en": {"production": "please stop the production scheduled for it.",
           "procurement": "please stop the purchase arranged for it.",
           "warehouse": "please stop preparing and shipping its goods.",
           "finance": "please stop its invoicing and collection.", "sales": "for your information."},
}

DOCUMENT_NAMES = {"zh-CN": {"contract": "合同", "quote": "报价单"}, "en": {"contract": "contract", "quote": "quotation"}}

TEMPLATES = {
    "zh-CN": {
        "contract_confirmed": "合同 {number}{customer}已确认，交货日期 {delivery_date}，{action}",
        "shortage": "合同 {number}{customer}缺货：{items}，交货日期 {delivery_date}，{action}",
        "stock_warning": "合同 {number}{customer}库存不足：{items}，请与客户确认交货安排。",
        "delivery_created": "合同 {number}{customer}的发货单 {delivery_number} 已开立，发货日期 {ship_date}，请安排出库。",
        "delivery_shipped": "合同 {number}{customer}的发货单 {delivery_number} 已发货。",
        "receivables_planned": "合同 {number}{customer}的收款计划已制定：共 {count} 期，合计 {total}。",
        "receivables_replaced": "合同 {number}{customer}的收款计划已更改：共 {count} 期，合计 {total}；此前的计划及其到期"
                                "提醒作废，以此为准。",
        "receivable_paid": "合同 {number}{customer}第 {seq} 期（{label}）收到付款 {amount}。",
        "payment_recorded": "合同 {number}{customer}第 {seq} 期（{label}）收到部分付款 {amount}，尚欠 {outstanding}。",
        "payment_voided": "合同 {number}{customer}第 {seq} 期（{label}）的付款 {amount} 已作废（{void_reason}），"
                          "尚欠 {outstanding}。",
        "receivable_overdue": "合同 {number}{customer}第 {seq} 期（{label}）{amount} 已于 {due_date} 到期未付，请催收。",
        "email_failed": "{document} {number} 发送给 {to} 的邮件失败：{error}。请核对地址后重新发送。",
        "email_delayed": "{document} {number} 发送给 {to} 的邮件尚未发出：{error}。系统将继续重试至 {until}，"
                         "如最终失败会再通知您；如有急需，请先通过其他方式联系客户。",
        "recurring_failed": "定期合同（源合同 {number}）生成失败：{error}。",
        "contract_cancelled": "合同 {number}{customer}已取消（原交货日期 {delivery_date}），{stop_action}",
        "contract_cancelled_paid": "合同 {number}{customer}已取消（原交货日期 {delivery_date}），请停止开票与收款；"
                                   "客户已付 {received}，请按约定办理退款或抵扣。",
    },
    "en": {
        "contract_confirmed": "Contract {number}{customer} has been confirmed with delivery on {delivery_date}; "
                              "{action}",
        "shortage": "Contract {number}{customer} is short of {items}, delivery on {delivery_date}; {action}",
        "stock_warning": "Contract {number}{customer} is short of stock: {items}; please agree the delivery with "
                         "the customer.",
        "delivery_created": "Delivery note {delivery_number} of contract {number}{customer} has been issued; "
                            "ship date: {ship_date}; please prepare the goods.",
        "delivery_shipped": "Delivery note {delivery_number} of contract {number}{customer} has been shipped.",
        "receivables_planned": "The receivables plan of contract {number}{customer} is set: {count} instalments, "
                               "{total} in total.",
        "receivables_replaced": "The receivables plan of contract {number}{customer} has been changed: {count} "
                                "instalments, {total} in total; it replaces the earlier plan and its reminders.",
        "receivable_paid": "Contract {number}{customer}: a payment of {amount} was received for instalment {seq} "
                           "({label}).",
        "payment_recorded": "Contract {number}{customer}: a part payment of {amount} was received for instalment "
                            "{seq} ({label}); {outstanding} is still due.",
        "payment_voided": "Contract {number}{customer}: the payment of {amount} for instalment {seq} ({label}) was "
                          "voided ({void_reason}); {outstanding} is due again.",
        "receivable_overdue": "Contract {number}{customer}: instalment {seq} ({label}) of {amount} was due on "
                              "{due_date} and is unpaid; please follow up.",
        "email_failed": "The email of {document} {number} to {to} failed: {error}. Please check the address and "
                        "send it again.",
        "email_delayed": "The email of {document} {number} to {to} has not gone out yet: {error}. It is retried "
                         "until {until} and you will be told if it fails; if it is urgent, reach the customer "
                         "another way meanwhile.",
        "recurring_failed": "A recurring contract from contract {number} could not be generated: {error}.",
        "contract_cancelled": "Contract {number}{customer} has been cancelled (delivery date: {delivery_date}); "
                              "{stop_action}",
        "contract_cancelled_paid": "Contract {number}{customer} has been cancelled (delivery date: {delivery_date}); "
                                   "please stop its invoicing and collection; the customer has paid {received}, "
                                   "to be refunded or credited as agreed.",
    },
}
REASONS = tuple(TEMPLATES["en"])

UNKNOWN = {"zh-CN": {"date": "待定", "value": "—"}, "en": {"date": "a date to be agreed", "value": "—"}}


def language_of(value) -> str:
    """zh-CN or en; anything else (missing, 'zh', 'en-GB') falls to the nearest of the two."""
    value = (value or "").strip().lower() if isinstance(value, str) else ""
    return "en" if value.startswith("en") else "zh-CN"


def items_text(items: list[tuple[str, str]], language: str) -> str:
    """[(product, quantity)] → '六角螺栓 M8 × 6、螺母 M8 × 2' or 'Bolt × 6, Nut × 2'."""
    separator = "、" if language == "zh-CN" else ", "
    return separator.join(f"{name} × {quantity}" for name, quantity in items) or UNKNOWN[language]["value"]


def money_text(amount, currency: str | None) -> str:
    if amount in (None, ""):
        return "—"
    try:  # grouped as the documents print it: CNY 425,596,252.55
        amount = format(Decimal(str(amount)), ",.2f")
    except ArithmeticError:
        pass  # shown as it came rather than not at all
    return f"{currency or 'CNY'} {amount}"


def department_text(reason: str, language: str, department: str = "sales", **facts) -> str:
    """One human sentence for a department message, in the company's language."""
    language = language_of(language)
    unknown = UNKNOWN[language]
    customer = facts.get("customer")
    values = {key: (unknown["value"] if value in (None, "") else value) for key, value in facts.items()}
    if language == "zh-CN":
        values["customer"] = f"（{customer}）" if customer else " "  # "合同 HT-1 已确认" without a name
    else:
        values["customer"] = f" ({customer})" if customer else ""
    for key in ("delivery_date", "ship_date", "due_date"):
        if facts.get(key) in (None, ""):
            values[key] = unknown["date"]
    if facts.get("error"):  # the template ends the sentence: "…failed: <error>. Please…", not "…address).。"
        values["error"] = str(facts["error"]).strip().rstrip(".。")
    values["action"] = ACTIONS[language].get(department, ACTIONS[language]["sales"])
    values["stop_action"] = STOP_ACTIONS[language].get(department, STOP_ACTIONS[language]["sales"])
    values["document"] = DOCUMENT_NAMES[language].get(facts.get("document") or "contract", facts.get("document"))
    template = TEMPLATES[language][reason]
    return template.format_map(_Defaults(values, unknown["value"]))


class _Defaults(dict):
    """format_map values where any fact the event did not carry prints as a dash."""

    def __init__(self, values: dict, missing: str):
        super().__init__(values)
        self.missing = missing

    def __missing__(self, key):
        return self.missing


# --- emails ----------------------------------------------------------------------------------------------------

def email_body(kind: str, number: str, language: str, customer: str | None = None, message: str | None = None,
               company: str | None = None) -> str:
    """The plain-text body: the salesperson's message (if any), then what is attached, then the signature."""
    language = language_of(language)
    zh, en = SUBJECTS.get(kind, SUBJECTS["contract"])
    if language == "zh-CN":
        lines = [f"{customer}，您好：" if customer else "您好：", ""]
        if message:
            lines += [message.strip(), ""]
        lines += [f"附件为{zh} {number}（PDF），请查收。", "", company or ""]
    else:
        lines = [f"Dear {customer}," if customer else "Hello,", ""]
        if message:
            lines += [message.strip(), ""]
        lines += [f"Please find attached {en.lower()} {number} (PDF).", "", "Best regards,", company or ""]
    return "\n".join(lines).rstrip() + "\n"


# --- retries ---------------------------------------------------------------------------------------------------

# A relay that is down or refuses us is retried for a day, as mail servers retry (Postfix: days), at first
# quickly, then every half hour; an email not gone after DELAY_NOTICE_AFTER tells its salesperson once, so they
# can reach the customer another way while it is still being retried.
RETRY_DELAYS = (2, 5, 15, 30, 60, 120, 300, 600, 900, 1800)  # seconds after attempt 1, 2, ...; then the last
GIVE_UP_AFTER = 24 * 3600  # seconds since the first attempt
DELAY_NOTICE_AFTER = 600  # seconds since the first attempt
WAIT_FOR_DOCUMENT = 900  # seconds an email may wait for its PDF before it fails


def retry_delay(attempts: int, seconds_since_first: float) -> float | None:
    """Seconds until the next attempt after `attempts` failed ones, or None when it is time to give up."""
    if attempts < 1:
        return None
    delay = RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1]
    if seconds_since_first + delay > GIVE_UP_AFTER:
        return None
    if seconds_since_first < DELAY_NOTICE_AFTER < seconds_since_first + delay:
        # An attempt at the ten-minute mark, so a failing one tells the salesperson then, not minutes later.
        return max(DELAY_NOTICE_AFTER - seconds_since_first, 1.0)
    return delay


def give_up_at(first_attempt: datetime) -> datetime:
    return first_attempt + timedelta(seconds=GIVE_UP_AFTER)


# Authentication required / too weak / credentials invalid / encryption required: our relay's configuration
# (SMTP_USER, SMTP_PASSWORD, SMTP_STARTTLS), not the email. Retried as for a relay that is down, so the mail
# goes once an operator fixes it.
RELAY_LOGIN_CODES = frozenset({530, 534, 535, 538})


def is_permanent(smtp_code: int | None) -> bool:
    """A 5xx answer will not change on a retry (unknown mailbox, refused sender); 4xx and no answer may, and so
    may a refused login, which is for the operator to fix."""
    return smtp_code is not None and 500 <= smtp_code < 600 and smtp_code not in RELAY_LOGIN_CODES
