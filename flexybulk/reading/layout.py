"""Which sheet and which header row to read, and which column is which field (pitfalls P12, P13, P15, P19).

Owns the header names (:data:`HEADER_SYNONYMS`, :data:`RESULT_COLUMNS`), the
``--column`` overrides, the choice of worksheet in a workbook (``--sheet``, or
the one visible sheet with a header), the header row among the first 20
non-empty rows (a title above it, merged header cells), and the map from
columns to :class:`~flexybulk.model.Field` names with its refusals (a column
with values but no header, two columns for one field, duplicate headers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Mapping

from flexybulk.errors import ConfigError, InputFileError
from flexybulk.model import Field

from .cells import clean_header, normalize_header
from .context import _Column, _Context, _Grid, _Header, _join_names, _quote, column_letter

if TYPE_CHECKING:
    from .engines import _Book

__all__ = ["HEADER_SYNONYMS", "RESULT_COLUMNS", "HEADER_SEARCH_ROWS"]


# --- header names (pitfalls P15) ---------------------------------------------

HEADER_SYNONYMS: dict[Field, tuple[str, ...]] = {
    Field.NAME: ("name", "full name", "navn", "fulde navn", "fuldt navn", "modtager", "modtagers navn",
                 "recipient", "recipient name"),
    Field.FIRST_NAME: ("first name", "fornavn", "vorname", "given name"),
    Field.LAST_NAME: ("last name", "efternavn", "nachname", "surname", "family name"),
    Field.EMAIL: ("email", "e-mail", "email address", "e-mailadresse", "emailadresse", "mail",
                  "primary email", "mailadresse", "e-post"),
    Field.TYPE: ("type", "gift certificate type", "gavekorttype", "gavekort", "korttype", "gift card type"),
    Field.AMOUNT: ("amount", "price", "beløb", "pris", "værdi", "value"),
    Field.QUANTITY: ("quantity", "qty", "antal", "antal stk", "stk"),
    Field.DEPARTMENT: ("department", "afdeling", "butik", "shop", "store"),
    Field.PHONE: ("phone", "telefon", "tlf", "mobil", "mobile", "phone number", "telefonnummer",
                  "tlf nr", "telefon nr", "mobilnummer", "mobile phone"),
    Field.ADDRESS: ("address", "adresse", "street address", "vejnavn", "street"),
    Field.POSTAL_CODE: ("postal code", "zip", "zip code", "postnr", "postnummer", "post nr", "postcode"),
    Field.CITY: ("city", "by", "postal district", "bynavn", "town", "postdistrikt"),
    Field.COUNTRY: ("country", "land", "country code", "landekode"),
    Field.CURRENCY: ("currency", "valuta"),
}
"""Built-in header names per field, Danish/English/Mailchimp/Thunderbird (pitfalls P15).

