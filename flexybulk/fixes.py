"""Cell fixes: what a person typed into a cell of a sheet they uploaded, applied in memory.

The web page lets a person correct a cell in place (a mistyped email, a
type picked from the live list) instead of editing the file and uploading it
again. A fix is data — ``CellFix(row, column, text)`` — applied to an
:class:`~flexybulk.batches.Input` as read: the cell's value as the sheet
keeps it (``InputRow.original``) becomes the typed text, and the field is
parsed again by the reader's own per-cell parsers (:mod:`flexybulk.reading.cells`
and :mod:`flexybulk.reading.amounts`, the functions the reader uses for every
text cell of every format:
XLSX, XLSM, XLSB, ODS, XLS and CSV), so a typed ``499,95`` means what it
would mean in the file. The rows are then validated as usual; nothing here
decides anything about money.

Identity (issue #14): a fixed input is not the uploaded file any more, so it
must not share the file's identity in the ledger (the ledger resumes a batch
by the input's SHA-256). Its identity is::

    sha256("flexybulk-fixes-1\\n" + <file's SHA-256 hex> + "\\n" + canonical JSON of the fixes)

where the canonical JSON is the list of ``[row, column, text]`` (the last fix
of each cell only, sorted by row then column), ``ensure_ascii=False`` and
without spaces. The same file with the same fixes always has the same
identity, so a server restarted from the stored upload and the stored fixes
(:func:`save_fixes`, :func:`load_fixes`) rebuilds exactly the same input and
resumes its batch; any other fix gives another identity. With no fixes the
identity is the file's SHA-256 itself.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable, Sequence

from .reading import amounts as A, cells as C
from .errors import ConfigError
from .files import write_private_text
from .model import Field, InputRow, RowProblem

FIXES_VERSION = "flexybulk-fixes-1"


@dataclass(frozen=True)
class CellFix:
    """One cell as a person corrected it.

    Attributes:
        row: the sheet's row number (as the spreadsheet program shows it; for
            a result sheet given back, the input row its ``Row`` column names).
        column: the column's header exactly as in the sheet (``"Beløb"``).
        text: what the person typed; ``""`` empties the cell.
    """

    row: int
    column: str
    text: str

    def as_list(self) -> list:
        return [self.row, self.column, self.text]


def latest(fixes: Iterable[CellFix]) -> list[CellFix]:
    """The last fix of each cell, sorted by row then column (a cell fixed twice keeps its last text)."""
    last: dict[tuple[int, str], CellFix] = {}
    for fix in fixes:
        last[(fix.row, fix.column)] = fix
    return [last[k] for k in sorted(last)]


def canonical_json(fixes: Iterable[CellFix]) -> str:
    """The fixes as the identity hashes them (see the module docstring)."""
    return json.dumps([f.as_list() for f in latest(fixes)], ensure_ascii=False, separators=(",", ":"))


def fixed_identity(file_sha256: str, fixes: Iterable[CellFix]) -> str:
    """The ledger identity (hex SHA-256) of a file with these fixes; the file's own SHA-256 without fixes."""
    text = canonical_json(fixes)
    if text == "[]":
        return file_sha256
    return hashlib.sha256(f"{FIXES_VERSION}\n{file_sha256}\n{text}".encode("utf-8")).hexdigest()


def save_fixes(path: Path | str, fixes: Iterable[CellFix]) -> None:
    """Write ``fixes`` (the last of each cell) to ``path`` as JSON, atomically, owner-only (0600).

    Raises:
        OSError: the file cannot be written.
    """
    path = Path(path)
    data = json.dumps({"version": FIXES_VERSION, "fixes": [f.as_list() for f in latest(fixes)]}, ensure_ascii=False, indent=1)
    write_private_text(path, data)


