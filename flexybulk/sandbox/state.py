"""The sandbox's in-memory Flexybox: customers, sales orders, gift certificates.

No HTTP here. Each public operation takes the parsed JSON body of one call
(numbers as ``int`` or ``decimal.Decimal``, never ``float``), applies the
rules and either returns ``(status, response body)`` or raises
:class:`Refusal`. One lock makes every operation atomic, so concurrent
requests cannot issue a certificate twice.

Where the rules come from: the vendor article
(``shared/seed/000_804ffc5ff5288df9.txt``) gives the calls, the body fields
and "a second post with the same payment id is ignored";
``shared/flexybox-api.md`` part B fixes everything the article leaves open
(status codes, what is refused, idempotency, 409s).
"""

from __future__ import annotations

import re
import threading
from decimal import Decimal
from enum import Enum
from typing import Any

from email_validator import EmailNotValidError, validate_email

from .catalogue import item_field, normalise_catalogue

# The canonical 8-4-4-4-12 form only: the article asks for "a unique Guid",
# and a client that sends another spelling should hear about it here, not
# from the real service.
_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_CURRENCY = re.compile(r"[A-Z]{3}")

# The customer fields of the article's PUT body, in its order.
CUSTOMER_FIELDS = (
    "FullName",
    "BirthDate",
    "Gender",
    "DepartmentId",
    "EmailAddress",
    "PhoneNumber",
    "StreetAddress",
    "PostalDistrict",
    "PostalCode",
    "CountryCode",
)

MAX_QUANTITY = 10_000
"""Largest ``Quantity`` per order line. A sandbox-only guard (the article sets
no limit): issuing runs under the state lock, so a runaway quantity would
stall every other request."""

# Certificate numbers are 12 digits: _FIRST_NUMBER + a counter that survives
# reset(), so a number is never handed out twice by one sandbox.
_FIRST_NUMBER = 100_000_000_000


class OrderStatus(str, Enum):
    """A sales order's ``Status`` in the sandbox's answers."""

    OPEN = "Open"
    COMMITTED = "Committed"


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


def _json_copy(value: Any) -> Any:
    """A deep copy of a JSON value (dicts, lists, and immutable scalars such as ``Decimal``).

    What ``copy.deepcopy`` would return for these shapes, at a fraction of its
    cost: the sandbox copies every answer out of its lock, and its CPU time is
    part of what the issue #4 benchmark measures.
    """
    if isinstance(value, dict):
        return {k: _json_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_copy(v) for v in value]
    return value


