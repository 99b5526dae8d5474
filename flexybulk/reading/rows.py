"""From a sheet's cells and its header to the :class:`~flexybulk.model.Sheet`: the data rows with
their real row numbers, every cell parsed, row problems as data (pitfalls P1, P5, P9, P10, P11).

Owns the row rules: fully empty rows are left out but the numbers of the
others kept, the row limit, CSV records wider than the header, CSV lines that
use another separator, a CSV's error texts (``#N/A``) and cells garbled by a
DOS code page, rows that look empty only because their cells are formulas
without values, the hidden-row and hidden-column warnings, and the number
formats that pad postal codes and phones with zeros. The cells are worked on in blocks of
rows (:data:`_BLOCK_ROWS`) so that the passes over a block find its cells
still in the CPU cache; each column of a block is parsed by
:mod:`flexybulk.reading.columns`.
"""

from __future__ import annotations

import re
from decimal import Decimal
from itertools import chain, compress, count as _indices, repeat
from operator import is_
from typing import TYPE_CHECKING, Any, Iterable

from flexybulk.model import Field, InputRow, RowProblem, Sheet

from .amounts import AmountConvention, amount_convention as _column_convention
from .columns import _issue_problem, _issue_shown, _joined_text, _original_column, _parse_fields, _plain_original
from .context import ReadOptions, _Column, _Context, _Grid, _Header, _quote, column_letter
from .decoding import _dos_reading
from .layout import _is_blank_row, _map_columns
from .list_end import _cut_list
from .marks import _RECIPIENT_FIELDS, _Marks, _apply_marks, _keep_earlier_exclusions
from .ods_scan import _ods_marks
from .xls_extras import _xls_extras
from .xlsb_scan import _xlsb_marks
from .xlsx_marks import _external_books, _xlsx_marks

if TYPE_CHECKING:
    from .engines import _Book
    from .xlsx_scan import _XlsxParts

_BLOCK_ROWS = 1024  # rows worked on together in _build_sheet (tests make it small)


