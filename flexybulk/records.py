"""What a ledger row's recorded content means: its total, its fingerprint, its words, the money of many rows.

Shared by planning, the runner, the result sheet and the faces, so that a
row is described and added up in one way only. Money is ``Decimal``; a
recorded content keeps the price as text (``"250.00"``).
"""

from __future__ import annotations

from decimal import Decimal
from operator import attrgetter, itemgetter
from typing import Any

from .journal import RowRecord, Step
from .model import Order, RowProblem, RowStatus
from .validate import Totals, fingerprint


def order_content(order: Order) -> dict:
    """The JSON-able content of an order as the ledger records it (money as text)."""
    return {
        "name": order.name,
        "email": order.email,
        "type_id": order.type.id,
        "type_name": order.type.name,
        "department_id": order.department.id,
        "department_name": order.department.name,
        "price": str(order.price),
        "quantity": order.quantity,
        "currency": order.currency,
        "country": order.country,
        "phone": order.phone,
        "address": order.address,
        "postal_code": order.postal_code,
        "city": order.city,
    }


def content_total(content: dict) -> Decimal:
    """Quantity x price of a recorded order content, as ``Decimal``."""
    return Decimal(content["price"]) * int(content["quantity"])


def issued_totals(records: Any) -> Totals:
    """Rows, certificates and money (per currency, ``Decimal``) of the ISSUED ledger rows among ``records``."""
    totals = Totals()
    for r in records:
        if r.status == RowStatus.ISSUED and r.content:
            totals.add_line(r.content["currency"], Decimal(r.content["price"]), int(r.content["quantity"]))
    return totals


def content_fingerprint(content: dict) -> str:
    """:func:`~flexybulk.validate.fingerprint` of a recorded order content."""
    return fingerprint(content["email"], content["type_id"], content["department_id"], Decimal(content["price"]),
                       int(content["quantity"]), content["currency"])


# order_content's fields (flexybulk.records), price aside: compared as a tuple, without building the dict.
_CONTENT_KEYS = ("name", "email", "type_id", "type_name", "department_id", "department_name", "quantity", "currency",
                 "country", "phone", "address", "postal_code", "city")
_content_values = itemgetter(*_CONTENT_KEYS)
_order_values = attrgetter("name", "email", "type.id", "type.name", "department.id", "department.name", "quantity",
                           "currency", "country", "phone", "address", "postal_code", "city")
_CONTENT_SIZE = len(_CONTENT_KEYS) + 1  # and the price


def same_content(order: Any, content: dict) -> bool:
    """``order_content(order) == content``, without building the dict: a result sheet asks it of every ISSUED row.

    ``order`` is a :class:`~flexybulk.model.Order`; ``content`` a ledger row's
    recorded content. tests/test_results.py checks it against ``order_content``.
    """
    if len(content) != _CONTENT_SIZE:
        return False
    try:
        return content["price"] == str(order.price) and _content_values(content) == _order_values(order)
    except KeyError:
        return False


def edited_since(order: Any, content: dict | None) -> bool:
    """True when a line that was issued as ``content`` (a ledger row's) now says something else, or is invalid
    (``order`` ``None``): its edits are never sent (issue #3)."""
    return bool(content) and (order is None or not same_content(order, content))


def describe_content(content: dict) -> str:
    """``"Anna Hansen, anna@example.com, 2 × 250.00 DKK Gavekort, Webshop"``: what an order issues, in one line."""
    price = Decimal(content["price"]).quantize(Decimal("0.01"))
    return (f"{content['name']}, {content['email']}, {content['quantity']} × {price} {content['currency']} "
            f"{content['type_name']}, {content['department_name']}")


def order_from_content(content: dict, row: int) -> Order:
    """The :class:`~flexybulk.model.Order` a recorded content stands for (money as ``Decimal``; ids as recorded)."""
    from .model import CatalogueItem

    return Order(row=row, name=content["name"], email=content["email"],
                 type=CatalogueItem(content["type_id"], content["type_name"]),
                 department=CatalogueItem(content["department_id"], content["department_name"]),
                 price=Decimal(content["price"]), quantity=int(content["quantity"]), currency=content["currency"],
                 country=content.get("country") or "", phone=content.get("phone"), address=content.get("address"),
                 postal_code=content.get("postal_code"), city=content.get("city"))


def excluded_text(reason: str) -> str:
    """What the ledger and the result sheet say of a row the person left out (``InputRow.excluded``, issue #12)."""
    return f"Not issued: the row is {reason} in the sheet. Unhide it and run again, or use --include-hidden, to issue it."


def describe_line(content: dict) -> str:
    """``"2 × 250.00 DKK Gavekort, Webshop"``: what an order issues and where, in one phrase."""
    price = Decimal(content["price"]).quantize(Decimal("0.01"))
    return f"{content['quantity']} × {price} {content['currency']} {content['type_name']}, {content['department_name']}"


def row_state_text(rec: RowRecord) -> str:
    """What an unfinished row's ledger record means, in plain words (its error, else its step)."""
    if rec.error:
        return rec.error
    one = bool(rec.content) and int(rec.content.get("quantity") or 0) == 1
    return {
        Step.PLANNED: "not sent yet.",
        Step.CUSTOMER: "interrupted while saving the customer; no gift certificate can have been issued. A rerun finishes it with the same ids.",
        Step.ORDER: "interrupted while saving the sales order; no gift certificate can have been issued. A rerun finishes it with the same ids.",
        Step.COMMIT: (f"interrupted while committing: the gift certificate{'' if one else 's'} may or may not exist. A rerun "
                      "settles it with the same payment id, so it cannot issue twice."),
    }.get(rec.step, "not finished.")


def problems_text(problems: list[RowProblem]) -> str:
    """All of a row's problems in one cell: ``"E-mail (B): ...; Beløb (F): ..."``."""
    parts = []
    for p in problems:
        where = p.column or "row"
        if p.column_letter:
            where += f" ({p.column_letter})"
        parts.append(f"{where}: {p.message}")
    return "; ".join(parts)


def same_words(records: Any) -> list[tuple[RowStatus, str, list[int]]]:
    """Unfinished ledger rows grouped by status and :func:`row_state_text`, in order of first appearance.

    ``[(status, text, [row numbers]), ...]``: rows that met the same trouble
    (Flexybox unreachable for seven rows) are one entry, so a face says it
    once with its rows (issue #13). Row texts carry no ids where the trouble
    is the same (see :mod:`.outcome`), so they really do read alike.
    """
    groups: dict[tuple[RowStatus, str], list[int]] = {}
    for r in records:
        groups.setdefault((r.status, row_state_text(r)), []).append(r.row_number)
    return [(status, text, numbers) for (status, text), numbers in groups.items()]


def row_ranges(numbers: list[int], *, limit: int = 20) -> str:
    """``[2, 3, 4, 5, 9, 11, 12]`` -> ``"2-5, 9, 11-12"``; past ``limit`` ranges, ``"…, and 40 more rows"``."""
    spans: list[list[int]] = []
    for n in sorted(set(numbers)):
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    shown = [str(a) if a == b else f"{a}-{b}" for a, b in spans[:limit]]
    rest = sum(b - a + 1 for a, b in spans[limit:])
    return ", ".join(shown) + (f", and {rest:,} more row{'' if rest == 1 else 's'}" if rest else "")