def _is_number(value: Any) -> bool:
    """A finite JSON number (``bool`` is not one, although it is an ``int``)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, Decimal):
        return value.is_finite()
    return isinstance(value, int)


def _require_object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Refusal(400, f"The {what} must be a JSON object.")
    return value


def order_key(value: Any) -> str | None:
    """The sales order id in canonical (lower-case) form, or ``None`` if ``value`` is not a GUID."""
    if isinstance(value, str) and _GUID.fullmatch(value):
        return value.lower()
    return None


def _find(items: list[dict[str, Any]], wanted: Any) -> dict[str, Any] | None:
    for item in items:
        if same_json(item_field(item, "Id"), wanted):
            return item
    return None


class SandboxState:
    """Thread-safe state of one sandbox.

    Read it through the snapshot properties (:attr:`customers`,
    :attr:`orders`, :attr:`certificates`, :attr:`requests`) and
    :meth:`counts`; each returns a deep copy taken under the lock, so a test
    can keep it while requests go on.

    Args:
        catalogue: ``{"types": [...], "departments": [...]}`` as in
            :func:`~flexybulk.sandbox.catalogue.default_catalogue`; ``None``
            for the built-in one (``flexybox-api.md`` part D).

    Raises:
        ValueError: from :func:`~flexybulk.sandbox.catalogue.normalise_catalogue`.
    """

    def __init__(self, catalogue: dict[str, Any] | None = None) -> None:
        self._lock = threading.Lock()
        self._catalogue = normalise_catalogue(catalogue)
        self._issued = 0  # certificates ever issued; not cleared by reset()
        self._clear()

    def _clear(self) -> None:
        self._customers: dict[str, dict[str, Any]] = {}
        self._orders: dict[str, dict[str, Any]] = {}
        self._order_bodies: dict[str, dict[str, Any]] = {}  # last accepted PUT body per order
        self._payment_orders: dict[str, str] = {}  # external payment id -> order id
        self._certificates: list[dict[str, Any]] = []
        self._requests: list[tuple[str, str, int | None]] = []

    # -- inspection ---------------------------------------------------------

    def reset(self) -> None:
        """Forget all customers, orders, certificates and logged requests; keep the catalogue.

        Certificate numbers keep counting, so numbers stay unique for the
        sandbox's lifetime.
        """
        with self._lock:
            self._clear()

    def counts(self) -> dict[str, int]:
        """``{"customers": n, "orders": n, "committed_orders": n, "certificates": n}``."""
        with self._lock:
            return self._counts()

    def _counts(self) -> dict[str, int]:
        return {
            "customers": len(self._customers),
            "orders": len(self._orders),
            "committed_orders": sum(o["Status"] == OrderStatus.COMMITTED for o in self._orders.values()),
            "certificates": len(self._certificates),
        }

    @property
    def customers(self) -> dict[str, dict[str, Any]]:
        """Customer id -> ``{"Id": str, "FullName": str, "EmailAddress": str, ...}`` (every
        field of ``CUSTOMER_FIELDS``, ``None`` where not sent)."""
        with self._lock:
            return _json_copy(self._customers)

    @property
    def orders(self) -> dict[str, dict[str, Any]]:
        """Sales order id (lower-case GUID) -> the order as the API answers it (see :meth:`put_order`)."""
        with self._lock:
            return _json_copy(self._orders)

    @property
    def certificates(self) -> list[dict[str, Any]]:
        """Every issued gift certificate, in issuing order: ``{"Number": str (12 digits),
        "SalesOrderId": str, "GiftCertificateTypeId": <as sent>, "Amount": Decimal (one
        unit's price, in Currency), "Currency": str, "CustomerId": str}``."""
        with self._lock:
            return _json_copy(self._certificates)

    @property
    def requests(self) -> list[tuple[str, str, int | None]]:
        """``(method, path, status)`` of every API request, in the order answered.

        ``path`` is without the query string; ``status`` is ``None`` for a
        dropped response. ``/_sandbox/...`` requests are not logged.
        """
        with self._lock:
            return list(self._requests)

    def record_request(self, method: str, path: str, status: int | None) -> None:
        """Log one answered (or dropped) API request."""
        with self._lock:
            self._requests.append((method, path, status))

    def snapshot(self) -> dict[str, Any]:
        """The body of ``GET /_sandbox/state``: ``{"counts": counts(), "certificates": certificates}``."""
        with self._lock:
            return {"counts": self._counts(), "certificates": _json_copy(self._certificates)}

    @property
    def types(self) -> list[dict[str, Any]]:
        """The gift certificate types served by the OData endpoint."""
        return _json_copy(self._catalogue["types"])

    @property
    def departments(self) -> list[dict[str, Any]]:
        """The departments served by ``GET /api/v2/departments``."""
        return _json_copy(self._catalogue["departments"])

    # -- step 1: customers --------------------------------------------------

    def put_customer(self, customer_id: str, body: Any) -> tuple[int, dict[str, Any]]:
        """``PUT /api/v2/customers/{customer_id}``: create (201) or replace (200) a customer.

        Only ``FullName`` and ``EmailAddress`` are required (article); other
        fields are stored as sent, ``None`` when absent.

        Returns:
            ``(201 or 200, {"Id": customer_id, "FullName": ..., "EmailAddress": ..., ...})``.

        Raises:
            Refusal: 400 naming ``FullName`` or ``EmailAddress`` when missing
                or not a non-empty string, or ``EmailAddress`` when malformed
                (part B).
        """
        body = _require_object(body, "request body")
        for name in ("FullName", "EmailAddress"):
            value = body.get(name)
            if not isinstance(value, str) or not value.strip():
                raise Refusal(400, f"{name} is required and must be a non-empty string; got {value!r}.", name)
        email = body["EmailAddress"]
        try:
            validate_email(email, check_deliverability=False)
        except EmailNotValidError as err:
            raise Refusal(400, f"EmailAddress {email!r} is not a valid email address: {err}", "EmailAddress") from None
        customer = {"Id": customer_id, **{name: body.get(name) for name in CUSTOMER_FIELDS}}
        with self._lock:
            created = customer_id not in self._customers
            self._customers[customer_id] = customer
            return (201 if created else 200), _json_copy(customer)

    # -- step 4: sales orders -----------------------------------------------

    def put_order(self, body: Any) -> tuple[int, dict[str, Any]]:
        """``PUT /api/v1/salesorders``: create (201), repeat (200) or update (200) a sales order.

        The same ``Id`` with the same body is accepted again and changes
        nothing; a different body replaces an open order. Bodies are compared
        with :func:`same_json`.

        Returns:
            ``(status, order)``; the order is ``{"Id": str (lower-case GUID),
            "CustomerId": str, "DepartmentId": <as sent>, "Currency": str,
            "DebitMethod": <as sent>, "Status": "Open" | "Committed",
            "Total": Decimal (sum of Quantity x Price), "Lines":
            [{"GiftCertificateTypeId", "Quantity": int, "Price": Decimal | int,
            "Checksum"}], "GiftCertificates": [issued certificates, see
            :meth:`commit_order`], "Payments": [as committed]}``.

        Raises:
            Refusal: 400 for a non-GUID ``Id``, an unknown customer, department
                or gift certificate type (ids compared by value and JSON type),
                an inactive type, an empty ``GiftCertificates.GiftCertificates``,
                ``Quantity`` not an integer >= 1 (or above :data:`MAX_QUANTITY`),
                ``Price`` not a number > 0,
                ``Currency`` not three capital letters; 409 for a different
                body for an already committed order (all part B).
        """
        body = _require_object(body, "request body")
        order_id = order_key(body.get("Id"))
        if order_id is None:
            raise Refusal(
                400,
                f"Id must be a GUID such as 3f2504e0-4f89-11d3-9a0c-0305e82c3301; got {body.get('Id')!r}.",
                "Id",
            )
        with self._lock:
            existing = self._orders.get(order_id)
            if existing is not None and same_json(self._order_bodies[order_id], body):
                return 200, _json_copy(existing)
            if existing is not None and existing["Status"] == OrderStatus.COMMITTED:
                raise Refusal(409, f"Sales order {order_id} is already committed; its content cannot be changed.")
            order = self._build_order(order_id, body)
            self._orders[order_id] = order
            self._order_bodies[order_id] = _json_copy(body)
            return (201 if existing is None else 200), _json_copy(order)

    def _build_order(self, order_id: str, body: dict[str, Any]) -> dict[str, Any]:
        customer_id = body.get("CustomerId")
        if not isinstance(customer_id, str) or customer_id not in self._customers:
            raise Refusal(
                400,
                f"CustomerId {customer_id!r} is not a known customer; "
                "create it with PUT /api/v2/customers/{id} first.",
                "CustomerId",
            )
        department_id = body.get("DepartmentId")
        if _find(self._catalogue["departments"], department_id) is None:
            raise Refusal(
                400,
                f"DepartmentId {department_id!r} is not a known department (send the id back exactly "
                "as GET /api/v2/departments gives it, JSON type included).",
                "DepartmentId",
            )
        currency = body.get("Currency")
        if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
            raise Refusal(400, f"Currency must be a three-letter code such as DKK; got {currency!r}.", "Currency")
        lines = self._build_lines(body.get("GiftCertificates"))
        return {
            "Id": order_id,
            "CustomerId": customer_id,
            "DepartmentId": department_id,
            "Currency": currency,
            "DebitMethod": body.get("DebitMethod"),
            "Status": OrderStatus.OPEN.value,
            "Total": sum((Decimal(line["Quantity"]) * line["Price"] for line in lines), Decimal(0)),
            "Lines": lines,
            "GiftCertificates": [],
            "Payments": [],
        }

    def _build_lines(self, wrapper: Any) -> list[dict[str, Any]]:
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
            gift_type = _find(self._catalogue["types"], type_id)
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
            if not _is_number(price) or price <= 0:
                raise Refusal(400, f"Price must be a number greater than 0; got {price!r}.", f"{at}.Price")
            lines.append(
                {
                    "GiftCertificateTypeId": type_id,
                    "Quantity": quantity,
                    "Price": price,
                    "Checksum": raw.get("Checksum"),
                }
            )
        return lines

    # -- step 5: commit -----------------------------------------------------

    def commit_order(self, order_id_text: str, body: Any) -> tuple[int, dict[str, Any]]:
        """``POST /api/v1/salesorders/{order_id_text}/commit``: pay and issue the certificates.

        The first commit issues one gift certificate per unit of quantity and
        marks the order committed. A repeat whose payment ids were all
        recorded by that commit is ignored (article: "duplicate posts with the
        same Id will be ignored") and answers the same committed order.

        Returns:
            ``(200, order)`` as in :meth:`put_order`, with ``"Status":
            "Committed"``, ``"GiftCertificates": [{"Number": str,
            "GiftCertificateTypeId": <as sent>, "Amount": <one unit's Price>}]``
            and ``"Payments"`` as posted.

        Raises:
            Refusal: 404 for an unknown order; 400 for missing or malformed
                ``Payments`` (no ``ExternalPayment.Id``, a non-numeric
                ``Amount``, one id twice) or payments that do not add up to
                the order total; 409 for a new payment id on a committed
                order, or a payment id already used on another order (part B).
        """
        order_id = order_key(order_id_text)
        with self._lock:
            order = self._orders.get(order_id) if order_id is not None else None
            if order is None:
                raise Refusal(
                    404,
                    f"Sales order {order_id_text!r} does not exist; create it with PUT /api/v1/salesorders first.",
                )
            payments = _payments(body)
            payment_ids = [p["ExternalPayment"]["Id"] for p in payments]
            if order["Status"] == OrderStatus.COMMITTED:
                committed_ids = {p["ExternalPayment"]["Id"] for p in order["Payments"]}
                if set(payment_ids) <= committed_ids:
                    return 200, _json_copy(order)
                raise Refusal(
                    409,
                    f"Sales order {order_id} is already committed with payment id(s) {sorted(committed_ids)}; "
                    "a different payment cannot be added.",
                )
            for payment_id in payment_ids:
                other = self._payment_orders.get(payment_id)
                if other is not None:
                    raise Refusal(
                        409,
                        f"External payment id {payment_id!r} was already used for sales order {other}; "
                        "payment ids must be unique per order.",
                    )
            paid = sum((p["ExternalPayment"]["Amount"] for p in payments), Decimal(0))
            if paid != order["Total"]:
                raise Refusal(
                    400,
                    f"The payments add up to {paid} but the sales order total is {order['Total']} {order['Currency']}.",
                    "Payments",
                )
            self._issue(order)
            order["Status"] = OrderStatus.COMMITTED.value
            order["Payments"] = payments
            for payment_id in payment_ids:
                self._payment_orders[payment_id] = order_id
            return 200, _json_copy(order)

    def _issue(self, order: dict[str, Any]) -> None:
        for line in order["Lines"]:
            for _ in range(line["Quantity"]):
                self._issued += 1
                number = str(_FIRST_NUMBER + self._issued)
                order["GiftCertificates"].append(
                    {"Number": number, "GiftCertificateTypeId": line["GiftCertificateTypeId"], "Amount": line["Price"]}
                )
                self._certificates.append(
                    {
                        "Number": number,
                        "SalesOrderId": order["Id"],
                        "GiftCertificateTypeId": line["GiftCertificateTypeId"],
                        "Amount": Decimal(line["Price"]),
                        "Currency": order["Currency"],
                        "CustomerId": order["CustomerId"],
                    }
                )


def _payments(body: Any) -> list[dict[str, Any]]:
    """The commit body's ``Payments``, checked; raises :class:`Refusal` (400)."""
    body = _require_object(body, "request body")
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
        if not _is_number(external.get("Amount")):
            raise Refusal(
                400,
                f"{at}.ExternalPayment.Amount must be a number; got {external.get('Amount')!r}.",
                f"{at}.ExternalPayment.Amount",
            )
    return _json_copy(payments)