def _build_sheet(
    grid: _Grid,
    header: _Header,
    ctx: _Context,
    overrides: dict[str, Field],
    xlsx: _XlsxParts | None = None,
    book: _Book | None = None,
) -> Sheet:
    """Map columns, parse every cell, and assemble the :class:`Sheet` (all the row rules)."""
    is_csv = ctx.format == "csv"
    header_index = header.index
    header_row_number = grid.first_row + header_index
    if header_row_number != 1:
        ctx.notes.append(f"Header found on row {header_row_number}")

    header_cells = grid.rows[header_index]
    body = grid.rows[header_index + 1 :]
    filled = grid.filled or set()
    if filled:
        # The header search copied merged ranges' values over their span in its area; below the header a merged
        # range is not a value for each row (an amount merged over three rows is not three amounts): emptied
        # again, and each covered cell is named as a problem below (_flag_merged_cells).
        for i, j in filled:
            if i > header_index:
                grid.rows[i][j] = ""
        filled = {(i, j) for i, j in filled if i <= header_index}

    # Data rows: keep the real row numbers, drop fully empty rows (pitfalls P10).
    # A first cell with a value settles it without a call; only the others get the full check.
    kept: list[int] = [
        i for i, row in enumerate(body)
        if row and ((v := row[0]).__class__ is str and v and not v.isspace() or v is not None and v.__class__ is not str)
        or not _is_blank_row(row)
    ]
    kept = _cut_list(body, kept, header_cells, grid.first_row + header_index + 1, overrides, ctx)
    count = len(kept) + grid.uncounted_rows
    if count > ctx.opts.max_rows:
        # A limit the caller set is known to them; the default one is named with the option that raises it.
        raise ctx.error(
            f"the sheet has {count:,} data row{'s' if count != 1 else ''}; "
            f"the limit is {ctx.opts.max_rows:,} — split it into smaller files"
            + (", or raise the limit with --max-rows" if ctx.opts.max_rows == ReadOptions.max_rows else "")
        )
    if is_csv:
        _check_csv_widths(grid, header_index, header_cells, body, kept, ctx)
    rows = [body[i] for i in kept]
    first_data = grid.first_row + header_index + 1
    numbers = [first_data + i for i in kept]
    width = len(header_cells)
    other_separator: dict[int, str] = {}  # CSV: index of a row whose line uses another separator -> which
    if is_csv:  # short CSV records end early; long ones were checked above
        for i, row in enumerate(rows):
            if len(row) != width:
                if len(row) < width:
                    found = _other_separator(row, width, ctx.delimiter)
                    if found:
                        other_separator[i] = found
                row[:] = (row + [""] * width)[:width]

    columns = _map_columns(grid, header_index, header_cells, rows, numbers, width, filled, ctx, overrides)
    # The cells are worked on in blocks of rows, so that the several passes over a block's
    # cells find them still in the CPU cache (issue #4: the passes over 100,000 rows were
    # bound by memory, not by the Python code). Every rule below is per cell, per row or
    # per whole column, whatever the block size.
    size = max(1, _BLOCK_ROWS)
    spans = [(start, min(start + size, len(rows))) for start in range(0, len(rows), size)] or [(0, 0)]

    # Per column: its text joined once when every cell is text (None otherwise), for the
    # whole-column checks of the fast paths; a plain text column is its own original.
    block_originals: list[list[list[Any] | tuple[Any, ...]]] = []
    block_joined: list[list[str | None]] = []
    csv_errors: dict[tuple[int, int], tuple[str, ...]] = {}  # a CSV's error texts, exported from a sheet's error cells
    for start, end in spans:
        part = rows[start:end]
        column_values = list(zip(*part)) if part else [() for _ in range(width)]
        originals: list[list[Any] | tuple[Any, ...]] = []
        joined: list[str | None] = []
        for col in columns:
            values = column_values[col.index] if part else ()
            text = _joined_text(values)
            if is_csv and col.field is not None and ("#" in text or "Err:" in text if text is not None else True):
                _csv_error_cells(values, numbers[start:end], grid.first_col + col.index, csv_errors)
            plain = text is not None and _plain_original(text)
            originals.append(values if plain else _original_column(values))
            joined.append(text if plain else None)
        block_originals.append(originals)
        block_joined.append(joined)

    def whole(k: int) -> Iterable[Any]:
        """Column k's originals from top to bottom, across the blocks."""
        return chain.from_iterable(block[k] for block in block_originals)

    # Formula cells without a cached value and error cells (pitfalls P9); 0000 formats (P5).
    # The person's marks (issue #12): hidden and filtered-out rows, strike-through, links; values from other files.
    issues: dict[tuple[int, int], tuple[str, ...]] = csv_errors
    formats: dict[tuple[int, int], str] = {}
    marks = _Marks()
    if xlsx is not None:
        issues, formats = _xlsx_extras(xlsx, columns, [whole(k) for k in range(len(columns))], numbers, grid.first_col)
        _warn_hidden_columns(xlsx, columns, grid.first_col, ctx)
        marks = _xlsx_marks(xlsx)
    elif ctx.format == "xls":
        below = {Field.POSTAL_CODE: 1000, Field.PHONE: 10_000_000}
        want = _numeric_cells(columns, [whole(k) for k in range(len(columns))], numbers, grid.first_col, below)
        recipient = {grid.first_col + c.index for c in columns if c.field in _RECIPIENT_FIELDS}
        mapped = {grid.first_col + c.index for c in columns if c.field is not None}
        formats, marks, issues = _xls_extras(ctx, want, recipient, mapped)
    elif ctx.format == "ods":
        marks, issues = _ods_marks(ctx, ctx.archive)
    elif ctx.format == "xlsb":
        marks, issues = _xlsb_marks(ctx, ctx.archive, {grid.first_col + c.index for c in columns if c.field in _RECIPIENT_FIELDS},
                                    {grid.first_col + c.index for c in columns if c.field is not None})

    # The amount column's convention comes from all its text cells (pitfalls P1), so it is
    # decided over the whole column, once, when some block has a text amount.
    conventions: list[AmountConvention] = []

    def amount_convention(k: int) -> AmountConvention:
        if not conventions:
            conventions.append(_column_convention(whole(k)))
        return conventions[0]

    headers = [c.header for c in columns]
    letters = {c.header: c.letter for c in columns}
    column_map = {c.field.value: c.header for c in columns if c.field is not None}
    field_names = [(c.field.value, idx) for idx, c in enumerate(columns) if c.field is not None]
    has_name = Field.NAME.value in column_map
    join_names = not has_name and (Field.FIRST_NAME.value in column_map or Field.LAST_NAME.value in column_map)
    names = [fname for fname, _ in field_names]

    result_rows: list[InputRow] = []
    for (start, end), originals, joined in zip(spans, block_originals, block_joined):
        block_numbers = numbers[start:end]
        parsed, problems = _parse_fields(
            columns, originals, block_numbers, grid.first_col, issues, formats, joined, amount_convention
        )
        # Assemble rows column-wise in C-level loops (map, not a comprehension): one dict per row,
        # no per-cell Python branches.
        if columns:
            originals_by_row = list(map(dict, map(zip, repeat(headers), zip(*originals))))
        else:
            originals_by_row = [{} for _ in block_numbers]
        if names:
            field_columns = [parsed[idx] for _, idx in field_names]
            # dict(zip()) runs in C; only rows with an absent field need the filtering comprehension.
            # Absent fields are found by identity, per column, in C (`None in vals` would compare each value).
            fields_by_row = list(map(dict, map(zip, repeat(names), zip(*field_columns))))
            absent: set[int] = set()
            for values in field_columns:
                if any(map(is_, values, repeat(None))):
                    absent.update(compress(_indices(), map(is_, values, repeat(None))))
            for i in absent:
                fields_by_row[i] = {k: v for k, v in fields_by_row[i].items() if v is not None}
        else:
            fields_by_row = [{} for _ in block_numbers]
        # --department is applied by the validator, which can then name the option, not a column, in its messages.
        if join_names:
            for fields in fields_by_row:
                full = " ".join(p for p in (fields.get("first_name"), fields.get("last_name")) if p)
                if full:
                    fields["name"] = full
        row_problems: list[list[RowProblem]] = [[] for _ in block_numbers]
        for i, found in problems.items():
            row_problems[i] = found
        result_rows += map(InputRow, block_numbers, fields_by_row, originals_by_row, row_problems)

    if ctx.dos_encoded:
        _flag_dos_cells(result_rows, columns)
    if other_separator:
        _flag_other_separators(result_rows, other_separator, numbers, columns, ctx.delimiter)
    hidden_by_formulas = _rows_only_formulas(issues, columns, numbers, first_data, grid.first_col, ctx.list_stop)
    if hidden_by_formulas:
        result_rows = sorted(result_rows + hidden_by_formulas, key=lambda r: r.number)
    if grid.merged:
        _flag_merged_cells(result_rows, grid, header_row_number, columns)
    _apply_marks(result_rows, marks, columns, grid.first_col, ctx)
    _keep_earlier_exclusions(result_rows, headers, ctx)

    return Sheet(
        path=ctx.path,
        format=ctx.format,
        sheet_name=ctx.sheet_name,
        header_row=header_row_number,
        headers=headers,
        column_map=column_map,
        column_letters=letters,
        rows=result_rows,
        notes=ctx.notes,
        warnings=ctx.warnings,
        csv_delimiter=ctx.delimiter if is_csv else None,
        list_end=ctx.list_end,
        encoding=ctx.encoding,
        decode_doubt=ctx.decode_doubt,
    )


