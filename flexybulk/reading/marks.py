"""What the person marked beyond the cell values, and what it means for the rows (issue #12).

A coordinator filters the list to this year's winners, hides a row, strikes a
cancelled one through, types one address over a mailto link to another. The
format readers (:mod:`.xlsx_scan`, :mod:`.ods_scan`, :mod:`.xls_extras`) each
gather these marks for the chosen sheet into one plain :class:`_Marks`;
:func:`_apply_marks` turns them into row data:

- a hidden or filtered-out row is ``InputRow.excluded`` (never validated or
  sent), or with ``--include-hidden`` read as usual with a warning naming it;
  a row that a result sheet given back marks ``EXCLUDED`` stays excluded;
- a row whose name or email cell is struck through gets a row problem;
- an email cell whose mailto link goes elsewhere than its text gets a cell problem.

Cells whose value comes from another workbook are not marks but cell issues
(``("external", file name)``, see :mod:`.columns`): their value must not be used at all.

Only the marked cells are visited: a sheet without marks costs nothing here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from flexybulk.model import Field, InputRow, RowProblem

from .cells import clean_text
from .context import _Column, _Context, column_letter

FILTERED = "hidden by a filter"
HIDDEN = "hidden"
MARKED = "marked EXCLUDED"  # a result or validation sheet given back: its own word on a row left out
_RECIPIENT_FIELDS = (Field.NAME, Field.FIRST_NAME, Field.LAST_NAME, Field.EMAIL)


@dataclass
class _Filter:
    """An AutoFilter's range and, per column (0-based, absolute), the shown values when the
    criterion is a plain list of values (``None``: a criterion that cannot be evaluated here)."""

    first_row: int
    last_row: int
    criteria: dict[int, frozenset[str] | None] = field(default_factory=dict)


@dataclass
class _Marks:
    """One sheet's marks. Rows are sheet row numbers (1-based), columns 0-based absolute.

    ``hidden``: row -> :data:`FILTERED` or :data:`HIDDEN` when the format says
    which (ODS); rows merely hidden (XLSX, XLS) are in ``hidden_rows`` and judged
    against ``filters``. ``struck``: struck-through cells. ``links``: hyperlink
    targets of cells (``"mailto:..."``).
    """

    hidden: dict[int, str] = field(default_factory=dict)
    hidden_rows: set[int] = field(default_factory=set)
    filters: list[_Filter] = field(default_factory=list)
    struck: set[tuple[int, int]] = field(default_factory=set)
    links: dict[tuple[int, int], str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.hidden or self.hidden_rows or self.struck or self.links)


def _hidden_reason(number: int, values: dict[int, Any], filters: list[_Filter]) -> str:
    """Why a hidden row is hidden: by a filter when it lies in a filter's range and fails (or may
    fail) one of its criteria; by hand otherwise (an Excel file does not say which)."""
    for flt in filters:
        if not flt.first_row < number <= flt.last_row:
            continue
        for col, shown in flt.criteria.items():
            if shown is None:
                return FILTERED
            text = clean_text(values.get(col))
            if (text or "") not in shown:
                return FILTERED
    return HIDDEN


def _apply_marks(rows: list[InputRow], marks: _Marks, columns: list[_Column], first_col: int, ctx: _Context) -> None:
    """Record ``marks`` on ``rows`` (in place): exclusions, struck-through rows, links that differ from their text."""
    if not marks:
        return
    by_number = {r.number: r for r in rows}
    hidden = dict(marks.hidden)
    if marks.hidden_rows:
        by_col = {first_col + c.index: c.header for c in columns}
        filter_cols = {col for flt in marks.filters for col in flt.criteria}
        for number in sorted(marks.hidden_rows):
            row = by_number.get(number)
            if row is not None and number not in hidden:
                values = {col: row.original.get(by_col[col]) for col in filter_cols if col in by_col}
                hidden[number] = _hidden_reason(number, values, marks.filters)
    shown = sorted(n for n in hidden if n in by_number)
    if shown and ctx.opts.include_hidden:
        many = len(shown) > 1
        listed = ", ".join(map(str, shown[:10])) + (f" and {len(shown) - 10} more" if len(shown) > 10 else "")
        ctx.warnings.append(
            f"{ctx.where}: {len(shown)} hidden row{'s' if many else ''} will be read too "
            f"(row{'s' if many else ''} {listed}) — unhide to check, and delete rows that "
            "should not get gift certificates"
        )
    elif shown:
        for number in shown:
            by_number[number].excluded = hidden[number]

    recipient = {first_col + c.index: c for c in columns if c.field in _RECIPIENT_FIELDS}
    struck_rows = sorted({r for (r, col) in marks.struck if col in recipient and r in by_number})
    for number in struck_rows:
        row = by_number[number]
        if row.excluded is None:
            row.problems.append(RowProblem(
                number, None, f"row {number} is struck through — delete it, or remove the strike-through to issue it"))

    emails = {first_col + c.index: c for c in columns if c.field is Field.EMAIL}
    for (number, col), target in sorted(marks.links.items()):
        column = emails.get(col)
        row = by_number.get(number)
        if column is None or row is None or not target.lower().startswith("mailto:"):
            continue
        linked = unquote(target[7:].split("?", 1)[0]).strip()
        shown_text = row.fields.get(Field.EMAIL.value)
        if shown_text is None or linked.casefold() == str(shown_text).casefold():
            continue
        cell = f"{column_letter(col)}{number}"
        row.problems.append(RowProblem(
            number, column.header,
            f"{cell} shows '{row.original.get(column.header)}' but its link goes to '{linked}' — "
            "correct the cell or the link so that both are the address to use",
            str(row.original.get(column.header)), column.letter))


def _keep_earlier_exclusions(rows: list[InputRow], headers: list[str], ctx: _Context) -> None:
    """Rows a result or validation sheet marks ``EXCLUDED`` stay excluded when the sheet is read
    again (its rows are no longer hidden there), unless ``--include-hidden``."""
    if "Status" not in headers or ctx.opts.include_hidden:
        return
    for row in rows:
        status = row.original.get("Status")
        if status.__class__ is str and status.strip() == "EXCLUDED" and row.excluded is None:
            row.excluded = MARKED
