"""Data shapes shared by the reader, the validator, the runner and the writers.

Nothing here does I/O. Terms follow the glossary in ``shared/flexybox-api.md``
part C: a *row* is one line of the input sheet; a *batch* is one input file
issued under one batch id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any


class Field(str, Enum):
    """The canonical input fields a column can map to.

    The value is the key used in ``InputRow.fields`` and in ``--column``.
    """

    NAME = "name"
    FIRST_NAME = "first_name"  # joined with LAST_NAME into NAME (Mailchimp exports)
    LAST_NAME = "last_name"
    EMAIL = "email"
    TYPE = "type"  # gift certificate type, by id or name
    AMOUNT = "amount"  # price of one gift certificate, in the row's currency
    QUANTITY = "quantity"
    DEPARTMENT = "department"  # by id or name
    PHONE = "phone"
    ADDRESS = "address"
    POSTAL_CODE = "postal_code"
    CITY = "city"
    COUNTRY = "country"
    CURRENCY = "currency"


class RowStatus(str, Enum):
    """A row's status in the validation sheet, the result sheet and the ledger."""

    VALID = "VALID"  # validation sheet only: the row passed every check
    INVALID = "INVALID"  # the row has problems; nothing was sent for it
    PENDING = "PENDING"  # not finished (interrupted); a rerun finishes it
    ISSUED = "ISSUED"  # committed: the gift certificates exist
    FAILED = "FAILED"  # the server refused a call; nothing was committed
    UNKNOWN = "UNKNOWN"  # the last call's outcome is unknown; a rerun settles it safely
    SKIPPED = "SKIPPED"  # deliberately not sent (already issued earlier, or invalid with --skip-invalid)
    EXCLUDED = "EXCLUDED"  # left out by the person: a row hidden or filtered out in the sheet (InputRow.excluded)

    @property
    def needs_attention(self) -> bool:
        """True for statuses a rerun or a person must still deal with."""
        return self in (RowStatus.INVALID, RowStatus.PENDING, RowStatus.FAILED, RowStatus.UNKNOWN)


@dataclass
class RowProblem:
    """One problem with one row (or one cell), reported as data, never raised.

    Attributes:
        row: the sheet row number (1-based, as the spreadsheet program shows it).
        column: the column's header exactly as written in the file (``"Beløb"``),
            or ``None`` for a problem of the whole row.
        message: plain words saying what is wrong and what to do.
        value: the offending cell text, if any.
        column_letter: the spreadsheet column letter (``"F"``), if known.
        alone: the row's other faults follow from this one (a CSV line with
            another separator, all read into one column): the checks add none.
    """

    row: int
    column: str | None
    message: str
    value: str | None = None
    column_letter: str | None = None
    alone: bool = False

    def cell_text(self, line: int | None = None) -> str:
        """``"row 5, column 'Beløb' (F)"``-style location, without the file.

        ``line``: where the row is in the sheet read when that is not its row
        number (a sorted or trimmed result sheet given back: ``"row 4 (input
        row 5), ..."``, so the person finds the line they must correct).
        """
        where = f"row {self.row}" if line is None or line == self.row else f"row {line} (input row {self.row})"
        if self.column is not None:
            where += f", column '{self.column}'"
            if self.column_letter:
                where += f" ({self.column_letter})"
        return where


@dataclass
class InputRow:
    """One data row of the input sheet.

    Attributes:
        number: the sheet row number (the header is row 1 when it is on the first line).
        fields: canonical field name (``Field.value``) -> parsed value. Text
            fields are ``str`` (cleaned: stripped, NFKC where the reader says so);
            ``amount`` is ``decimal.Decimal`` (kroner or the row's currency);
            ``quantity`` is ``int``. A field that is empty in the sheet is absent.
            A field whose cell could not be parsed is absent and has a problem
            in ``problems``.
        original: header -> the cell's value as read (``str``, ``int``,
            ``Decimal``, ``datetime`` or ``None``), in the file's column order.
            The result sheet writes these back unchanged.
        problems: problems found while reading cells (an ambiguous amount, a
            phone number shortened by Excel, a formula without a saved value,
            a struck-through row, a value linked from another workbook).
        excluded: why the person left this row out, or ``None``: ``"hidden by a
            filter"``, ``"hidden"``. An excluded row is read (its cells are kept
            for the result sheet) but never validated or sent (``RowStatus.EXCLUDED``).
    """

    number: int
    fields: dict[str, Any] = field(default_factory=dict)
    original: dict[str, Any] = field(default_factory=dict)
    problems: list[RowProblem] = field(default_factory=list)
    excluded: str | None = None