def _flag_merged_cells(rows: list[InputRow], grid: _Grid, header_row: int, columns: list[_Column]) -> None:
    """A problem on every empty recipient cell that a merged range covers below the header (its value is in the
    range's first cell only).

    Spreadsheet programs keep a merged range's value in its top-left cell;
    the other cells are empty. Copying it down would give every covered row
    the amount or department silently (a fresh user's find: an amount merged
    over three rows was read as three amounts); leaving them empty said "the
    amount is missing" or, across columns, "not a valid email address" without
    the cause. ``grid.merged``: ``((first row, first column), (last row, last
    column))``, 0-based sheet coordinates.
    """
    by_number = {r.number: r for r in rows}
    by_column = {grid.first_col + c.index: c for c in columns if c.field is not None}
    found: list[tuple[int, int, RowProblem]] = []
    for (r0, c0), (r1, c1) in grid.merged:
        if r1 + 1 <= header_row:
            continue
        first = f"{column_letter(c0)}{r0 + 1}"
        span = f"{first}:{column_letter(c1)}{r1 + 1}"
        for r in range(max(r0, header_row), r1 + 1):  # 0-based r: sheet row r + 1, below the header
            row = by_number.get(r + 1)
            if row is None or row.excluded is not None:
                continue
            for c in range(c0, c1 + 1):
                col = by_column.get(c)
                if (r, c) == (r0, c0) or col is None or row.original.get(col.header) not in (None, ""):
                    continue
                found.append((r, c, RowProblem(
                    r + 1, col.header, f"the cell is part of the merged cells {span}, whose value is in {first} only. "
                    "Unmerge the cells and write the value on each row.", None, col.letter)))
    for r, _, problem in sorted(found, key=lambda f: f[:2]):  # in row and column order, as the other problems
        by_number[r + 1].problems.append(problem)