Matched after :func:`flexybulk.reading.cells.normalize_header`, so ``"E-mail"``,
``"EMAIL"`` and ``"e_mail"`` are one name.
"""

RESULT_COLUMNS: tuple[str, ...] = (
    "Status", "Error", "CustomerId", "SalesOrderId", "ExternalPaymentId",
    "GiftCertificateNumbers", "IssuedAt", "BatchId", "Row", "Warning", "AmountRead", "LineTotal",
)
"""Columns flexybulk writes into a result or validation sheet; never mapped to an input field,
passed through in ``InputRow.original`` so a result sheet can be read again for a retry."""

_SYNONYM_INDEX: dict[str, Field] = {
    normalize_header(name): fld for fld, names in HEADER_SYNONYMS.items() for name in names
}
_RESULT_KEYS = frozenset(normalize_header(name) for name in RESULT_COLUMNS)

_FIELD_LABELS = {
    Field.NAME: "Name", Field.FIRST_NAME: "First name", Field.LAST_NAME: "Last name",
    Field.EMAIL: "E-mail", Field.TYPE: "Gift certificate type", Field.AMOUNT: "Amount",
    Field.QUANTITY: "Quantity", Field.DEPARTMENT: "Department", Field.PHONE: "Phone",
    Field.ADDRESS: "Address", Field.POSTAL_CODE: "Postal code", Field.CITY: "City",
    Field.COUNTRY: "Country", Field.CURRENCY: "Currency",
}
_NAME_LIKE = (Field.NAME, Field.FIRST_NAME, Field.LAST_NAME)

HEADER_SEARCH_ROWS = 20  # pitfalls P12: the header may sit below a title


def _check_overrides(columns: Mapping[str, str]) -> dict[str, Field]:
    """``--column`` overrides as normalised header -> field; unknown field names are a usage error."""
    result: dict[str, Field] = {}
    for name, header in (columns or {}).items():
        if not normalize_header(header):
            raise ConfigError(f"--column {name}=...: give the header text of the column")
        try:
            fld = Field(str(name).strip().lower().replace("-", "_"))
        except ValueError:
            known = ", ".join(f.value for f in Field)
            raise ConfigError(f"--column {name}=...: unknown field '{name}'. Known fields: {known}") from None
        key = normalize_header(header)
        if key in result and result[key] is not fld:
            raise ConfigError(f"--column: '{header}' is given for both {result[key].value} and {fld.value}")
        result[key] = fld
    return result


# --- the worksheet (pitfalls P13) ------------------------------------------------


def _likely_sheet(book: _Book, wanted: str | None) -> str | None:
    """The sheet :func:`_choose_sheet` will most likely pick, known before any sheet is parsed."""
    worksheets = [s for s in book.sheets if s.is_worksheet]
    if wanted is not None:
        return next((s.name for s in worksheets if s.name == wanted), None)
    visible = [s.name for s in worksheets if s.visible]
    return visible[0] if len(visible) == 1 else None


def _template_lists(book: _Book, name: str) -> bool:
    """The hidden list sheet of a flexybulk template (its name and header row; :func:`flexybulk.template.is_template_lists`)."""
    from flexybulk.template import SHEET_NAMES, is_template_lists

    if name not in {names[2] for names in SHEET_NAMES.values()}:
        return False  # only a sheet of that name is opened
    try:
        grid = book.grid(name, nrows=1)
    except Exception:  # an unreadable hidden sheet is simply reported as before
        return False
    return bool(grid.rows) and is_template_lists(name, grid.rows[0])


def _choose_sheet(book: _Book, ctx: _Context, overrides: dict[str, Field]) -> tuple[str, _Grid, _Header]:
    """The worksheet to read: by ``--sheet``, else the one visible sheet with a header (pitfalls P13)."""
    name = _quote(ctx.path.name)
    worksheets = [s for s in book.sheets if s.is_worksheet]
    visible = [s.name for s in worksheets if s.visible]
    # LibreOffice keeps a hidden copy of each sheet an external reference reads ('file:///...'#Sheet), and a
    # flexybulk template keeps its dropdowns' lists on a hidden sheet: neither is the person's.
    hidden = [s.name for s in worksheets if not s.visible and not (s.name.startswith("'file:") and "'#" in s.name)
              and not _template_lists(book, s.name)]
    if ctx.opts.sheet is not None:
        wanted = ctx.opts.sheet
        match = next((s for s in worksheets if s.name == wanted), None)
        match = match or next((s for s in worksheets if s.name.casefold() == wanted.strip().casefold()), None)
        if match is None:
            raise InputFileError(
                f"{name} has no sheet {_quote(wanted)} — the sheets are: {', '.join(visible) or '(none visible)'}"
            )
        ctx.sheet_name = match.name
        if not match.visible:
            ctx.notes.append(f"Sheet {_quote(match.name)} is hidden in the workbook; read it because --sheet names it")
        grid = book.grid(match.name)
        header = _find_header(grid, overrides)
        if header is None:
            raise ctx.error(_no_header_message(grid))
        return match.name, grid, header

    if not visible:
        raise InputFileError(f"{name} has no visible worksheet — unhide the sheet with the recipients")
    single = len(visible) == 1
    found: list[tuple[str, _Grid, _Header]] = []
    for sheet_name in visible:
        # With several sheets, look at the top of each first; read the chosen one in full below.
        grid = book.grid(sheet_name) if single else book.grid(sheet_name, nrows=HEADER_SEARCH_ROWS * 5)
        header = _find_header(grid, overrides)
        if header is not None:
            found.append((sheet_name, grid, header))
    if hidden:
        ctx.notes.append(f"Hidden sheets were ignored: {', '.join(hidden)}")
    if not found:
        if single:
            ctx.sheet_name = visible[0]
            raise ctx.error(_no_header_message(book.grid(visible[0], nrows=HEADER_SEARCH_ROWS * 5)))
        raise InputFileError(
            f"{name}: none of the visible sheets ({', '.join(visible)}) has a header row with known column "
            "names such as Navn, E-mail, Beløb — add a header row, or choose the sheet with --sheet"
        )
    if len(found) > 1:
        names = ", ".join(item[0] for item in found)
        raise InputFileError(
            f"{name}: The workbook has {len(found)} possible sheets ({names}) — choose one with --sheet"
        )
    sheet_name, grid, header = found[0]
    if not single:
        ctx.sheet_name = sheet_name
        if len(grid.rows) >= HEADER_SEARCH_ROWS * 5:  # only the top was read: read it all
            grid = book.grid(sheet_name)
            header = _find_header(grid, overrides) or header
        if len(visible) > 1:
            ctx.notes.append(f"Read sheet {_quote(sheet_name)}, the only sheet with recipients")
    return sheet_name, grid, header


# --- header row (pitfalls P12, P15) ---------------------------------------------


def _field_for(key: str, overrides: dict[str, Field]) -> Field | None:
    if key in overrides:
        return overrides[key]
    if key in _RESULT_KEYS:
        return None
    return _SYNONYM_INDEX.get(key)


def _fill_merged_headers(grid: _Grid) -> set[tuple[int, int]]:
    """Copy each merged range's value over its span in the header search area (pitfalls P12).

    Returns the (row index, column index) of cells that got a copied value.
    """
    filled: set[tuple[int, int]] = set()
    limit = HEADER_SEARCH_ROWS * 5
    for (r0, c0), (r1, c1) in grid.merged:
        top, left = r0 - (grid.first_row - 1), c0 - grid.first_col
        if top < 0 or top >= min(limit, len(grid.rows)) or left < 0:
            continue
        value = grid.rows[top][left] if left < len(grid.rows[top]) else ""
        if value == "":
            continue
        for i in range(top, min(r1 - (grid.first_row - 1), limit, len(grid.rows) - 1) + 1):
            row = grid.rows[i]
            for j in range(left, min(c1 - grid.first_col, len(row) - 1) + 1):
                if (i, j) != (top, left) and row[j] == "":
                    row[j] = value
                    filled.add((i, j))
    return filled


def _is_blank(value: Any) -> bool:
    if value.__class__ is str:
        return not value or value.isspace()
    return value is None


def _is_blank_row(row: Iterable[Any]) -> bool:
    for value in row:
        if value.__class__ is str:
            if value and not value.isspace():
                return False
        elif value is not None:
            return False
    return True


def _find_header(grid: _Grid, overrides: dict[str, Field]) -> _Header | None:
    """The row among the first 20 non-empty ones that names the most known fields (pitfalls P12, P15).

    A header needs an email column, or a name column and one more known
    column; a one-column list with the header ``E-mail`` qualifies. Ties go
    to the earliest row.
    """
    if grid.filled is None:
        grid.filled = _fill_merged_headers(grid) if grid.merged else set()
    best: _Header | None = None
    seen = 0
    for index, row in enumerate(grid.rows):
        if seen >= HEADER_SEARCH_ROWS:
            break
        if _is_blank_row(row):
            continue
        seen += 1
        fields = set()
        for value in row:
            if value.__class__ is str and value:
                fld = _field_for(normalize_header(value), overrides)
                if fld is not None:
                    fields.add(fld)
        score = len(fields)
        acceptable = Field.EMAIL in fields or (score >= 2 and any(f in fields for f in _NAME_LIKE))
        if overrides and score >= 2:
            acceptable = True
        if acceptable and (best is None or score > best.score):
            best = _Header(index, score, fields)
    return best


def _no_header_message(grid: _Grid) -> str:
    first = next((row for row in grid.rows if not _is_blank_row(row)), None)
    if first is None:
        return ("the sheet is empty — put the recipients on it below a header row with column names such as Navn, "
                "E-mail, Beløb, Antal, or choose the sheet that has them with --sheet")
    shown = ", ".join(clean_header(v) for v in first if not _is_blank(v))[:200]
    return (
        f"no header row found in the first {HEADER_SEARCH_ROWS} rows — the first row with text has: {shown}. "
        "Add a header row with column names such as Navn, E-mail, Beløb, Antal, or name a column with --column"
    )


# --- columns to fields (pitfalls P12, P15, P19) ------------------------------------


def _map_columns(
    grid: _Grid,
    header_index: int,
    header_cells: list[Any],
    rows: list[list[Any]],
    numbers: list[int],
    width: int,
    filled: set[tuple[int, int]],
    ctx: _Context,
    overrides: dict[str, Field],
) -> list[_Column]:
    """Columns to keep, with their headers and fields (pitfalls P12, P15, P19)."""
    columns: list[_Column] = []
    for j in range(width):
        raw = header_cells[j] if j < len(header_cells) else ""
        text = clean_header(raw) if not _is_blank(raw) else ""
        letter = column_letter(grid.first_col + j)
        has_data = any(not _is_blank(row[j]) for row in rows if j < len(row))
        if not text:
            if has_data:
                first = next(numbers[i] for i, row in enumerate(rows) if j < len(row) and not _is_blank(row[j]))
                raise ctx.error(
                    f"Column {letter} has values but no header (first value on row {first}) — "
                    "give it a header or delete it"
                )
            continue  # an empty column, e.g. a trailing separator (pitfalls P19)
        if (header_index, j) in filled and not has_data:
            continue  # the tail of a merged header cell over an empty column (pitfalls P12)
        columns.append(_Column(j, text, letter))

    # Overrides first (pitfalls P15: the user's word wins), then built-in names.
    keys = [normalize_header(c.header) for c in columns]
    for key, fld in overrides.items():
        matches = [c for c, k in zip(columns, keys) if k == key]
        if not matches:
            wanted, header_text = next(
                (fname, text) for fname, text in ctx.opts.columns.items() if normalize_header(text) == key
            )
            raise ctx.error(
                f"--column {wanted}='{header_text}': there is no column '{header_text}'. "
                f"The headers are: {', '.join(c.header for c in columns)}"
            )
        if len(matches) > 1:
            raise ctx.error(
                f"Columns {_join_names([c.letter for c in matches])} both have the header '{matches[0].header}' — "
                "rename one of them"
            )
        matches[0].field = fld
    claimed = {c.field for c in columns if c.field is not None}
    by_field: dict[Field, list[_Column]] = {}
    for column, key in zip(columns, keys):
        if column.field is not None or key in overrides:
            continue
        fld = _field_for(key, {})
        if fld is None:
            continue
        if fld in claimed:
            ctx.notes.append(
                f"Column {column.letter} ('{column.header}') is not used as {_FIELD_LABELS[fld]}: "
                "--column chose another column"
            )
            continue
        by_field.setdefault(fld, []).append(column)
    for fld, cols in by_field.items():
        if len(cols) > 1:
            headers = {c.header for c in cols}
            if len(headers) == 1:  # --column names a header, so it cannot choose between two alike (a fresh user's find)
                raise ctx.error(f"Columns {_join_names([c.letter for c in cols])} both have the header "
                                f"'{cols[0].header}' — rename one of them, or delete the one that is not the "
                                f"{_FIELD_LABELS[fld].lower()}")
            shown = " (" + ", ".join(f"'{c.header}'" for c in cols) + ")"
            raise ctx.error(
                f"Columns {_join_names([c.letter for c in cols])} both look like '{_FIELD_LABELS[fld]}'{shown} — "
                f"delete or rename one, or choose one with --column {fld.value}=\"header\""
            )
        cols[0].field = fld

    seen: dict[str, _Column] = {}
    for column in columns:
        if column.header in seen:
            raise ctx.error(
                f"Columns {seen[column.header].letter} and {column.letter} have the same header "
                f"'{column.header}' — rename one of them"
            )
        seen[column.header] = column
    return columns

