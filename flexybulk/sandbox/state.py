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
(status codes, what is refused, idempotency, 409s). The checks of a body
itself live in :mod:`.rules`; this module keeps the state and the rules that
depend on it (known customers, committed orders, used payment ids).
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from enum import Enum
from typing import Any

from email_validator import EmailNotValidError, validate_email

from .catalogue import normalise_catalogue
from .rules import (
    CURRENCY,
    MAX_QUANTITY,
    Refusal,
    check_lines,
    check_payments,
    find_item,
    json_copy as _json_copy,
    order_key,
    require_object,
    same_json,
)

__all__ = ["CUSTOMER_FIELDS", "MAX_QUANTITY", "OrderStatus", "Refusal", "SandboxState", "order_key", "same_json"]

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

# Certificate numbers are 17 digits: the second the sandbox started (10 digits) and a counter (7) that
# survives reset(). One sandbox never hands a number out twice, and neither does the next one started
# after it (a restarted `flexybulk web --sandbox`, the next `issue --sandbox`): a result sheet of a batch
# finished across restarts holds no number twice, which would read as a double issue (a fresh user's find).
_COUNTER_DIGITS = 7


class OrderStatus(str, Enum):
    """A sales order's ``Status`` in the sandbox's answers."""

    OPEN = "Open"
    COMMITTED = "Committed"


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
        self._first_number = int(time.time()) * 10**_COUNTER_DIGITS
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
        """Every issued gift certificate, in issuing order: ``{"Number": str (17 digits),
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
        body = require_object(body, "request body")
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
                ``Price`` not a number > 0 or above the type's ``MaxPrice``
                (when its catalogue item has one; a sandbox rule, see
                :func:`~.catalogue.normalise_catalogue`),
                ``Currency`` not three capital letters; 409 for a different
                body for an already committed order (all part B).
        """
        body = require_object(body, "request body")
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
        if find_item(self._catalogue["departments"], department_id) is None:
            raise Refusal(
                400,
                f"DepartmentId {department_id!r} is not a known department (send the id back exactly "
                "as GET /api/v2/departments gives it, JSON type included).",
                "DepartmentId",
            )
        currency = body.get("Currency")
        if not isinstance(currency, str) or not CURRENCY.fullmatch(currency):
            raise Refusal(400, f"Currency must be a three-letter code such as DKK; got {currency!r}.", "Currency")
        lines = check_lines(self._catalogue["types"], body.get("GiftCertificates"))
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

    # -- step 5: commit -----------------------------------------------------

    def commit_order(self, order_id_text: str, body: Any, *, conflict_on_repeat: bool = False) -> tuple[int, dict[str, Any]]:
        """``POST /api/v1/salesorders/{order_id_text}/commit``: pay and issue the certificates.

        The first commit issues one gift certificate per unit of quantity and
        marks the order committed. A repeat whose payment ids were all
        recorded by that commit is ignored (article: "duplicate posts with the
        same Id will be ignored") and answers the same committed order; with
        ``conflict_on_repeat`` (``Faults.commit_409_on_repeat``) it is
        refused with 409 "Sales order <id> is already committed." instead,
        issuing nothing new either way.

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
                order, or a payment id already used on another order (part B),
                and for a repeat with ``conflict_on_repeat``.
        """
        order_id = order_key(order_id_text)
        with self._lock:
            order = self._orders.get(order_id) if order_id is not None else None
            if order is None:
                raise Refusal(
                    404,
                    f"Sales order {order_id_text!r} does not exist; create it with PUT /api/v1/salesorders first.",
                )
            paid_with = check_payments(body)
            payment_ids = [p["ExternalPayment"]["Id"] for p in paid_with]
            if order["Status"] == OrderStatus.COMMITTED:
                committed_ids = {p["ExternalPayment"]["Id"] for p in order["Payments"]}
                if set(payment_ids) <= committed_ids:
                    if conflict_on_repeat:
                        raise Refusal(409, f"Sales order {order_id} is already committed.")
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
            paid = sum((p["ExternalPayment"]["Amount"] for p in paid_with), Decimal(0))
            if paid != order["Total"]:
                raise Refusal(
                    400,
                    f"The payments add up to {paid} but the sales order total is {order['Total']} {order['Currency']}.",
                    "Payments",
                )
            self._issue(order)
            order["Status"] = OrderStatus.COMMITTED.value
            order["Payments"] = paid_with
            for payment_id in payment_ids:
                self._payment_orders[payment_id] = order_id
            return 200, _json_copy(order)

    def _issue(self, order: dict[str, Any]) -> None:
        for line in order["Lines"]:
            for _ in range(line["Quantity"]):
                self._issued += 1
                number = str(self._first_number + self._issued)
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


