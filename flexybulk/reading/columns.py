"""One mapped column of a block of rows, parsed: the fast path for its common cells, the per-cell
parser for the rest, and the cells as ``InputRow.original`` keeps them (issue #4, pitfalls P1, P9, P11).

The per-cell parsers are :mod:`flexybulk.reading.cells` and
:mod:`flexybulk.reading.amounts`; beside each is its fast path over a column,
which parses the common cells in one comprehension (or in C) and leaves the
rest (:data:`~flexybulk.reading.cells.SLOW`) to the parser, so that a
100,000-row sheet reads in about calamine's own time. :data:`_FAST_PATHS`
off sends every cell through the parsers (the tests compare the two ways).
Cells whose value is unknown (formulas without a cached value, error cells)
become row problems here.
"""

from __future__ import annotations

from itertools import compress, count as _indices, repeat
from operator import is_
from typing import Any, Callable, Iterable

from flexybulk.model import Field, RowProblem

from . import amounts, cells
from .cells import SLOW as _SLOW
from .context import _Column, column_letter

_FAST_PATHS = True  # tests switch this off to compare the fast paths with the per-cell parsers
_TEXT_FIELDS = (Field.NAME, Field.FIRST_NAME, Field.LAST_NAME, Field.TYPE, Field.DEPARTMENT,
                Field.ADDRESS, Field.CITY)


def _original_column(values: Iterable[Any]) -> list[Any]:
    """Cells as ``InputRow.original`` keeps them (one list comprehension per column: pitfalls P11).

    Text as read, minus one formula guard ``'`` (pitfalls P17); numbers as
    ``int``/``Decimal``, never ``float`` (P1, P7); dates stay dates (P18);
    empty cells are ``None`` (never ``"nan"``, P7).
    """
    # Fractional floats repeat (prices): each distinct one becomes a Decimal once (Decimals are immutable).
    decimals: dict[float, Any] = {}
    get = decimals.get
    return [
        v if v.__class__ is str and v and v[0] != "'"
        else (int(v) if v.is_integer() else (get(v) or decimals.setdefault(v, cells.number_from_float(v))))
        if v.__class__ is float else _original_value(v)
        for v in values
    ]


def _joined_text(values: Iterable[Any]) -> str | None:
    """The column's cells joined with ``"\\n"`` when every one is ``str`` (one pass in C), else ``None``.

    A check over the joined text holds for every cell: ASCII, no invisible
    characters, NFC (``"\\n"`` never composes with a neighbour, so the joined
    text is NFC exactly when every cell is).
    """
    if not _FAST_PATHS:
        return None
    try:
        return "\n".join(values)
    except TypeError:  # a number, date, bool or empty (None) cell: the per-cell path decides
        return None


def _plain_original(joined: str) -> bool:
    """True when no cell of a joined text column is empty or starts with ``'``: the column
    is then its own ``InputRow.original`` (conservative: a line break inside a cell may say no)."""
    return bool(joined) and joined[0] not in "'\n" and joined[-1] != "\n" and "\n\n" not in joined \
        and "\n'" not in joined


def _original_value(value: Any) -> Any:
    cls = value.__class__
    if cls is str:
        return cells.strip_formula_guard(value) if value else None
    if cls is float:
        return cells.number_from_float(value)
    return value


_FORMULA_MESSAGE = (
    "Cell {ref} ({header}) has the formula {formula} but no calculated value. "
    "Open and save the file in Excel/LibreOffice, or paste values."
)
_ERROR_MESSAGE = "Cell {ref} ({header}) shows the error {error} — fix the formula or type the value"
_EXTERNAL_MESSAGE = "{ref} takes its value from '{book}'; paste the values, then validate again"
_EXTERNAL_ERROR_MESSAGE = "{ref} takes its value from '{book}' and shows the error {error}; paste the values, then validate again"


