"""A validation's verdicts: one :class:`RowCheck` per row, and the totals a face shows (rows, certificates, money)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Callable

from ..model import InputRow, Order, RowProblem, Sheet
from .rules import DEFAULT_CURRENCY, format_money


@dataclass
class RowCheck:
    """The verdict on one row.

    Attributes:
        row: the input row.
        order: the order to issue, or ``None`` when the row has problems.
        problems: what makes the row invalid (empty when valid).
        warnings: worth a look but not blocking (a repeat within the file).
        fingerprint: :func:`order_fingerprint` of the order (empty when invalid).
    """

    row: InputRow
    order: Order | None
    problems: list[RowProblem] = field(default_factory=list)
    warnings: list[RowProblem] = field(default_factory=list)
    fingerprint: str = ""

    @property
    def valid(self) -> bool:
        return self.order is not None

    @property
    def excluded(self) -> str | None:
        """Why the person left the row out (hidden, filtered out), or ``None``: such a row is neither valid nor invalid."""
        return self.row.excluded


@dataclass
class Totals:
    """Certificates and money, per currency (``Decimal``, in that currency's units)."""

    rows: int = 0
    certificates: int = 0
    amounts: dict[str, Decimal] = field(default_factory=dict)

    def add(self, order: Order) -> None:
        """Count one order."""
        self.add_line(order.currency, order.price, order.quantity)

    def add_line(self, currency: str, price: Decimal, quantity: int) -> None:
        """Count one row of ``quantity`` certificates at ``price`` each."""
        self.rows += 1
        self.certificates += quantity
        self.amounts[currency] = self.amounts.get(currency, Decimal(0)) + price * quantity

    def money(self) -> str:
        """``"31,500.00 DKK"`` (several currencies joined with ``" + "``); ``"0.00 DKK"`` when there is none.

        No money has no currency of its own; it is said in the currency a row
        without one is issued in (``DEFAULT_CURRENCY``), never as a bare ``0.00`` (issue #13).
        """
        if not self.amounts:
            return f"{format_money(Decimal(0))} {DEFAULT_CURRENCY}"
        return " + ".join(f"{format_money(v)} {c}" for c, v in sorted(self.amounts.items()))


@dataclass
class Validation:
    """Every row's verdict plus the batch summary."""

    sheet: Sheet
    checks: list[RowCheck]

    @property
    def valid(self) -> list[RowCheck]:
        return [c for c in self.checks if c.valid]

    @property
    def invalid(self) -> list[RowCheck]:
        return [c for c in self.checks if not c.valid and c.row.excluded is None]

    @property
    def excluded(self) -> list[RowCheck]:
        """The rows the person left out (``InputRow.excluded``): never sent, never blocking."""
        return [c for c in self.checks if c.row.excluded is not None]

    def totals(self) -> Totals:
        """Totals over the valid rows."""
        t = Totals()
        for c in self.checks:
            if c.order is not None:
                t.add(c.order)
        return t

    def by(self, key: Callable[[Order], str]) -> dict[str, Totals]:
        """Totals of the valid rows grouped by ``key`` (e.g. type name), in first-seen order."""
        groups: dict[str, Totals] = {}
        for c in self.checks:
            if c.order is not None:
                groups.setdefault(key(c.order), Totals()).add(c.order)
        return groups

    def messages(self) -> list[str]:
        """Every problem, one full line each (file, sheet, row, column, what to do)."""
        return [self.sheet.describe(p) for c in self.checks for p in c.problems]

    def warning_messages(self) -> list[str]:
        """Every warning, one full line each."""
        return [self.sheet.describe(p) for c in self.checks for p in c.warnings]