_SEPARATOR_NAMES = {";": "';'", ",": "','", "\t": "a tab"}
_ERROR_TEXTS = frozenset(("#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A", "#GETTING_DATA"))
_LIBREOFFICE_ERROR = re.compile(r"Err:\d{3}|#N/A|#NAME\?|#NULL!|#DIV/0!|#VALUE!|#REF!|#NUM!")


def _csv_error_cells(values: Iterable[Any], numbers: list[int], col: int,
                     found: dict[tuple[int, int], tuple[str, ...]]) -> None:
    """A CSV's cells that are a spreadsheet's error text (``#N/A``, ``#DIV/0!``, LibreOffice's
    ``Err:502``): what an error cell becomes when its sheet is saved as CSV; cell issues (pitfalls P9)."""
    for number, value in zip(numbers, values):
        if value.__class__ is str and value and (value in _ERROR_TEXTS or _LIBREOFFICE_ERROR.fullmatch(value.strip())):
            found[(number, col)] = ("error", value.strip())


def _other_separator(row: list[Any], width: int, delimiter: str | None) -> str | None:
    """The separator a short CSV record's line seems to use instead of the file's (``Bo,bo@example.com,...``
    in a ``;`` file: one value holding the whole line), or ``None`` (pitfalls P2). The value is split
    with ``csv``, as the file was; it must give at least as many values as the header has, or three."""
    import csv

    values = [v for v in row if v and not v.isspace()]
    if len(values) != 1 or delimiter is None:
        return None
    for other in (";", ",", "\t"):
        if other != delimiter and other in values[0]:
            try:
                fields = next(csv.reader([values[0]], delimiter=other))
            except csv.Error:
                continue
            if len(fields) >= min(width, 3):
                return other
    return None


def _flag_other_separators(rows: list[InputRow], found: dict[int, str], numbers: list[int], columns: list[_Column],
                           delimiter: str | None) -> None:
    """A row problem, first of the row's, for each CSV line that seems to use another separator (pitfalls P2)."""
    by_number = {numbers[i]: other for i, other in found.items()}
    first = next((c for c in columns if c.index == 0), None)
    into = f"column {first.letter} ({first.header})" if first else "the first column"
    ours = _SEPARATOR_NAMES.get(delimiter or "", repr(delimiter))
    for row in rows:
        other = by_number.get(row.number)
        if other is not None:
            theirs = _SEPARATOR_NAMES[other]
            row.problems.insert(0, RowProblem(
                row.number, None,
                f"row {row.number} seems to separate its values with {theirs}, not {ours} like the rest of the file, "
                f"so the whole line is read into {into} — separate the values with {ours} as in the other rows",
                alone=True))


def _flag_dos_cells(rows: list[InputRow], columns: list[_Column]) -> None:
    """In a CSV that looks like code page 850 read as Windows-1252, each mapped cell that would read
    otherwise in cp850 (``S›ren`` -> ``Søren``) is a cell problem naming ``--encoding`` (:mod:`.decoding`)."""
    mapped = [c for c in columns if c.field is not None]
    for row in rows:
        for column in mapped:
            value = row.original.get(column.header)
            dos = _dos_reading(value) if value.__class__ is str else None
            if dos is not None:
                row.problems.append(RowProblem(
                    row.number, column.header,
                    f"'{value}' looks wrongly decoded: in code page 850 (an old DOS program's) it reads '{dos}' — "
                    "read the file with --encoding cp850", value, column.letter))


def _check_csv_widths(
    grid: _Grid, header_index: int, header_cells: list[Any], body: list[list[Any]], kept: list[int], ctx: _Context
) -> None:
    """A CSV row with values past the header's last column: a separator inside an unquoted value (pitfalls P2, P19)."""
    hw = len(header_cells)
    lines = grid.line_numbers or []
    for i in kept:
        row = body[i]
        if len(row) > hw and not _is_blank_row(row[hw:]):
            line = lines[header_index + 1 + i] if lines else header_index + 2 + i
            raise ctx.error(
                f"line {line} has {len(row)} values but the header has {hw} — a value probably contains the "
                "separator without quotes. Put quotes around that value or remove the extra separator "
                f"(Column {column_letter(hw)} has values but no header)"
            )



