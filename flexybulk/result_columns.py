"""The Result sheet's columns, made from the checks of the input and the ledger's record of each row.

:func:`result_columns` gives one list per column (the shape
:class:`~flexybulk.output_sheet.OutputRows` keeps), the rows that need
attention and the money issued per (type, department, currency).

Moved out of :mod:`flexybulk.results` (the row loop is the longest part of the
result sheet's building); tests/test_result_columns.py checks each case's values.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Sequence

from .journal import Step
from .model import RowStatus
from .records import describe_content, edited_since, excluded_text, problems_text
from .validate import DEFAULT_CURRENCY

COLUMNS = ("Status", "Error", "AmountRead", "LineTotal", "CustomerId", "SalesOrderId", "ExternalPaymentId",
           "GiftCertificateNumbers", "IssuedAt")
"""The columns :func:`result_columns` fills (besides ``currencies``, the currency of each row's amounts)."""


class ResultColumns:
    """What :func:`result_columns` makes.

    ``columns``: a name of :data:`COLUMNS` -> one value per row;
    ``currencies``: each row's currency (of AmountRead and LineTotal);
    ``attention``: the "Needs attention" lines (Row, Status, Who, What to do,
    Details), in row order; ``issued``: ``(type name, department name,
    currency)`` -> ``[rows, gift certificates, money]`` of the ISSUED rows.
    """

    def __init__(self, columns: dict[str, list], currencies: list, attention: list, issued: dict) -> None:
        self.columns, self.currencies, self.attention, self.issued = columns, currencies, attention, issued


def result_columns(checks: Sequence[Any], recs: Sequence[Any], to_do: dict[str, str]) -> ResultColumns:
    """The Result sheet's columns for ``checks`` (the validation's, in row order) and ``recs`` (each row's
    :class:`~flexybulk.journal.RowRecord`, or ``None`` for a row the ledger does not have).

    ``to_do``: what a person does, by status value ("Needs attention").
    AmountRead and LineTotal are what was issued (ISSUED rows: the ledger's
    content), what will be settled for a row whose commit may have gone
    through (its ``commit_content``, whatever the line says now), else what
    the row says. Raises nothing of its own.

    One pass, each row's objects touched once: a column at a time with
    C-level passes was measured slower (each pass over 100,000 cold records
    and dicts costs its cache misses again).
    """
    attention: list[Sequence[Any]] = []
    issued: dict = {}
    prices: dict[str, Decimal] = {}
    moments: dict[str, datetime] = {}
    ISSUED, INVALID, PENDING, EXCLUDED = RowStatus.ISSUED, RowStatus.INVALID, RowStatus.PENDING, RowStatus.EXCLUDED
    PLANNED = Step.PLANNED
    needs_attention = tuple(s for s in RowStatus if s.needs_attention)  # a tuple: compared by identity first
    statuses, errors, amounts, totals, currencies, customers, orders, payments, certificates, moments_at = (
        [] for _ in range(10))
    add_status, add_error, add_amount, add_total = statuses.append, errors.append, amounts.append, totals.append
    add_currency = currencies.append
    add_customer, add_order, add_payment = customers.append, orders.append, payments.append
    add_certificates, add_moment = certificates.append, moments_at.append
    for c, rec in zip(checks, recs):
        order = c.order
        if rec is None:
            status, error = PENDING, None
        else:  # written after the run: a row still at its commit is one whose answer never came (UNKNOWN)
            status, error = rec.known_status, rec.error
        if status is not ISSUED:
            if c.excluded:
                status, error = EXCLUDED, excluded_text(c.excluded)
            elif order is None:
                status, error = INVALID, problems_text(c.problems)
            content = None
            # A commit that may have gone through is settled exactly as sent (planning.decide_rows): its money.
            doubt = rec.commit_content if rec is not None and rec.commit_may_have_happened else None
        else:
            content, doubt = rec.content, None  # an ISSUED status is the ledger's: rec is there
        edited = False
        if content:
            if edited_since(order, content):
                # The line was edited after the issue (or a rerun used an older copy): say what was really issued.
                note = (f"Issued as: {describe_content(content)}. The values on this line differ and were not applied: "
                        "an issued row is never sent again.")
                error = f"{error} {note}" if error and note not in error else note
                edited = True
            text = content["price"]
            price = prices.get(text)
            if price is None:
                price = prices[text] = Decimal(text)
            quantity, currency = int(content["quantity"]), content["currency"]
            total = price * quantity
            key = (content["type_name"], content["department_name"], currency)
            entry = issued.get(key)  # tally, inline: once per row
            if entry is None:
                entry = issued[key] = [0, 0, Decimal(0)]
            entry[0] += 1
            entry[1] += quantity
            entry[2] += total
            add_amount(price)
            add_total(total if price.is_finite() else None)
        elif doubt:
            price, quantity, currency = Decimal(doubt["price"]), int(doubt["quantity"]), doubt["currency"]
            add_amount(price)
            add_total(price * quantity if price.is_finite() else None)
        elif order is not None:
            price, currency = order.price, order.currency
            add_amount(price)
            add_total(price * order.quantity)
        else:
            fields = c.row.fields
            currency = str(fields.get("currency") or DEFAULT_CURRENCY).upper()
            amount, line_total = typed_amounts(fields.get("amount"), fields.get("quantity"))
            add_amount(amount)
            add_total(line_total)
        add_currency(currency)
        add_status(status)
        add_error(error)
        if status in needs_attention or edited:
            attention.append([c.row.number, status, who(c.row.fields, rec.content if rec else None),
                              to_do.get(status.value, ""), error])
        if rec is None:
            add_customer(None)
            add_order(None)
            add_payment(None)
            add_certificates(None)
            add_moment(None)
            continue
        # Ids are shown for every row that has them in use; only a row never sent and now invalid has none to show.
        if (status is INVALID or status is EXCLUDED) and rec.step == PLANNED:
            add_customer(None)
            add_order(None)
            add_payment(None)
        else:
            add_customer(rec.customer_id)
            add_order(rec.sales_order_id)
            add_payment(rec.payment_id)
        add_certificates(", ".join(rec.certificate_numbers) if rec.certificate_numbers else None)
        moment = rec.issued_at
        if moment:
            issued_at = moments.get(moment)
            if issued_at is None:  # rows issued in the same second share one
                issued_at = moments[moment] = datetime.fromisoformat(moment).astimezone()
            add_moment(issued_at)
        else:
            add_moment(None)
    columns = {"Status": statuses, "Error": errors, "AmountRead": amounts, "LineTotal": totals,
               "CustomerId": customers, "SalesOrderId": orders, "ExternalPaymentId": payments,
               "GiftCertificateNumbers": certificates, "IssuedAt": moments_at}
    return ResultColumns(columns, currencies, attention, issued)


def typed_amounts(price: Any, quantity: Any) -> tuple[Decimal | None, Decimal | None]:
    """AmountRead and LineTotal amounts for a price (``Decimal``) and a quantity (``int``), either possibly missing."""
    if not isinstance(price, Decimal):
        return None, None
    if isinstance(quantity, int) and not isinstance(quantity, bool) and price.is_finite():
        return price, price * quantity
    return price, None


def who(fields: dict[str, Any], content: dict | None = None) -> str | None:
    """"Name, email" of a row for "Needs attention": from the recorded ``content`` if any, else the row's fields."""
    source = content or fields
    parts = [str(source[k]) for k in ("name", "email") if source.get(k)]
    return ", ".join(parts) or None