def load_fixes(path: Path | str) -> list[CellFix]:
    """The fixes saved at ``path`` (``[]`` when there is no such file).

    Raises:
        ConfigError: the file is not a fixes file this flexybulk wrote.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise ConfigError(f"Cannot read the saved cell fixes {path}: {exc}.") from None
    if not isinstance(data, dict) or data.get("version") != FIXES_VERSION or not isinstance(data.get("fixes"), list):
        raise ConfigError(f"{path} is not a cell fixes file of this flexybulk ({FIXES_VERSION}).")
    try:
        return [CellFix(int(r), str(c), str(t)) for r, c, t in data["fixes"]]
    except (TypeError, ValueError):
        raise ConfigError(f"{path} holds a malformed cell fix.") from None


def apply_fixes(source: Any, fixes: Sequence[CellFix]) -> Any:
    """A copy of ``source`` (a :class:`~flexybulk.batches.Input`) with ``fixes`` applied; ``source`` is unchanged.

    Per fixed cell: the reader's problems on that cell are dropped and the
    field the column is mapped to is parsed again (a changed country re-parses
    the row's phone number and postal code, which depend on it; a changed first
    or last name rebuilds the name). ``original[column]`` (what the result
    sheet writes back in the input's columns) becomes what the reader would
    have kept had the sheet held it: a phone number or postal code as the reader
    normalises it (``+4545123456``, ``0800``), an amount or quantity as the
    number read (``Decimal``, ``int``) when the column holds numbers, and the
    typed text otherwise (a text column, a value that does not parse; ``None``
    for ``""``) [issue #14: a fixed cell must not turn a number column into text]. The copy's ``sheet.sha256`` is
    :func:`fixed_identity`; ``sheet.notes`` gains a line saying how many cells
    were fixed. Validate the copy as any input.

    Raises:
        ConfigError: a fix names a row or a column the sheet does not have.
    """
    fixes = latest(fixes)
    if not fixes:
        return source
    sheet = source.sheet
    by_number = {r.number: i for i, r in enumerate(sheet.rows)}
    field_of = {header: Field(name) for name, header in sheet.column_map.items()}
    for fix in fixes:
        if fix.row not in by_number:
            raise ConfigError(f"{sheet.where()}: there is no row {fix.row} to fix.")
        if fix.column not in sheet.headers:
            raise ConfigError(f"{sheet.where()}: there is no column '{fix.column}' to fix.")

    rows = list(sheet.rows)
    touched: dict[int, list[CellFix]] = {}
    for fix in fixes:
        touched.setdefault(fix.row, []).append(fix)
    amount_header = sheet.column_map.get(Field.AMOUNT.value)
    new_rows: dict[int, InputRow] = {}
    for number, cell_fixes in touched.items():
        old = rows[by_number[number]]
        new_rows[number] = InputRow(old.number, dict(old.fields), dict(old.original), list(old.problems))
        for fix in cell_fixes:
            new_rows[number].original[fix.column] = fix.text if fix.text.strip() else None
    convention = A.AmountConvention.UNKNOWN
    if amount_header is not None:
        # The column's convention as the reader decides it: over all its text cells, the typed ones included.
        convention = A.amount_convention(
            (new_rows[r.number] if r.number in new_rows else r).original.get(amount_header) for r in rows)
    numeric = {h for h in (sheet.column_map.get(f.value) for f in _NUMBERS) if h and _holds_numbers(sheet.rows, h, touched)}
    for number, row in new_rows.items():
        headers = {f.column for f in touched[number]}
        fields = {field_of[h] for h in headers if h in field_of}
        if Field.COUNTRY in fields:
            # Phones and postal codes are read for the row's country (pitfalls P5, P6).
            fields |= {f for f in (Field.PHONE, Field.POSTAL_CODE) if f.value in sheet.column_map}
        for fld in sorted(fields, key=lambda f: f is not Field.COUNTRY):
            _reparse(row, fld, sheet.column_map[fld.value], sheet.column_letters.get(sheet.column_map[fld.value]), convention)
        for header in headers:
            fld = field_of.get(header)
            if fld is None or row.original.get(header) is None or any(p.column == header for p in row.problems
                                                                          if fld is not Field.POSTAL_CODE):
                continue  # not a field, emptied, or not readable: the typed text stays
            parsed = row.fields.get(fld.value)
            if fld in (Field.PHONE, Field.POSTAL_CODE) and parsed is not None:
                row.original[header] = parsed
            elif fld in _NUMBERS and header in numeric and isinstance(parsed, (Decimal, int)):
                row.original[header] = parsed
        if {Field.FIRST_NAME, Field.LAST_NAME} & fields and Field.NAME.value not in sheet.column_map:
            full = " ".join(p for p in (row.fields.get("first_name"), row.fields.get("last_name")) if p)
            if full:
                row.fields["name"] = full
            else:
                row.fields.pop("name", None)
        rows[by_number[number]] = row

    fixed_sheet = copy.copy(sheet)
    fixed_sheet.rows = rows
    fixed_sheet.notes = [*sheet.notes, fixed_note(len(fixes))]
    fixed_sheet.sha256 = fixed_identity(sheet.sha256, fixes)
    fixed = copy.copy(source)
    fixed.sheet = fixed_sheet
    return fixed


_NUMBERS = (Field.AMOUNT, Field.QUANTITY)


def _holds_numbers(rows: Sequence[InputRow], header: str, touched: dict[int, list[CellFix]]) -> bool:
    """True when the column's cells not fixed now are mostly numbers (a spreadsheet's number column), not text."""
    numbers = texts = 0
    for r in rows:
        if r.number in touched and any(f.column == header for f in touched[r.number]):
            continue
        value = r.original.get(header)
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, (int, float, Decimal)):
            numbers += 1
        else:
            texts += 1
    return numbers > texts


def previous_values(source: Any, fixes: Sequence[CellFix]) -> dict[tuple[int, str], tuple[Any, str]]:
    """``(row, column)`` -> ``(the cell's value before the fix, the text typed)`` for each fixed cell of ``source``
    (the input as read, before :func:`apply_fixes`): what a page shows to say a fix was taken."""
    before = {r.number: r.original for r in source.sheet.rows}
    return {(f.row, f.column): (before.get(f.row, {}).get(f.column), f.text) for f in latest(fixes)}


def _reparse(row: InputRow, fld: Field, header: str, letter: str | None, convention: Any) -> None:
    """Parse ``row.original[header]`` as ``fld`` again, as the reader does for a text cell (its slow path)."""
    row.problems = [p for p in row.problems if p.column != header]
    value = row.original.get(header)
    row.fields.pop(fld.value, None)
    if value is None:
        return
    country = row.fields.get(Field.COUNTRY.value)
    try:
        if fld is Field.AMOUNT:
            parsed = A.parse_amount(value, convention)
        elif fld is Field.QUANTITY:
            parsed = A.parse_quantity(value)
        elif fld is Field.EMAIL:
            parsed = C.normalize_email(value)
        elif fld in (Field.COUNTRY, Field.CURRENCY):
            parsed = C.normalize_code(value)
        elif fld is Field.PHONE:
            parsed = C.normalize_phone(value, country, None)
        elif fld is Field.POSTAL_CODE:
            parsed = C.postal_code_text(value, None)
            warning = C.postal_code_warning(parsed, country) if parsed is not None else None
            if warning:
                row.problems.append(RowProblem(row.number, header, warning, parsed, letter))
        else:
            parsed = C.clean_text(value)
    except C.CellValueError as exc:
        shown = value if isinstance(value, str) else C.clean_text(value)
        row.problems.append(RowProblem(row.number, header, str(exc), shown, letter))
        return
    if parsed is not None:
        row.fields[fld.value] = parsed


__all__ = ["CellFix", "FIXES_VERSION", "apply_fixes", "canonical_json", "fixed_identity", "latest", "load_fixes",
           "previous_values", "save_fixes"]


def fixed_note(count: int) -> str:
    """The note a fixed input carries (its validation sheet's Notes): ``"3 cells fixed on the web page"``.

    The page says the same in its own words and language, so it leaves this note out.
    """
    return f"{count} cell{'s' if count != 1 else ''} fixed on the web page"
