"""Write an output sheet (the validation or result sheet) as XLSX or CSV, atomically; the sheets' looks.

What a person sees in the XLSX (issue #13): a bold, frozen header with an
autofilter over the table, column widths fitted to the content (capped), a
fill colour per status (ISSUED/VALID green, FAILED/INVALID red,
UNKNOWN/PENDING amber, SKIPPED/EXCLUDED grey), wrapped Error text, amounts as
numbers in the currency's number format and times as date-time cells. Input
values are written exactly as read.

XlsxWriter builds the workbook: styles, the Summary, the sheet frame
(widths, frozen panes, autofilter). The rows of the big
tables (the Result/Validation sheet and "Needs attention") are rendered here,
column by column, into the worksheet's ``<sheetData>`` by one subclass hook
(:class:`_TableWorksheet`): XlsxWriter's per-cell calls cost about 4 µs a cell,
6 s for a 100,000-row validation sheet, against a target of a fraction of
the 1.5-2.5 s a bare read of the same file takes (benchmarks/README.md).

Cells (ECMA-376 part 1, 18.3.1.4 ``c``): text as inline strings
(``t="inlineStr"``), XML-escaped, with the characters XML 1.0 cannot hold
shown as U+FFFD; numbers as the shortest text that gives back the same
value (``str`` of the ``Decimal`` read, ``repr`` of a float), so an amount
reads back exactly; date-times as Excel serial days with a date style.

Safety (issue #6, OWASP "CSV Injection"; pitfalls P17): text is never written
as a formula. XLSX text cells are always strings, and those beginning with
``= + - @``, a tab, CR or LF also get Excel's quote-prefix style (what Excel
itself does for ``'=...``). CSV text cells beginning with those characters
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
import itertools
import math
import os
import queue
import re
import tempfile
import threading
from dataclasses import dataclass
from datetime import date, datetime, time as dtime
from decimal import Decimal
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, NamedTuple, Sequence

from .errors import InputFileError
from .model import RowStatus

if TYPE_CHECKING:  # the shapes live with their builders
    from .results import OutputSheet

# OWASP's list, plus a line feed: XML readers turn a leading CR into LF, and it must stay neutralised.
_DANGEROUS_START = ("=", "+", "-", "@", "\t", "\r", "\n")

# Status -> (fill, font colour): Excel's own "Good", "Bad", "Neutral" cell styles, and a grey.
STATUS_COLOURS: dict[str, tuple[str, str]] = {
    "ISSUED": ("#C6EFCE", "#006100"), "VALID": ("#C6EFCE", "#006100"),
    "FAILED": ("#FFC7CE", "#9C0006"), "INVALID": ("#FFC7CE", "#9C0006"),
    "UNKNOWN": ("#FFEB9C", "#9C5700"), "PENDING": ("#FFEB9C", "#9C5700"),
    "SKIPPED": ("#E7E6E6", "#3A3A3A"), "EXCLUDED": ("#E7E6E6", "#3A3A3A"),
}
HEADER_FILL = "#DDEBF7"

MAX_WIDTH = 50  # characters; longer text is cut at the cell edge (wrapped in the wrap columns)
WRAP_WIDTH = 60
MIN_WIDTH = 6
FILTER_BUTTON = 3  # the autofilter's arrow sits on the header text
PAGE_WIDTH = 180  # characters of column width on an A4 landscape page at about 70%

DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
DATE_FORMAT = "yyyy-mm-dd"
_EPOCH = datetime(1899, 12, 30)  # Excel's day 0 (1900 date system, after the 1900 leap-year bug)

# Characters XML 1.0 cannot hold (openpyxl's ILLEGAL_CHARACTERS_RE, plus the non-characters FFFE/FFFF).
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_ILLEGAL_BUT_NUL = re.compile(r"[\x01-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_MAX_TEXT = 32767  # Excel's limit of characters in a cell


def is_dangerous(text: str) -> bool:
    """True when a spreadsheet program could take ``text`` for a formula (OWASP CSV injection)."""
    return text.startswith(_DANGEROUS_START)


class Money(NamedTuple):
    """An amount in a currency: a number cell with the currency's number format (``Decimal`` amount).

    A named tuple: a result sheet makes two per row, and a tuple is the cheapest object to make.
    """

    amount: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class Heading:
    """A Summary line that starts a section: bold, alone on its row."""

    text: str


@dataclass(frozen=True, slots=True)
class Label:
    """A bold Summary cell: a label before its value, or a table's column name (``right``: over numbers)."""

    text: str
    right: bool = False