def _numeric_cells(
    columns: list[_Column], originals: list[list[Any]], numbers: list[int], first_col: int, below: dict[Field, int]
) -> set[tuple[int, int]]:
    """(row, column) of integer cells in the postal code/phone columns below a size (pitfalls P5)."""
    want: set[tuple[int, int]] = set()
    for column, values in zip(columns, originals):
        limit = below.get(column.field) if column.field is not None else None
        if limit is None:
            continue
        col = first_col + column.index
        want.update((numbers[i], col) for i, v in enumerate(values) if v.__class__ is int and 0 <= v < limit)
    return want


def _xlsx_extras(
    xlsx: _XlsxParts, columns: list[_Column], originals: list[list[Any]], numbers: list[int], first_col: int
) -> tuple[dict[tuple[int, int], tuple[str, ...]], dict[tuple[int, int], str]]:
    """Formula/error cells (pitfalls P9) and ``0000`` formats of numeric postal codes/phones (P5).

    The cell-by-cell pass over the sheet XML runs only when the cheap scan saw
    a formula or an error cell, or when the workbook defines a zero-padding
    number format and a postal code/phone column holds numbers.
    """
    xlsx.scan()
    xlsx.external = _external_books(xlsx.zf, _quote(xlsx.ctx.path.name))
    want: set[tuple[int, int]] = set()
    pad_styles = None
    if any(c.field in (Field.POSTAL_CODE, Field.PHONE) for c in columns):
        pad_styles = xlsx.zero_pad_styles()  # styles.xml is small; the cells are many
        if pad_styles:
            below = {Field.POSTAL_CODE: 10**9, Field.PHONE: 10**15}
            want = _numeric_cells(columns, originals, numbers, first_col, below)
    percent_styles: set[int] = set()
    amounts: dict[tuple[int, int], Any] = {}
    amount = next((c for c in columns if c.field is Field.AMOUNT), None)
    if amount is not None:
        percent_styles = xlsx.percent_styles()
        if percent_styles:  # an amount cell formatted as a percentage shows 50% for 0.5 (a fresh user's find)
            col = first_col + amount.index
            amounts = {(numbers[i], col): v for i, v in enumerate(originals[columns.index(amount)])
                       if v.__class__ in (int, float, Decimal)}
            want |= amounts.keys()
    issues: dict[tuple[int, int], tuple[str, ...]] = {}
    formats: dict[tuple[int, int], str] = {}
    if xlsx.has_formula_or_error or want:
        issues, styles = xlsx.cells(want)
        formats = {key: pad_styles[style] for key, style in styles.items() if pad_styles and style in pad_styles}
        for key, style in styles.items():
            if style in percent_styles and key in amounts and key not in issues:
                issues[key] = ("percent", format((Decimal(str(amounts[key])) * 100).normalize(), "f") + "%")
    return issues, formats


def _warn_hidden_columns(xlsx: _XlsxParts, columns: list[_Column], first_col: int, ctx: _Context) -> None:
    """Hidden columns are read like any other: say so (pitfalls P13). Hidden rows are marks (:mod:`.marks`)."""
    if xlsx.hidden_cols:
        hidden_cols = [c for c in columns if first_col + c.index in xlsx.hidden_cols]
        if hidden_cols:
            ctx.warnings.append(
                f"{ctx.where}: hidden column{'s' if len(hidden_cols) > 1 else ''} "
                f"{', '.join(f'{c.letter} ({c.header})' for c in hidden_cols)} will be read too — unhide to check"
            )


def _rows_only_formulas(
    issues: dict[tuple[int, int], tuple[str, ...]],
    columns: list[_Column],
    numbers: list[int],
    first_data: int,
    first_col: int,
    stop: int | None = None,
) -> list[InputRow]:
    """Rows that look empty only because their mapped cells are formulas without values or errors.

    Such a row must not vanish (pitfalls P9): it comes back with a problem per
    cell. Formulas in unmapped columns of otherwise empty rows (a template's
    Total column filled down) leave the row empty and skipped. Rows from
    ``stop`` on are below the list's end and not read.
    """
    if not issues:
        return []
    by_col = {first_col + c.index: c for c in columns}
    kept = set(numbers)
    rows = sorted({r for (r, col) in issues if r >= first_data and r not in kept and (stop is None or r < stop)
                   and col in by_col and by_col[col].field is not None})
    result = []
    for row in rows:
        original = {c.header: None for c in columns}
        problems = []
        for col_abs, column in sorted(by_col.items()):
            if (row, col_abs) in issues:
                issue = issues[(row, col_abs)]
                problems.append(_issue_problem(column, row, col_abs, *issue))
                shown = _issue_shown(issue)
                if shown is not None:
                    original[column.header] = shown
        result.append(InputRow(row, {}, original, problems))
    return result

