"""Static vocabulary of the simulated Conduit world: agents, dispositions, errors, tools, replies.

Every table here is plain data plus tiny factories that draw from a caller's `random.Random`, so
the world stays deterministic for a given seed.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from typing import Any

AGENT_PROFILES: tuple[tuple[str, str], ...] = (
    ("Support Concierge", "Answers guest questions about stays, check-in and house rules."),
    ("Billing Helper", "Explains charges, issues refunds within policy and updates invoices."),
    ("Booking Assistant", "Checks availability, changes dates and confirms reservations."),
    ("Reviews Responder", "Drafts replies to new guest reviews for operator approval."),
    ("Maintenance Triage", "Collects details on maintenance issues and opens tickets."),
    ("Upsell Advisor", "Offers early check-in, late check-out and add-ons to guests."),
)

# (disposition, weight) for completed runs; None is a terminal run the agent never labelled.
COMPLETED_DISPOSITIONS: tuple[tuple[str | None, float], ...] = (
    ("resolved", 0.58),
    ("escalated", 0.10),
    ("escalation_and_answer", 0.08),
    ("unresolved", 0.07),
    ("no_op", 0.07),
    ("proactive", 0.05),
    (None, 0.05),
)
FAILED_DISPOSITIONS: tuple[tuple[str | None, float], ...] = (
    (None, 0.65),
    ("unresolved", 0.20),
    ("escalated", 0.15),
)

DISPOSITION_REASONS: dict[str, tuple[str, ...]] = {
    "resolved": ("answered_from_knowledge", "booking_confirmed", "refund_issued", "info_provided"),
    "escalated": ("needs_human_review", "policy_exception", "angry_guest", "payment_dispute"),
    "escalation_and_answer": ("answered_and_flagged", "partial_answer_escalated"),
    "unresolved": ("missing_information", "tool_unavailable", "out_of_scope"),
    "no_op": ("no_reply_needed", "duplicate_message", "automated_sender"),
    "proactive": ("pre_arrival_message", "checkout_reminder", "review_request"),
}

RESPONSES: dict[str, tuple[str, ...]] = {
    "resolved": (
        "You're all set, your reservation is confirmed. Let me know if you need anything else!",
        "Check-in is from 3pm; the door code will be sent on the morning of your arrival.",
        "I've issued the refund; it should reach your card within 5-7 business days.",
    ),
    "escalation_and_answer": (
        "I've passed this to our team, who will get back to you shortly. Meanwhile, wifi details "
        "are in the welcome guide.",
    ),
    "unresolved": ("I'm sorry, I couldn't find that information. Could you share more details?",),
    "proactive": (
        "Hi! Just a reminder that check-out is at 11am tomorrow. Safe travels!",
        "Your stay starts in two days. Reply here if you need anything before arrival.",
    ),
}

REFLECTIONS: tuple[str, ...] = (
    "Contact asked to confirm their booking. The reservation lookup returned an active booking, "
    "so I confirmed it directly instead of escalating.",
    "The question was covered by the knowledge base article on check-in, so I answered from it.",
    "The refund request exceeded the auto-approval limit, so I escalated to a human operator.",
    "The message was an automated notification that needs no reply.",
    "The guest reported a broken heater; I opened a maintenance ticket and informed them.",
)

RUN_ERRORS: tuple[str, ...] = (
    "Model provider timed out after 30s",
    "Tool call failed: upstream service returned 502",
    "Context length exceeded: 131072 tokens",
    "Agent run cancelled: conversation was closed",
    "Rate limited by model provider",
)

TOOL_ERRORS: tuple[str, ...] = (
    "upstream timeout",
    "permission denied for this workspace",
    "record not found",
    "integration returned HTTP 502",
)

ToolFactory = Callable[[random.Random, dt.date], dict[str, Any]]


def _ref(rng: random.Random, prefix: str, digits: int = 6) -> str:
    return prefix + "".join(rng.choice("0123456789") for _ in range(digits))


def _day(base: dt.date, rng: random.Random) -> str:
    return (base + dt.timedelta(days=rng.randint(0, 60))).isoformat()


def _get_reservation(rng: random.Random, base: dt.date) -> dict[str, Any]:
    return {"reservation_id": _ref(rng, "res_")}


def _reservation(rng: random.Random, base: dt.date) -> dict[str, Any]:
    status = rng.choice(("confirmed", "confirmed", "pending", "cancelled"))
    return {"status": status, "check_in": _day(base, rng), "guests": rng.randint(1, 6)}


def _search_kb(rng: random.Random, base: dt.date) -> dict[str, Any]:
    topics = ("check-in time", "parking", "wifi password", "pet policy", "late checkout")
    return {"query": rng.choice(topics), "limit": 5}


def _kb_hits(rng: random.Random, base: dt.date) -> dict[str, Any]:
    hits = [
        {"node_id": _ref(rng, "kb_"), "score": round(rng.uniform(0.4, 0.99), 3)}
        for _ in range(rng.randint(0, 3))
    ]
    return {"results": hits}


def _lookup_contact(rng: random.Random, base: dt.date) -> dict[str, Any]:
    return {"email": "guest" + _ref(rng, "", 4) + "@example.com"}


def _contact(rng: random.Random, base: dt.date) -> dict[str, Any]:
    return {"contact_id": _ref(rng, "co_"), "name": rng.choice(("Ana", "Ben", "Chloe", "Dev"))}


def _create_ticket(rng: random.Random, base: dt.date) -> dict[str, Any]:
    return {"subject": "Guest request", "priority": rng.choice(("low", "normal", "high"))}


def _ticket(rng: random.Random, base: dt.date) -> dict[str, Any]:
    return {"ticket_id": _ref(rng, "tk_"), "status": "open"}


def _send_email(rng: random.Random, base: dt.date) -> dict[str, Any]:
    return {"to": "guest@example.com", "template": rng.choice(("welcome", "receipt", "reminder"))}


def _email_sent(rng: random.Random, base: dt.date) -> dict[str, Any]:
    return {"message_id": _ref(rng, "msg_"), "accepted": True}


def _check_availability(rng: random.Random, base: dt.date) -> dict[str, Any]:
    return {"listing_id": _ref(rng, "lst_"), "start": _day(base, rng), "nights": rng.randint(1, 7)}


def _availability(rng: random.Random, base: dt.date) -> dict[str, Any]:
    return {"available": rng.random() < 0.7, "nightly_rate": round(rng.uniform(80, 400), 2)}


def _update_booking(rng: random.Random, base: dt.date) -> dict[str, Any]:
    return {"reservation_id": _ref(rng, "res_"), "changes": {"check_in": _day(base, rng)}}


def _booking_updated(rng: random.Random, base: dt.date) -> dict[str, Any]:
    return {"status": "updated"}


def _issue_refund(rng: random.Random, base: dt.date) -> dict[str, Any]:
    amount = round(rng.uniform(10, 300), 2)
    return {"reservation_id": _ref(rng, "res_"), "amount": amount, "currency": "USD"}


def _refund(rng: random.Random, base: dt.date) -> dict[str, Any]:
    return {"refund_id": _ref(rng, "rf_"), "status": "pending"}


TOOLS: dict[str, tuple[ToolFactory, ToolFactory]] = {
    "get_reservation": (_get_reservation, _reservation),
    "search_knowledge_base": (_search_kb, _kb_hits),
    "lookup_contact": (_lookup_contact, _contact),
    "create_ticket": (_create_ticket, _ticket),
    "send_email": (_send_email, _email_sent),
    "check_availability": (_check_availability, _availability),
    "update_booking": (_update_booking, _booking_updated),
    "issue_refund": (_issue_refund, _refund),
}
TOOL_NAMES: tuple[str, ...] = tuple(TOOLS)


def weighted(rng: random.Random, table: tuple[tuple[str | None, float], ...]) -> str | None:
    """Draw one value from a `(value, weight)` table."""
    values = [value for value, _ in table]
    weights = [weight for _, weight in table]
    return rng.choices(values, weights=weights)[0]


def tool_step(rng: random.Random, base: dt.date, failed: bool) -> dict[str, Any]:
    """Draw one `{name, input, output}` tool step; a failed step's output is `{"error": ...}`."""
    name = rng.choice(TOOL_NAMES)
    make_input, make_output = TOOLS[name]
    step_input = make_input(rng, base)
    output = {"error": rng.choice(TOOL_ERRORS)} if failed else make_output(rng, base)
    return {"name": name, "input": step_input, "output": output}