def money_format(currency: str) -> str:
    """Excel number format for an amount in ``currency``: ``#,##0.00 "DKK"`` (separators follow the reader's locale)."""
    code = "".join(ch for ch in currency if ch.isalnum())[:8] or "?"
    return f'#,##0.00 "{code}"'


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


# --- XLSX -----------------------------------------------------------------------------


class _Styles:
    """The workbook's cell formats, created once; ``index(fmt)`` is the style number a rendered cell names."""

    def __init__(self, wb: Any) -> None:
        self.wb = wb
        self.header = wb.add_format({"bold": True, "bg_color": HEADER_FILL, "bottom": 1})
        self.bold = wb.add_format({"bold": True})
        self.bold_right = wb.add_format({"bold": True, "align": "right"})
        self.heading = wb.add_format({"bold": True, "font_size": 13})
        self.quote = wb.add_format({"quote_prefix": True})
        self.wrap = wb.add_format({"text_wrap": True})
        self.wrap_quote = wb.add_format({"text_wrap": True, "quote_prefix": True})
        self.datetime = wb.add_format({"num_format": DATETIME_FORMAT})
        self.date = wb.add_format({"num_format": DATE_FORMAT})
        self.number = wb.add_format({"num_format": "#,##0"})
        self.status = {s: wb.add_format({"bg_color": fill, "font_color": font})
                       for s, (fill, font) in STATUS_COLOURS.items()}
        self._money: dict[str, Any] = {}

    def money(self, currency: str) -> Any:
        fmt = self._money.get(currency)
        if fmt is None:
            fmt = self._money[currency] = self.wb.add_format({"num_format": money_format(currency)})
        return fmt

    @staticmethod
    def index(fmt: Any) -> int:
        # XlsxWriter numbers a format when a cell first uses it; the rendered cells name it directly.
        return fmt._get_xf_index()


def _excel_serial(value: datetime | date) -> float:
    """Days since Excel's epoch (local wall time: a time zone is dropped, as Excel has none)."""
    if isinstance(value, datetime):
        naive = value.replace(tzinfo=None)
    else:
        naive = datetime.combine(value, dtime())
    delta = naive - _EPOCH
    return delta.days + (delta.seconds + delta.microseconds / 1e6) / 86400


def _number_text(value: Any) -> str | None:
    """The ``<v>`` text of a numeric cell that reads back as exactly ``value``; ``None`` if no number can hold it."""
    cls = value.__class__
    if cls is int:
        return str(value) if -(10**15) < value < 10**15 else None
    if cls is Decimal:
        if not value.is_finite() or not -300 < value.adjusted() < 300:
            return None
        return str(value)
    if cls is float:
        return repr(value) if math.isfinite(value) else None
    return None


def _xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# Past the first text of a joined column, one that starts like a formula (quote prefix) or starts or ends
# with whitespace (xml:space). Led by the joiner, so the regex engine scans for it at C speed.
_NEEDS_CARE = re.compile(r"\x00(?:[=+\-@\s]|(?<=\s\x00))")


