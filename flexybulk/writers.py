"""Write an output sheet (the validation or result sheet) as XLSX or CSV, atomically.

XlsxWriter builds the workbook: styles, the Summary, the frame of each big
table (widths, frozen header, autofilter, page setup). The big tables' rows
(the Result/Validation sheet and "Needs attention") are laid out column by
column and rendered chunk by chunk by :mod:`flexybulk.output_layout` and
:mod:`flexybulk.output_cells`, and streamed into the final file where
XlsxWriter left a marker in their ``<sheetData>``, deflated in independent
pieces by other threads while the next rows render (:mod:`flexybulk.output_zip`).
XlsxWriter's own per-cell calls cost about 4 µs a cell: 6 s for a
100,000-row validation sheet, against a target of a fraction of the 1.4 s a
bare read of the same file takes (issue #13, benchmarks/README.md).

Safety (issue #6, OWASP "CSV Injection"; pitfalls P17): text is never written
as a formula. XLSX text cells are always strings, formula-like ones with the
quote prefix (:mod:`flexybulk.output_cells`; the Summary's through XlsxWriter's
``write_string``). CSV text cells beginning with ``= + - @``, a tab, CR or LF
get a leading ``'``; numbers are never prefixed. The reader strips that one
``'`` again.

Files are written to a temporary name in the same folder and renamed into
place (``os.replace``), so a crash never leaves half a sheet.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import io
import operator
import os
import tempfile
from datetime import date, datetime
from decimal import Decimal
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

from .output_cells import (  # noqa: F401 (Money, Heading, Label, STATUS_COLOURS, money_format: re-exported)
    ILLEGAL, MAX_TEXT, MAX_WIDTH, MIN_WIDTH, PAGE_WIDTH, STATUS_COLOURS, WRAP_WIDTH, Column, Heading, Label, Money,
    Styles, cell_parts, clean_column, column_letter, column_width, is_dangerous, money_format, number_text, render_column,
    row_heights,
)
from .errors import InputFileError
from .model import RowStatus
from .output_layout import TablePart
from .output_zip import package

if TYPE_CHECKING:  # the shapes live with their builders
    from .results import OutputSheet

# --- atomic write ------------------------------------------------------------------


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic GC off for a while: building a sheet makes a million objects and no cycles.

    Otherwise each of its collections walks every object alive, the input's
    rows and checks included (the reader and the validator do the same).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def write_output(sheet: "OutputSheet", path: Path) -> Path:
    """Write ``sheet`` to ``path`` (``.csv``/``.tsv``/``.txt`` as CSV, anything else as XLSX), atomically.

    Raises:
        InputFileError: the folder is not writable or the file is open elsewhere.
    """
    with gc_paused():
        return _write_output(sheet, path)


def _write_output(sheet: "OutputSheet", path: Path) -> Path:
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent or "."))
    except OSError as exc:
        raise InputFileError(f"Cannot write {path}: {exc.strerror}. Choose another place with --output.") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            if suffix in (".csv", ".tsv", ".txt"):
                _write_csv(sheet, fh, "\t" if suffix == ".tsv" else sheet.csv_delimiter)
            else:
                _write_xlsx(sheet, fh)
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp makes the file owner-only; give it the permissions any saved file gets (the umask's).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as exc:
        _remove(tmp)
        raise InputFileError(f"Cannot write {path}: {exc.strerror}. Close it if it is open in a spreadsheet program, or choose another place with --output.") from None
    except BaseException:
        _remove(tmp)
        raise
    return path


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


# --- XLSX -------------------------------------------------------------------------------


_CHUNK_ROWS = 512


class _TableWorksheet:
    """Mixin for an XlsxWriter worksheet whose rows flexybulk renders (:mod:`flexybulk.output_layout`).

    :meth:`set_table` takes the columns and the (increasing) sheet row number
    of each data row, numbers every style the cells will name, lays the
    columns out and sets the frame through
    XlsxWriter's own calls (widths, frozen header, autofilter). XlsxWriter's
    ``<sheetData>`` holds only :attr:`marker`; :func:`~flexybulk.output_zip.package` streams
    :meth:`xml_chunks` in its place.
    """

    def set_table(self, columns: list[Column], numbers: list[int], header_row: int, styles: Styles,
                  inputs: list[dict] | None = None) -> None:
        """``columns``' values, or ``None``: the value under the header in each of ``inputs`` (one dict a row)."""
        self._table = (columns, numbers, header_row, styles)
        self._inputs = inputs
        last_row = (numbers[-1] if numbers else header_row) - 1
        # The <dimension> XlsxWriter writes: the table's extent (0-based, as XlsxWriter keeps it).
        self.dim_rowmin, self.dim_rowmax = header_row - 1, last_row
        self.dim_colmin, self.dim_colmax = 0, max(len(columns) - 1, 0)
        for name in ("header", "quote", "wrap", "wrap_quote", "datetime", "date", "number"):
            styles.index(getattr(styles, name))
        for fmt in styles.status.values():
            styles.index(fmt)
        longest = self._lay_out(columns, numbers, styles)
        widths = []
        for j, col in enumerate(self._part.columns):  # as laid out: a column with line breaks now wraps
            cap = WRAP_WIDTH if col.kind == "wrap" else MAX_WIDTH
            width = max(MIN_WIDTH, min(cap, longest[j] + 1))
            widths.append(width)
            self.set_column(j, j, width, styles.wrap if col.kind == "wrap" else None)
        self._widths = widths
        self.freeze_panes(header_row, 0)
        self.autofilter(header_row - 1, 0, last_row, max(len(columns) - 1, 0))
        # Printed or turned into a PDF: landscape, the header row and the first column on every page, and
        # as many pages across as keep the text at about 70% or more (a row of ids is wide).
        self.set_landscape()
        self.set_paper(9)  # A4
        self.fit_to_pages(max(1, -(-sum(widths) // PAGE_WIDTH)), 0)
        self.repeat_rows(header_row - 1)
        if len(columns) > 1:
            self.repeat_columns(0)

    def _lay_out(self, columns: list[Column], numbers: list[int], styles: Styles) -> list[int]:
        """Lay the table out in this process; the columns' widest cells.

        (A second half rendered by a forked child was measured on the
        benchmark's 100,000 rows and gained nothing beyond the noise, and a fork
        inside the threaded web server is unsafe: one process it is.)
        """
        self._part = TablePart(columns, numbers, 0, len(numbers), self._inputs)
        return self._part.prepare(styles)

    def _write_sheet_data(self) -> None:  # XlsxWriter's hook for <sheetData>
        # Only a marker: the rows are streamed into the final file by output_zip.package, compressed as they come.
        self.fh.write(f"<sheetData>{self.marker}</sheetData>")

    @property
    def marker(self) -> str:
        """What ``<sheetData>`` holds in XlsxWriter's file: a comment naming this worksheet object."""
        return f"<!--flexybulk rows of table {id(self):x}-->"

    def xml_chunks(self) -> Iterator[bytes]:
        """The header row and the data rows as UTF-8 XML, a few thousand rows a piece."""
        columns, numbers, header_row, styles = self._table
        letters = [column_letter(j) for j in range(len(columns))]
        header_s = styles.index(styles.header)
        head = "".join(f'<c r="{letter}{header_row}" s="{header_s}" t="inlineStr"><is><t>{text}</t></is></c>'
                       for letter, text in zip(letters, clean_column([c.header for c in columns])[0]))
        yield f'<row r="{header_row}">{head}</row>'.encode()
        yield from self._part.chunks(self._widths, styles, _CHUNK_ROWS)
        # Written: the laid-out table is let go now, freed at once, not when the GC finds XlsxWriter's workbook
        # (a reference cycle) holding it (measured on 100,000 rows: 0.02 s here against 0.06 s in the GC).
        self._part = self._table = self._inputs = None


def _table_worksheet_class() -> type:
    from xlsxwriter.worksheet import Worksheet

    return type("TableWorksheet", (_TableWorksheet, Worksheet), {})


def _table_columns(sheet: "OutputSheet") -> tuple[list[Column], list[int], list[dict]]:
    """The table's columns, sheet row numbers and input rows; an input column's values are left in the rows (``None``)."""
    from .output_sheet import OutputRows

    headers = sheet.xlsx_headers
    own = set(sheet.own_columns) | set(sheet.typed_columns)
    kinds = sheet.kinds
    rows = sheet.rows
    if isinstance(rows, OutputRows):  # kept as columns: taken as they are
        inputs, numbers, given, currencies = rows.inputs, rows.numbers, rows.columns, rows.currencies
        extras = None
    else:
        inputs, numbers, given, currencies = [row.input_values for row in rows], [row.number for row in rows], {}, {}
        extras = [row.extra for row in rows]
    columns = []
    for h in headers:
        if h in given:
            values = given[h]
        elif h in own:
            values = list(map(dict.get, extras, repeat(h))) if extras is not None else [None] * len(numbers)
        else:
            values = None  # taken from the rows part by part (flexybulk.output_layout.TablePart)
        columns.append(Column(h, values, kinds.get(h, "plain"), currencies=currencies.get(h)))
    if not all(map(operator.lt, numbers, numbers[1:])) or (numbers and numbers[0] <= sheet.header_row):
        # A sorted result sheet given back is written line after line in its own order.
        numbers = list(range(sheet.header_row + 1, sheet.header_row + 1 + len(numbers)))
    return columns, numbers, inputs


def _write_summary(ws: Any, rows: Iterable[Sequence[Any]], styles: Styles) -> None:
    """The Summary: one line per row, labels bold; a table's numbers right under its bold column names."""
    widths: dict[int, int] = {}
    for r, line in enumerate(rows):
        for c, value in enumerate(line):
            # A text right after a (right-aligned) number starts a space in, not against it ("6The gift ...")
            # (a fresh user's find, in the PDF; date-times sit on the left: Styles.datetime).
            before = line[c - 1] if c else None
            indent = None
            if isinstance(value, str) and not isinstance(value, RowStatus) and not isinstance(before, bool) and \
                    isinstance(before, (int, float, Decimal, Money)):
                indent = styles.indented
            elif isinstance(value, Label) and not value.right and isinstance(before, Label) and before.right:
                indent = styles.bold_indented  # a column name after one over numbers
            width = _write_cell(ws, r, c, value, styles, indent) + (indent is not None)
            if c < len(line) - 1 or not isinstance(value, str):  # the last text may run over the empty cells
                widths[c] = max(widths.get(c, 0), width)
    for c, width in widths.items():
        ws.set_column(c, c, max(MIN_WIDTH, min(70 if c else 45, width + 2)))
    ws.fit_to_pages(1, 0)


class _Exact(float):
    """A number XlsxWriter writes as ``text`` (:func:`number_text`: the value's own digits), not ``%.16G``.

    ``%.16G`` writes 71868551.49 as ``71868551.48999999``: the same double,
    but not the text a reader taking the cell's text as a decimal expects;
    the big tables' cells are written from :func:`number_text` too.
    XlsxWriter formats a number cell with ``f"{number:.16G}"`` (xmlwriter).
    """

    def __new__(cls, text: str) -> "_Exact":
        number = super().__new__(cls, text)
        number.text = text
        return number

    def __format__(self, spec: str) -> str:
        return self.text if spec in (".16G", ".16g") else super().__format__(spec)


def _write_cell(ws: Any, r: int, c: int, value: Any, styles: Styles, look: Any = None) -> int:
    """One Summary cell through XlsxWriter's own calls; returns the characters it shows (for the width).

    ``look``: the format of a text or a label in place of its own (a formula-like text keeps its quote prefix).
    """
    if value is None:
        return 0
    if isinstance(value, Heading):
        ws.write_string(r, c, value.text, styles.heading)
        return 0  # a heading may run over the next cells
    if isinstance(value, Label):
        ws.write_string(r, c, value.text, look or (styles.bold_right if value.right else styles.bold))
        return len(value.text)
    if isinstance(value, RowStatus):
        ws.write_string(r, c, value.value, styles.status.get(value.value))
        return len(value.value)
    if isinstance(value, Money):
        text = number_text(value.amount)
        if text is not None:
            ws.write_number(r, c, _Exact(text), styles.money(value.currency))
            return len(text) + 8
        value = str(value.amount)
    if isinstance(value, bool):
        ws.write_boolean(r, c, value)
        return 5
    if isinstance(value, (datetime, date)):
        ws.write_datetime(r, c, value.replace(tzinfo=None) if isinstance(value, datetime) else value,
                          styles.datetime if isinstance(value, datetime) else styles.date)
        return 19
    if isinstance(value, (int, Decimal, float)):
        text = number_text(value)
        if text is not None:
            ws.write_number(r, c, _Exact(text), styles.number if isinstance(value, int) else None)
            return len(text) + 2
        value = str(value)
    text = ILLEGAL.sub("\ufffd", str(value))[:MAX_TEXT]
    if text:
        ws.write_string(r, c, text, styles.quote if is_dangerous(text) else look or (styles.bold if c == 0 else None))
    return len(text)


def _write_xlsx(sheet: "OutputSheet", fh: Any) -> None:
    import xlsxwriter

    # The frame: everything but the big tables' rows, small enough to build in memory.
    frame = io.BytesIO()
    # Every cell at the top of its row: in a row made tall by wrapped certificate numbers, the name and the
    # status beside them line up with the first line, not the last (Excel's default is the bottom).
    wb = xlsxwriter.Workbook(frame, {"in_memory": True, "strings_to_numbers": False,
                                     "strings_to_formulas": False, "strings_to_urls": False,
                                     "default_format_properties": {"font_name": "Calibri", "font_size": 11,
                                                                   "valign": "top"}})
    styles = Styles(wb)
    table_class = _table_worksheet_class()
    main = wb.add_worksheet(sheet.sheet_name[:31], worksheet_class=table_class)
    tables = [main]
    columns, numbers, inputs = _table_columns(sheet)
    main.set_table(columns, numbers, sheet.header_row, styles, inputs)
    summary = wb.add_worksheet("Summary")
    _write_summary(summary, sheet.summary, styles)
    if sheet.attention is not None:
        attention = wb.add_worksheet("Needs attention", worksheet_class=table_class)
        heads = list(sheet.attention_headers)
        cols = [Column(h, [line[j] for line in sheet.attention], sheet.attention_kinds.get(h, "plain"))
                for j, h in enumerate(heads)]
        attention.set_table(cols, list(range(2, 2 + len(sheet.attention))), 1, styles)
        tables.append(attention)
    main.activate()
    wb.close()
    package(frame, fh, tables)


# --- CSV -------------------------------------------------------------------------------


def _csv_text(value: Any, decimal_comma: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, RowStatus):
        return value.value
    if isinstance(value, Money):
        value = value.amount
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, Decimal)):
        text = str(value)
        return text.replace(".", ",") if decimal_comma else text
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    text = str(value)
    return "'" + text if is_dangerous(text) else text


def _write_csv(sheet: "OutputSheet", fh: Any, delimiter: str) -> None:
    # UTF-8 with BOM: Danish Excel reads it as UTF-8 only with the BOM (pitfalls P4).
    text = io.TextIOWrapper(fh, encoding="utf-8-sig", newline="")
    writer = csv.writer(text, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    decimal_comma = delimiter == ";"
    headers = sheet.headers
    writer.writerow([_csv_text(h, False) for h in headers])
    for row in sheet.rows:  # an OutputRows makes each row's dicts as it goes
        values = {**row.input_values, **row.extra}
        writer.writerow([_csv_text(values.get(h), decimal_comma) for h in headers])
    text.flush()
    text.detach()
