"""What the sandbox refuses in a request body: part B's checks and the catalogue's rules.

No state and no lock here: each check takes parsed JSON (numbers as ``int``
or ``decimal.Decimal``) and returns the checked value or raises
:class:`Refusal`; :mod:`.state` applies them under its lock. Where the rules
come from: ``shared/flexybox-api.md`` part B (status codes, what is refused)
and, for ``IsActive`` and ``MaxPrice``, the plausible catalogue fields part B
allows (:mod:`.catalogue`).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from .catalogue import item_field

# The canonical 8-4-4-4-12 form only: the article asks for "a unique Guid",
# and a client that sends another spelling should hear about it here, not
# from the real service.
_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
CURRENCY = re.compile(r"[A-Z]{3}")  # a sales order's Currency: three capital letters (part B)

MAX_QUANTITY = 10_000
"""Largest ``Quantity`` per order line. A sandbox-only guard (the article sets
no limit): issuing runs under the state lock, so a runaway quantity would
stall every other request."""


class Refusal(Exception):
    """A call the sandbox refuses: the HTTP status and the JSON error body.

    Attributes:
        status: 400, 404 or 409 (the server layer adds 401, 405, 415, ...).
        message: plain words naming the problem and the offending value.
        field: the request field at fault (``"EmailAddress"``,
            ``"GiftCertificates.GiftCertificates[0].Quantity"``), or ``None``.
    """

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field

    def body(self) -> dict[str, str]:
        """``{"Message": ..., "Field": ...}``; ``Field`` only when one field is at fault."""
        body = {"Message": self.message}
        if self.field is not None:
            body["Field"] = self.field
        return body


def same_json(a: Any, b: Any) -> bool:
    """True when two parsed JSON values are equal *and* of the same types throughout.

    Ids are opaque (part D): department ``"1"`` is not department ``1``, and
    ``true`` is not ``1`` although Python says ``True == 1``. Bodies are
    compared the same way to decide whether a repeated PUT is "the same".
    """
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_json(a[key], b[key]) for key in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b))
    return a == b


def json_copy(value: Any) -> Any:
    """A deep copy of a JSON value (dicts, lists, and immutable scalars such as ``Decimal``).

    What ``copy.deepcopy`` would return for these shapes, at a fraction of its
    cost: the sandbox copies every answer out of its lock, and its CPU time is
    part of what the issue #4 benchmark measures.
    """
    if isinstance(value, dict):
        return {k: json_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_copy(v) for v in value]
    return value


def is_number(value: Any) -> bool:
    """A finite JSON number (``bool`` is not one, although it is an ``int``)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, Decimal):
        return value.is_finite()
    return isinstance(value, int)


def require_object(value: Any, what: str) -> dict[str, Any]:
    """``value`` if it is a JSON object; else raises :class:`Refusal` (400) naming ``what``."""
    if not isinstance(value, dict):
        raise Refusal(400, f"The {what} must be a JSON object.")
    return value


def order_key(value: Any) -> str | None:
    """The sales order id in canonical (lower-case) form, or ``None`` if ``value`` is not a GUID."""
    if isinstance(value, str) and _GUID.fullmatch(value):
        return value.lower()
    return None


def find_item(items: list[dict[str, Any]], wanted: Any) -> dict[str, Any] | None:
    """The catalogue item whose ``Id`` is ``wanted`` by value and JSON type (:func:`same_json`), or ``None``."""
    for item in items:
        if same_json(item_field(item, "Id"), wanted):
            return item
    return None


def check_lines(types: list[dict[str, Any]], wrapper: Any) -> list[dict[str, Any]]:
    """The order lines of a sales order body's ``GiftCertificates`` wrapper, checked against the gift certificate ``types``.

    Returns ``[{"GiftCertificateTypeId", "Quantity": int, "Price", "Checksum"}, ...]``.

    Raises:
        Refusal: 400 naming the line's field: no lines, an unknown or
            inactive type, ``Quantity`` not a whole number from 1 to
            :data:`MAX_QUANTITY`, ``Price`` not a number > 0 or above the
            type's ``MaxPrice``.
    """
    field = "GiftCertificates.GiftCertificates"
    raw_lines = wrapper.get("GiftCertificates") if isinstance(wrapper, dict) else None
    if not isinstance(raw_lines, list) or not raw_lines:
        raise Refusal(400, f"{field} must be a non-empty list of order lines.", field)
    lines = []
    for index, raw in enumerate(raw_lines):
        at = f"{field}[{index}]"
        if not isinstance(raw, dict):
            raise Refusal(400, f"{at} must be a JSON object.", at)
        type_id = raw.get("GiftCertificateTypeId")
        gift_type = find_item(types, type_id)
        if gift_type is None:
            raise Refusal(
                400,
                f"GiftCertificateTypeId {type_id!r} is not a known gift certificate type "
                "(see GET /api/v1/odata/giftcertificatetypes).",
                f"{at}.GiftCertificateTypeId",
            )
        # A plausible real-world rule for the IsActive flag the catalogue carries.
        if item_field(gift_type, "IsActive") is False:
            raise Refusal(400, f"Gift certificate type {type_id!r} is not active.", f"{at}.GiftCertificateTypeId")
        quantity = raw.get("Quantity")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= MAX_QUANTITY:
            raise Refusal(
                400,
                f"Quantity must be a whole number from 1 to {MAX_QUANTITY}; got {quantity!r}.",
                f"{at}.Quantity",
            )
        price = raw.get("Price")
        if not is_number(price) or price <= 0:
            raise Refusal(400, f"Price must be a number greater than 0; got {price!r}.", f"{at}.Price")
        # Another plausible rule (part B allows the sandbox such fields): a type's maximum price.
        max_price = item_field(gift_type, "MaxPrice")
        if max_price is not None and price > max_price:
            name = item_field(gift_type, "Name")
            raise Refusal(
                400,
                f"Price {price} is above the maximum price {max_price} of gift certificate type {name!r}.",
                f"{at}.Price",
            )
        lines.append(
            {
                "GiftCertificateTypeId": type_id,
                "Quantity": quantity,
                "Price": price,
                "Checksum": raw.get("Checksum"),
            }
        )
    return lines


def check_payments(body: Any) -> list[dict[str, Any]]:
    """The commit body's ``Payments``, checked; raises :class:`Refusal` (400)."""
    body = require_object(body, "request body")
    payments = body.get("Payments")
    if not isinstance(payments, list) or not payments:
        raise Refusal(400, "Payments must be a non-empty list.", "Payments")
    seen: set[str] = set()
    for index, payment in enumerate(payments):
        at = f"Payments[{index}]"
        external = payment.get("ExternalPayment") if isinstance(payment, dict) else None
        if not isinstance(external, dict):
            raise Refusal(
                400,
                f"{at}.ExternalPayment must be a JSON object with Id, Type and Amount.",
                f"{at}.ExternalPayment",
            )
        payment_id = external.get("Id")
        if not isinstance(payment_id, str) or not payment_id.strip():
            raise Refusal(
                400,
                f"{at}.ExternalPayment.Id is required and must be a non-empty string; got {payment_id!r}.",
                f"{at}.ExternalPayment.Id",
            )
        if payment_id in seen:
            raise Refusal(
                400,
                f"External payment id {payment_id!r} appears twice in one commit.",
                f"{at}.ExternalPayment.Id",
            )
        seen.add(payment_id)
        if not is_number(external.get("Amount")):
            raise Refusal(
                400,
                f"{at}.ExternalPayment.Amount must be a number; got {external.get('Amount')!r}.",
                f"{at}.ExternalPayment.Amount",
            )
    return json_copy(payments)