def _clean_column(texts: list[str]) -> tuple[list[str], bool]:
    """``texts`` cut at Excel's limit, the characters XML cannot hold shown as U+FFFD, ``& < >`` escaped.

    Also says whether any text needs a look of its own (formula-like start,
    whitespace at an end). Done on the whole column joined: a few C-speed
    passes instead of calls per cell; a column holding NUL, the joiner, goes
    cell by cell.
    """
    if not texts:
        return texts, False
    if max(map(len, texts)) > _MAX_TEXT:
        texts = [t[:_MAX_TEXT] for t in texts]  # before escaping: a cut must not split an &amp;
    blob = "\x00".join(texts)
    if blob.count("\x00") != len(texts) - 1:
        return [_xml_text(_ILLEGAL.sub("\ufffd", t)) for t in texts], True
    care = (blob.startswith(_DANGEROUS_START) or blob[:1].isspace() or blob[-1:].isspace()
            or _NEEDS_CARE.search(blob) is not None)
    if _ILLEGAL_BUT_NUL.search(blob):
        blob = _ILLEGAL_BUT_NUL.sub("\ufffd", blob)
    if "&" in blob or "<" in blob or ">" in blob:
        blob = _xml_text(blob)
    return blob.split("\x00"), care


@dataclass
class _Column:
    """One column of a table to render: header, a value per row, how it looks."""

    header: str
    values: list
    kind: str = "plain"  # plain, status, wrap, int


_NONE = type(None)
_LETTER = re.compile(r"[A-Za-z]")  # in a number's text: NaN, Infinity or an exponent - the careful path


