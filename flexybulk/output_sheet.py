"""The shapes of an output sheet (the validation or result sheet): its columns, rows, Summary and "Needs attention".

:mod:`flexybulk.results` fills them (and re-exports them); :mod:`flexybulk.writers`
writes them. The rows may be kept as columns (:class:`OutputRows`): a
100,000-row sheet is then a list per column, not a dict per row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from .output_cells import Money

RESULT_COLUMNS = ("Status", "Error", "GiftCertificateNumbers", "IssuedAt", "CustomerId", "SalesOrderId",
                  "ExternalPaymentId", "BatchId", "Row")
VALIDATION_COLUMNS = ("Status", "Error", "Warning", "Row")
TYPED_COLUMNS = ("AmountRead", "LineTotal")
"""Written in XLSX only, before Status: the numbers a spreadsheet can sum."""
OWN_COLUMNS = frozenset(RESULT_COLUMNS) | frozenset(VALIDATION_COLUMNS) | frozenset(TYPED_COLUMNS)
"""flexybulk's columns: never input. The reader's ``RESULT_COLUMNS`` must hold every one (tests check)."""

ATTENTION_HEADERS = ("Row", "Status", "Who", "What to do", "Details")
"""The "Needs attention" sheet's columns; none is a recipient-list header, so the reader never picks it."""

# Row stays a plain number: "row 1234" is how the messages name it, not "row 1,234".
_KINDS = {"Status": "status", "Error": "wrap", "Warning": "wrap", "GiftCertificateNumbers": "wrap"}
_ATTENTION_KINDS = {"Status": "status", "What to do": "wrap", "Details": "wrap"}

@dataclass
class OutputRow:
    """One row of an output sheet.

    ``number`` is the input's sheet row number; ``input_values`` maps the
    input's headers to their cell values; ``extra`` maps flexybulk's own
    column names to values (``str``, ``int``, ``Decimal``, :class:`Money`,
    ``datetime``, :class:`RowStatus`, ``None``).
    """

    number: int
    input_values: dict[str, Any]
    extra: dict[str, Any]


class OutputRows(Sequence[OutputRow]):
    """The rows of an output sheet kept as columns: a sequence of :class:`OutputRow` made on demand.

    ``numbers``: the input's sheet row numbers; ``inputs``: each row's input
    values (header -> value; the input's own dicts, not copies); ``columns``:
    flexybulk's column name -> one value per row. ``currencies``: for a
    column of amounts (``Decimal`` or ``None``), the currency of each row:
    the row's value is then a :class:`Money`. A 100,000-row sheet so builds
    a list per column instead of a dict per row (and no ``Money`` per
    amount), and the XLSX writer takes the columns as they are
    (:func:`flexybulk.writers.write_output`).
    """

    def __init__(self, numbers: list[int], inputs: list[dict[str, Any]], columns: dict[str, list],
                 currencies: dict[str, list[str]] | None = None) -> None:
        self.numbers, self.inputs, self.columns, self.currencies = numbers, inputs, columns, currencies or {}
        if any(len(col) != len(numbers) for col in (*columns.values(), *self.currencies.values(), inputs)):
            raise ValueError("every column needs one value per row")

    def __len__(self) -> int:
        return len(self.numbers)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        extra = {h: col[index] for h, col in self.columns.items()}
        for h, currencies in self.currencies.items():
            if extra.get(h) is not None:
                extra[h] = Money(extra[h], currencies[index])
        return OutputRow(self.numbers[index], self.inputs[index], extra)


@dataclass
class OutputSheet:
    """A whole output: columns, rows, the Summary and the rows that need attention.

    ``summary`` is a list of lines, each a sequence of cells (``("Rows", 12)``
    is a label and its value); cells may be :class:`Heading`, :class:`Label`,
    :class:`Money`, :class:`RowStatus` (coloured), text, numbers or
    date-times. ``rows`` is a list of :class:`OutputRow` or an :class:`OutputRows`
    (columns). ``typed_columns`` are written in XLSX only. ``kinds`` says
    how a column looks: ``status`` (a fill per status), ``wrap`` (wrapped
    text), ``int`` (thousands separators). ``attention`` is ``None`` for no
    "Needs attention" sheet, else its lines (cells in ``attention_headers`` order).
    """

    input_headers: list[str]
    own_columns: Sequence[str]
    rows: Sequence[OutputRow]  # a list, or OutputRows
    header_row: int = 1
    summary: list[Sequence[Any]] = field(default_factory=list)
    sheet_name: str = "Result"
    csv_delimiter: str = ","
    typed_columns: Sequence[str] = ()
    kinds: dict[str, str] = field(default_factory=lambda: dict(_KINDS))
    attention: list[Sequence[Any]] | None = None
    attention_headers: Sequence[str] = ATTENTION_HEADERS
    attention_kinds: dict[str, str] = field(default_factory=lambda: dict(_ATTENTION_KINDS))

    @property
    def headers(self) -> list[str]:
        """The CSV's columns: the input's, then flexybulk's own."""
        return [h for h in self.input_headers if h not in OWN_COLUMNS] + list(self.own_columns)

    @property
    def xlsx_headers(self) -> list[str]:
        """The XLSX's columns: the input's, the typed columns, then flexybulk's own."""
        return [h for h in self.input_headers if h not in OWN_COLUMNS] + list(self.typed_columns) + list(self.own_columns)