@dataclass
class Sheet:
    """What the reader made of one input file.

    Attributes:
        path: the file read.
        format: ``"xlsx"``, ``"xlsm"``, ``"ods"``, ``"xls"`` or ``"csv"`` (TSV included), by content.
        sheet_name: the worksheet read, ``None`` for CSV.
        header_row: the sheet row number of the header.
        headers: the input's column headers in file order (the result sheet's first columns).
        column_map: canonical field name -> header it was read from.
        column_letters: header -> spreadsheet column letter.
        rows: the data rows, in file order, fully empty rows left out.
        notes: facts worth telling the user (``"Header found on row 3"``,
            ``"Read as Windows-1252"``).
        warnings: things that may be wrong but did not stop reading
            (double-encoded text, hidden rows).
        sha256: hex SHA-256 of the file's bytes.
        csv_delimiter: the delimiter of a CSV input (``";"``, ``","`` or tab), else ``None``;
            a CSV result sheet keeps the user's dialect.
        list_end: where the list of recipients ends and what lies below it, one
            sentence each (a totals row, a second table, a repeated header); the
            rows below are not in ``rows``.
        encoding: the text encoding a CSV input was read with (Python's codec
            name, ``"utf-8"``, ``"cp1252"``, ``"mac-roman"``), else ``None``.
        decode_doubt: a sentence saying the text looks wrongly decoded and naming
            ``--encoding``, or ``None``; messages about unmatched headers add it.
        lines: input row number -> line in this sheet, for a result or
            validation sheet given back whose rows were renumbered to the input
            rows their ``Row`` column names (empty otherwise); messages name both.
    """

    path: Path
    format: str
    sheet_name: str | None
    header_row: int
    headers: list[str]
    column_map: dict[str, str]
    column_letters: dict[str, str]
    rows: list[InputRow]
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    sha256: str = ""
    csv_delimiter: str | None = None
    list_end: list[str] = field(default_factory=list)
    encoding: str | None = None
    decode_doubt: str | None = None
    lines: dict[int, int] = field(default_factory=dict)

    def where(self) -> str:
        """``"kampagne.xlsx, sheet 'kampagne'"`` (or just the file name for CSV)."""
        text = self.path.name
        if self.sheet_name is not None:
            text += f", sheet '{self.sheet_name}'"
        return text

    def exclusions(self) -> list[str]:
        """The excluded rows, one sentence per reason, by row number:
        ``["rows 3, 5 and 6 are hidden by a filter and will not be issued"]``."""
        by_reason: dict[str, list[int]] = {}
        for row in self.rows:
            if row.excluded is not None:
                by_reason.setdefault(row.excluded, []).append(row.number)
        lines = []
        for reason, numbers in by_reason.items():
            shown = [str(n) for n in numbers[:20]] + ([f"{len(numbers) - 20:,} more"] if len(numbers) > 20 else [])
            listed = shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]
            verb = "is" if len(numbers) == 1 else "are"
            lines.append(f"{'row' if len(numbers) == 1 else 'rows'} {listed} {verb} {reason} and will not be issued")
        return lines

    def describe(self, problem: RowProblem) -> str:
        """The full one-line message for a problem: file, sheet, row, column, message."""
        return f"{self.where()}, {problem.cell_text(self.lines.get(problem.row))}: {problem.message}"


@dataclass(frozen=True)
class CatalogueItem:
    """A gift certificate type or a department from the live catalogue.

    ``id`` is opaque: exactly the JSON value the server sent (a GUID string,
    or a number for departments), sent back unchanged. ``active`` is False
    only when the server marks the item inactive (``IsActive: false``).
    """

    id: Any
    name: str
    active: bool = True
    raw: dict = field(default_factory=dict, compare=False, hash=False, repr=False)


@dataclass(frozen=True)
class Catalogue:
    """The gift certificate types and departments fetched from Flexybox."""

    types: tuple[CatalogueItem, ...]
    departments: tuple[CatalogueItem, ...]


@dataclass(frozen=True)
class Order:
    """One valid row, ready to issue: what the vendor's three calls need.

    Money is ``Decimal`` in the row's currency (kroner for DKK).
    ``total`` is ``quantity * price``, the amount of the external payment.
    """

    row: int
    name: str
    email: str
    type: CatalogueItem
    department: CatalogueItem
    price: Decimal
    quantity: int
    currency: str
    country: str
    phone: str | None = None
    address: str | None = None
    postal_code: str | None = None
    city: str | None = None

    @property
    def total(self) -> Decimal:
        """Quantity x price, the order total and the payment amount."""
        return self.price * self.quantity