def _column_width(col: _Column, styles: _Styles) -> int:
    """Characters the column's widest cell shows (capped later); numbers the money styles it will use."""
    values = col.values
    kinds = set(map(type, values)) - {_NONE}
    longest = 0
    if kinds <= {str}:
        longest = max(map(len, filter(None, values)), default=0)
    elif kinds <= {str, int, Decimal, float}:
        # Distinct values first: amounts, quantities and codes repeat. A None counts as "None", below MIN_WIDTH.
        longest = max(map(len, map(str, set(values))), default=0)
        if col.kind == "int":
            longest += longest // 3
    elif kinds == {RowStatus}:
        longest = max(len(v.value) for v in set(values) if v is not None)
    elif kinds and all(issubclass(k, (datetime, date)) for k in kinds):
        longest = 19 if any(issubclass(k, datetime) for k in kinds) else 10
    elif kinds == {Money}:
        present = [v for v in values if v is not None]
        currencies = {m.currency for m in present}
        for currency in currencies:
            styles.index(styles.money(currency))
        digits = max(map(len, map(str, (m.amount for m in present))))
        longest = digits + digits // 3 + 3 + max(map(len, currencies))  # separators, decimals, " DKK"
    else:
        for v in values:
            cls = v.__class__
            if v is None:
                continue
            if cls is str:
                longest = max(longest, len(v))
            elif cls is Money:
                styles.index(styles.money(v.currency))
                longest = max(longest, len(str(v.amount)) + len(v.currency) + 5)
            elif isinstance(v, datetime):
                longest = max(longest, 19)
            elif isinstance(v, date):
                longest = max(longest, 10)
            else:
                text = v.value if cls is RowStatus else str(v)
                longest = max(longest, len(text) + (len(text) // 3 if col.kind == "int" else 0))
    return max(len(col.header) + FILTER_BUTTON, longest)


def _render_column(col: _Column, letter: str, numbers: list[int], values: list, styles: _Styles) -> list[str]:
    """The ``<c>`` elements of one column's ``values`` on sheet rows ``numbers`` (``""`` for an empty cell).

    Cells are rendered a type at a time (:func:`_cells`): one list
    comprehension per type instead of a chain of tests per cell; a column
    of one type and no gaps is a single batch.
    """
    kinds = set(map(type, values))
    if len(kinds) == 1 and _NONE not in kinds and (str not in kinds or all(values)):
        return _cells(kinds.pop(), values, letter, numbers, col.kind, styles)
    kinds.discard(_NONE)
    out = [""] * len(values)
    for cls in kinds:  # one pass per type present (a comprehension each), not a branch per cell
        where = ([i for i, v in enumerate(values) if v.__class__ is str and v] if cls is str
                 else [i for i, v in enumerate(values) if v.__class__ is cls])
        cells = _cells(cls, [values[i] for i in where], letter, [numbers[i] for i in where], col.kind, styles)
        for i, cell in zip(where, cells):
            out[i] = cell
    return out


def _cells(cls: type, values: list, letter: str, numbers: list[int], kind: str, styles: _Styles) -> list[str]:
    """The ``<c>`` elements of ``values``, all of class ``cls`` and none empty, in column ``letter`` on rows ``numbers``."""
    if cls is str:
        return _text_cells(values, letter, numbers, kind, styles)
    if cls is RowStatus:
        return _text_cells([v.value for v in values], letter, numbers, kind, styles)
    if cls is Money:
        texts = _number_texts([m.amount for m in values])
        style = {c: styles.index(styles.money(c)) for c in {m.currency for m in values}}
        if texts is not None:
            return [f'<c r="{letter}{n}" s="{style[m.currency]}"><v>{t}</v></c>' for n, m, t in zip(numbers, values, texts)]
        out = []
        for n, m in zip(numbers, values):  # some amount no number can hold (NaN, 1E+400): shown as text
            text = _number_text(m.amount)
            out.append(f'<c r="{letter}{n}" s="{style[m.currency]}"><v>{text}</v></c>' if text is not None
                       else _text_cells([str(m.amount)], letter, [n], kind, styles)[0])
        return out
    if cls is bool:
        return [f'<c r="{letter}{n}" t="b"><v>{int(v)}</v></c>' for n, v in zip(numbers, values)]
    if cls in (int, Decimal, float):
        s = f' s="{styles.index(styles.number)}"' if kind == "int" else ""
        texts = _number_texts(values)
        if texts is not None:
            return [f'<c r="{letter}{n}"{s}><v>{t}</v></c>' for n, t in zip(numbers, texts)]
        out = []
        for n, v in zip(numbers, values):  # some value no number can hold (NaN, 1E+400): shown as text
            text = _number_text(v)
            out.append(f'<c r="{letter}{n}"{s}><v>{text}</v></c>' if text is not None
                       else _text_cells([str(v)], letter, [n], kind, styles)[0])
        return out
    if issubclass(cls, (datetime, date)):
        style = styles.index(styles.datetime if issubclass(cls, datetime) else styles.date)
        serials = {v: repr(_excel_serial(v)) for v in set(values) if v.year >= 1900}  # a batch's rows share seconds
        return [f'<c r="{letter}{n}" s="{style}"><v>{serials[v]}</v></c>' if v in serials
                else _text_cells([v.isoformat()], letter, [n], kind, styles)[0] for n, v in zip(numbers, values)]
    return _text_cells([str(v) for v in values], letter, numbers, kind, styles)


def _number_texts(values: list) -> list[str] | None:
    """The ``<v>`` texts of numbers (``int``, ``Decimal``, ``float``), or ``None`` if any needs :func:`_number_text`."""
    texts = [repr(v) if v.__class__ is float else str(v) for v in values]
    if not texts:
        return texts
    if _LETTER.search("".join(texts)) or max(map(len, texts)) > 15:
        return None  # NaN, Infinity, an exponent, an int past a double's 15 digits, a long Decimal
    return texts


def _text_cells(texts: list[str], letter: str, numbers: list[int], kind: str, styles: _Styles) -> list[str]:
    """Inline-string cells; formula-like text gets the quote prefix, a status its colour, wrap columns wrap."""
    cleaned, care = _clean_column(texts)
    wrap = kind == "wrap"
    plain = styles.index(styles.wrap) if wrap else 0
    if not care:
        if kind == "status":
            fills = {t: f' s="{styles.index(styles.status[t])}"' if t in styles.status else "" for t in set(texts)}
            return [f'<c r="{letter}{n}"{fills[raw]} t="inlineStr"><is><t>{t}</t></is></c>'
                    for n, raw, t in zip(numbers, texts, cleaned)]
        s = f' s="{plain}"' if plain else ""
        return [f'<c r="{letter}{n}"{s} t="inlineStr"><is><t>{t}</t></is></c>' for n, t in zip(numbers, cleaned)]
    quote = styles.index(styles.wrap_quote if wrap else styles.quote)
    status_style = {s: styles.index(f) for s, f in styles.status.items()} if kind == "status" else {}
    out = []
    for n, raw, text in zip(numbers, texts, cleaned):
        if raw.startswith(_DANGEROUS_START):
            style = quote
        else:
            style = status_style.get(raw, plain)
        s = f' s="{style}"' if style else ""
        space = "" if raw.strip() is raw else ' xml:space="preserve"'
        out.append(f'<c r="{letter}{n}"{s} t="inlineStr"><is><t{space}>{text}</t></is></c>')
    return out


def _row_heights(wrapped: list[tuple[list, int]]) -> dict[int, str]:
    """Row index -> the ``<row>`` attributes giving it room for its wrapped text (rows that need more than one line).

    Neither Excel nor LibreOffice grows a row for wrapped text when it opens
    a file, so the height is set: lines estimated from the text's length at
    the column's width (words wrap a little earlier: 90%), 15 points a line.
    """
    lines: dict[int, int] = {}
    for values, width in wrapped:
        fits = max(1, int(width * 0.9))
        for i, v in enumerate(values):
            if v.__class__ is str and (len(v) > fits or "\n" in v):
                n = sum(-(-len(part) // fits) or 1 for part in v.split("\n"))
                if n > lines.get(i, 1):
                    lines[i] = n
    return {i: f' ht="{min(409, 15 * n)}" customHeight="1"' for i, n in lines.items()}


def _column_letter(index: int) -> str:
    """0 -> ``A``, 26 -> ``AA``."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


_CHUNK_ROWS = 4096


class _TableWorksheet:
    """Mixin for an XlsxWriter worksheet whose rows are rendered by :func:`_render_column`.

    :meth:`set_table` takes the columns and the (increasing) sheet row number
    of each data row, sets the frame through XlsxWriter's own calls (widths,
    frozen header, autofilter) and numbers every style the cells will name;
    the header and the rows are rendered into ``<sheetData>``, a slice of
    rows at a time, when XlsxWriter assembles the sheet.
    """

    def set_table(self, columns: list[_Column], numbers: list[int], header_row: int, styles: _Styles) -> None:
        self._table = (columns, numbers, header_row, styles)
        last_row = (numbers[-1] if numbers else header_row) - 1
        # The <dimension> XlsxWriter writes: the table's extent (0-based, as XlsxWriter keeps it).
        self.dim_rowmin, self.dim_rowmax = header_row - 1, last_row
        self.dim_colmin, self.dim_colmax = 0, max(len(columns) - 1, 0)
        for name in ("header", "quote", "wrap", "wrap_quote", "datetime", "date", "number"):
            styles.index(getattr(styles, name))
        for fmt in styles.status.values():
            styles.index(fmt)
        widths = []
        for j, col in enumerate(columns):
            cap = WRAP_WIDTH if col.kind == "wrap" else MAX_WIDTH
            width = max(MIN_WIDTH, min(cap, _column_width(col, styles) + 1))
            widths.append(width)
            self.set_column(j, j, width, styles.wrap if col.kind == "wrap" else None)
        self._wrapped = [(col, width - 1) for col, width in zip(columns, widths) if col.kind == "wrap"]
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

    def _write_sheet_data(self) -> None:  # XlsxWriter's hook for <sheetData>
        # Only a marker: the rows are streamed into the final file by _package, compressed as they come.
        self.fh.write(f"<sheetData>{self.marker}</sheetData>")

    @property
    def marker(self) -> str:
        """What ``<sheetData>`` holds in XlsxWriter's file: a comment naming this worksheet object."""
        return f"<!--flexybulk rows of table {id(self):x}-->"

    def xml_chunks(self) -> Iterator[bytes]:
        """The header row and the data rows as UTF-8 XML, a few thousand rows a piece."""
        columns, numbers, header_row, styles = self._table
        letters = [_column_letter(j) for j in range(len(columns))]
        header_s = styles.index(styles.header)
        head = "".join(f'<c r="{letter}{header_row}" s="{header_s}" t="inlineStr"><is><t>{text}</t></is></c>'
                       for letter, text in zip(letters, _clean_column([c.header for c in columns])[0]))
        yield f'<row r="{header_row}">{head}</row>'.encode()
        for start in range(0, len(numbers), _CHUNK_ROWS):
            part = numbers[start:start + _CHUNK_ROWS]
            cells = [_render_column(col, letter, part, col.values[start:start + _CHUNK_ROWS], styles)
                     for col, letter in zip(columns, letters)]
            heights = _row_heights([(col.values[start:start + _CHUNK_ROWS], width) for col, width in self._wrapped])
            yield "".join([f'<row r="{n}"{heights.get(i, "")}>{"".join(row)}</row>'
                           for i, (n, row) in enumerate(zip(part, zip(*cells)))]).encode()


def _table_worksheet_class() -> type:
    from xlsxwriter.worksheet import Worksheet

    return type("TableWorksheet", (_TableWorksheet, Worksheet), {})


def _table_columns(sheet: "OutputSheet") -> tuple[list[_Column], list[int]]:
    headers = sheet.xlsx_headers
    own = set(sheet.own_columns) | set(sheet.typed_columns)
    kinds = sheet.kinds
    columns = []
    extras = [row.extra for row in sheet.rows]
    inputs = [row.input_values for row in sheet.rows]
    for h in headers:
        values = list(map(dict.get, extras if h in own else inputs, repeat(h)))
        columns.append(_Column(h, values, kinds.get(h, "plain")))
    numbers = [row.number for row in sheet.rows]
    if any(b <= a for a, b in zip(numbers, numbers[1:])) or (numbers and numbers[0] <= sheet.header_row):
        # A sorted result sheet given back is written line after line in its own order.
        numbers = list(range(sheet.header_row + 1, sheet.header_row + 1 + len(numbers)))
    return columns, numbers


def _write_summary(ws: Any, rows: Iterable[Sequence[Any]], styles: _Styles) -> None:
    """The Summary: one line per row, labels bold; a table's numbers right under its bold column names."""
    widths: dict[int, int] = {}
    for r, line in enumerate(rows):
        for c, value in enumerate(line):
            width = _write_cell(ws, r, c, value, styles)
            if c < len(line) - 1 or not isinstance(value, str):  # the last text may run over the empty cells
                widths[c] = max(widths.get(c, 0), width)
    for c, width in widths.items():
        ws.set_column(c, c, max(MIN_WIDTH, min(70 if c else 45, width + 2)))
    ws.fit_to_pages(1, 0)


def _write_cell(ws: Any, r: int, c: int, value: Any, styles: _Styles) -> int:
    """One Summary cell through XlsxWriter's own calls; returns the characters it shows (for the width)."""
    if value is None:
        return 0
    if isinstance(value, Heading):
        ws.write_string(r, c, value.text, styles.heading)
        return 0  # a heading may run over the next cells
    if isinstance(value, Label):
        ws.write_string(r, c, value.text, styles.bold_right if value.right else styles.bold)
        return len(value.text)
    if isinstance(value, RowStatus):
        ws.write_string(r, c, value.value, styles.status.get(value.value))
        return len(value.value)
    if isinstance(value, Money):
        text = _number_text(value.amount)
        if text is not None:
            ws.write_number(r, c, float(text), styles.money(value.currency))
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
        text = _number_text(value)
        if text is not None:
            ws.write_number(r, c, float(text), styles.number if isinstance(value, int) else None)
            return len(text) + 2
        value = str(value)
    text = _ILLEGAL.sub("\ufffd", str(value))[:_MAX_TEXT]
    if text:
        ws.write_string(r, c, text, styles.quote if is_dangerous(text) else (styles.bold if c == 0 else None))
    return len(text)


def _write_xlsx(sheet: "OutputSheet", fh: Any) -> None:
    import xlsxwriter

    # The frame: everything but the big tables' rows, small enough to build in memory.
    frame = io.BytesIO()
    wb = xlsxwriter.Workbook(frame, {"in_memory": True, "strings_to_numbers": False,
                                     "strings_to_formulas": False, "strings_to_urls": False})
    styles = _Styles(wb)
    table_class = _table_worksheet_class()
    main = wb.add_worksheet(sheet.sheet_name[:31], worksheet_class=table_class)
    columns, numbers = _table_columns(sheet)
    main.set_table(columns, numbers, sheet.header_row, styles)
    tables = [main]
    summary = wb.add_worksheet("Summary")
    _write_summary(summary, sheet.summary, styles)
    if sheet.attention is not None:
        attention = wb.add_worksheet("Needs attention", worksheet_class=table_class)
        heads = list(sheet.attention_headers)
        cols = [_Column(h, [line[j] for line in sheet.attention], sheet.attention_kinds.get(h, "plain"))
                for j, h in enumerate(heads)]
        attention.set_table(cols, list(range(2, 2 + len(sheet.attention))), 1, styles)
        tables.append(attention)
    main.activate()
    wb.close()
    _package(frame, fh, tables)


def _package(frame: io.BytesIO, fh: Any, tables: list) -> None:
    """Copy XlsxWriter's workbook into ``fh``, each table sheet with its rows streamed in at its marker.

    The rows are rendered here (Python, holding the GIL) while a second
    thread deflates what is ready (zlib lets go of the GIL), so compressing
    costs little wall time on a machine with two cores.
    """
    import zipfile

    # Level 1: a third of level 6's time for a file a fifth larger (a 100,000-row sheet: 0.25 s, 10 MiB).
    with zipfile.ZipFile(frame) as src, zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as out:
        for info in src.infolist():
            data = src.read(info)
            table = next((t for t in tables if t.marker.encode() in data), None)
            if table is None:
                out.writestr(info.filename, data)  # by name: the ZipFile's compression and level apply
                continue
            head, tail = data.split(table.marker.encode())
            with out.open(info.filename, "w") as member:
                _pipe(member, itertools.chain([head], table.xml_chunks(), [tail]))


def _pipe(member: Any, chunks: Iterable[bytes]) -> None:
    """Write ``chunks`` to ``member`` from a second thread, while this one makes the next chunk."""
    ready: queue.Queue = queue.Queue(maxsize=4)
    failed: list[BaseException] = []

    def deflate() -> None:
        try:
            while (chunk := ready.get()) is not None:
                member.write(chunk)
        except BaseException as exc:  # handed to the making thread, which stops and raises it
            failed.append(exc)
            while ready.get() is not None:
                pass

    worker = threading.Thread(target=deflate, name="flexybulk-xlsx-deflate", daemon=True)
    worker.start()
    try:
        for chunk in chunks:
            if failed:
                break
            ready.put(chunk)
    finally:
        ready.put(None)
        worker.join()
    if failed:
        raise failed[0]


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
    for row in sheet.rows:
        values = {**row.input_values, **row.extra}
        writer.writerow([_csv_text(values.get(h), decimal_comma) for h in headers])
    text.flush()
    text.detach()
