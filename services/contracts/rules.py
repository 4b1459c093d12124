"""Contract rules free of any framework: the state machine and what each state allows."""
from __future__ import annotations

from crmkit.errors import Conflict, a_or_an

TRANSITIONS = {
    "draft": {"confirmed", "cancelled"},
    "confirmed": {"partially_delivered", "delivered", "cancelled"},
    "partially_delivered": {"delivered"},
    "delivered": {"completed"},
    "completed": set(),
    "cancelled": set(),
}


def can_move(current: str, target: str) -> bool:
    return target in TRANSITIONS.get(current, set())


def require_move(current: str, target: str, what: str = "contract") -> None:
    if not can_move(current, target):
        raise Conflict(f"{a_or_an(current)} {what} cannot become {target}.", {"status": [f"Is {current}."]})


def require_editable(status: str) -> None:
    if status != "draft":
        raise Conflict(f"Only a draft contract can be changed; this one is {status}.", {"status": [f"Is {status}."]})


def delivery_status(quantities: list[tuple]) -> str:
    """partially_delivered or delivered from (contracted, delivered) pairs."""
    return "delivered" if all(delivered >= contracted for contracted, delivered in quantities) else \
        "partially_delivered"