def _issue_problem(column: _Column, row: int, col_abs: int, kind: str, text: str, error: str | None = None) -> RowProblem:
    """The row problem of a cell whose value must not be used: ``kind`` ``"formula"`` (no cached value)
    or ``"error"`` (pitfalls P9), or ``"external"`` (``text`` names the other workbook it comes from, issue #12;
    ``error``: the error its cached value shows, if any).

    A cell issue is a tuple ``(kind, text)``, or ``("external", file name, error)`` for a value from
    another workbook that shows an error; :func:`_issue_shown` gives what the cell shows."""
    if kind == "percent":
        ref = f"{column_letter(col_abs)}{row}"
        return RowProblem(row, column.header, f"{ref} shows a percentage ({text}), not an amount — format the cell as "
                          "a number and write the price of one gift certificate, e.g. 250", text, column.letter)
    if kind == "external":
        template = _EXTERNAL_ERROR_MESSAGE if error else _EXTERNAL_MESSAGE
        message = template.format(ref=f"{column_letter(col_abs)}{row}", book=text, error=error)
        return RowProblem(row, column.header, message, error or text, column.letter)
    template = _FORMULA_MESSAGE if kind == "formula" else _ERROR_MESSAGE
    message = template.format(ref=f"{column_letter(col_abs)}{row}", header=column.header, formula=text, error=text)
    return RowProblem(row, column.header, message, text, column.letter)


def _issue_shown(issue: tuple[str, ...]) -> str | None:
    """The error text a cell issue's cell shows (``"#N/A"``), kept as the row's original value; else ``None``."""
    if issue[0] == "error":
        return issue[1]
    return issue[2] if len(issue) > 2 else None


def _fast_column(
    fld: Field, values: list[Any], countries: list[Any] | None, padded: bool, joined: str | None = None
) -> list[Any]:
    """The common cells of a column parsed by the field's fast path; ``_SLOW`` for the rest.

    Every fast path gives exactly what the matching per-cell parser would
    (ASCII text needs no NFKC/NBSP work; an 8-digit integer phone in DK is
    ``+45`` and its digits); anything unusual is left to it. ``padded``: the
    sheet has zero-padding formats for phones/postal codes, which only the
    parsers apply. Keeps the 100,000-row case near calamine's own read time (issue #6, P11).
    """
    S = _SLOW
    if not _FAST_PATHS:
        return [None if v is None else S for v in values]
    if fld in _TEXT_FIELDS:
        return cells.fast_text_column(values, joined)
    if fld is Field.EMAIL:
        return cells.fast_email_column(values, joined)
    if fld in (Field.COUNTRY, Field.CURRENCY):
        return cells.fast_code_column(values)
    if fld is Field.AMOUNT:
        return amounts.fast_amount_column(values)
    if fld is Field.QUANTITY:
        return amounts.fast_quantity_column(values)
    if fld is Field.PHONE and not padded:
        return cells.fast_phone_column(values, countries)
    if fld is Field.POSTAL_CODE and not padded:
        return cells.fast_postal_code_column(values)
    return [None if v is None else S for v in values]


def _parse_fields(
    columns: list[_Column],
    originals: list[list[Any]],
    numbers: list[int],
    first_col: int,
    issues: dict[tuple[int, int], tuple[str, ...]],
    formats: dict[tuple[int, int], str],
    joined: list[str | None] | None = None,
    amount_convention: Callable[[int], amounts.AmountConvention] | None = None,
) -> tuple[list[list[Any] | None], dict[int, list[RowProblem]]]:
    """Parse each mapped column once (column conventions are per column: pitfalls P1).

    Returns ``(parsed, problems)``: ``parsed[k][i]`` is column k's value for
    data row i (``None`` when absent; ``parsed[k]`` is ``None`` for an unmapped
    column); ``problems[i]`` lists row i's problems in column order.
    ``joined[k]``: column k's cells joined (:func:`_joined_text`) when it is a plain
    text column, else ``None``. ``amount_convention(k)``: the convention of the whole
    amount column when these rows are one block of it; ``None`` decides it from ``originals``.
    """
    parsed: list[list[Any] | None] = [None] * len(columns)
    per_column: list[list[tuple[int, RowProblem]]] = [[] for _ in columns]
    blocked: dict[int, set[int]] = {}

    # Formula cells without a cached value, and error cells: their value is
    # unknown, so the field is absent and the row gets a problem (pitfalls P9).
    if issues:
        row_index = {number: i for i, number in enumerate(numbers)}
        col_index = {first_col + c.index: k for k, c in enumerate(columns)}
        for (row, col), issue in sorted(issues.items()):
            if col not in col_index or row not in row_index:
                continue
            k, i = col_index[col], row_index[row]
            per_column[k].append((i, _issue_problem(columns[k], row, col, *issue)))
            blocked.setdefault(k, set()).add(i)
            shown = _issue_shown(issue)
            if shown is not None:
                if originals[k].__class__ is not list:  # a plain text column shared with the grid
                    originals[k] = list(originals[k])
                originals[k][i] = shown

    # Country first: phones and postal codes depend on the row's country.
    order = sorted(range(len(columns)), key=lambda k: columns[k].field is not Field.COUNTRY)
    countries: list[Any] | None = None
    for k in order:
        column = columns[k]
        fld = column.field
        if fld is None:
            continue
        values = originals[k]
        col_abs = first_col + column.index
        padded = bool(formats) and fld in (Field.PHONE, Field.POSTAL_CODE)
        out = _fast_column(fld, values, countries, padded, joined[k] if joined and k not in blocked else None)
        if fld is Field.POSTAL_CODE and values.__class__ is not list:
            values = originals[k] = list(values)  # a padded code is written back below
        # Found by identity in C: `_SLOW in out` would compare every cell (slow for Decimals).
        slow = list(compress(_indices(), map(is_, out, repeat(_SLOW)))) if any(map(is_, out, repeat(_SLOW))) else ()
        if fld is Field.AMOUNT and slow:
            # Only text cells carry a convention, and text cells are never on the fast path.
            convention = amount_convention(k) if amount_convention else amounts.amount_convention(values)
        column_blocked = blocked.get(k, ())
        problems = per_column[k]
        for i in slow:
            value = values[i]
            out[i] = None
            if i in column_blocked:
                continue
            try:
                if fld is Field.AMOUNT:
                    out[i] = amounts.parse_amount(value, convention)
                elif fld is Field.QUANTITY:
                    out[i] = amounts.parse_quantity(value)
                elif fld is Field.EMAIL:
                    out[i] = cells.normalize_email(value)
                elif fld in (Field.COUNTRY, Field.CURRENCY):
                    out[i] = cells.normalize_code(value)
                elif fld is Field.PHONE:
                    fmt = formats.get((numbers[i], col_abs)) if formats else None
                    out[i] = cells.normalize_phone(value, countries[i] if countries else None, fmt)
                elif fld is Field.POSTAL_CODE:
                    fmt = formats.get((numbers[i], col_abs)) if formats else None
                    code = out[i] = cells.postal_code_text(value, fmt)
                    if code is not None:
                        if fmt and code != str(value):
                            values[i] = code  # keep what the sheet shows: "0800" (pitfalls P5)
                        warning = cells.postal_code_warning(code, countries[i] if countries else None)
                        if warning:
                            problems.append((i, RowProblem(numbers[i], column.header, warning, code, column.letter)))
                else:
                    out[i] = cells.clean_text(value)
            except cells.CellValueError as exc:
                shown = value if value.__class__ is str else cells.clean_text(value)
                problems.append((i, RowProblem(numbers[i], column.header, str(exc), shown, column.letter)))
        for i in column_blocked:
            out[i] = None
        parsed[k] = out
        if fld is Field.COUNTRY:
            countries = out

    by_row: dict[int, list[RowProblem]] = {}
    for entries in per_column:
        for i, prob in sorted(entries, key=lambda e: e[0]):
            by_row.setdefault(i, []).append(prob)
    return parsed, by_row
