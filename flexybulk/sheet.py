"""Read a recipient list (XLSX, ODS, XLS, CSV/TSV) into rows that keep their sheet row numbers.

The one entry point is :func:`read_sheet`::

    sheet = read_sheet("kampagne.xlsx", ReadOptions(columns={"amount": "Værdi i kr"}))

It decides the format by content, refuses unsafe or unreadable files with an
:class:`~flexybulk.errors.InputFileError` whose message names the file (and
sheet, row and column) and says what to do, picks the sheet and the header
row, maps the headers to :class:`~flexybulk.model.Field` names and parses each
cell with :mod:`flexybulk.values`. Cells that cannot be parsed become
``RowProblem`` data on their row, never exceptions.

Engines: python-calamine reads XLSX/ODS/XLS values (fast, no pandas, no NA
guessing: pitfalls P7, P8, P11, P20). The XLSX sheet XML is scanned cheaply for
formulas, error cells and hidden rows, and parsed cell by cell only when one
occurs (pitfalls P9) or when a numeric postal code/phone may have lost its
leading zeros (pitfalls P5). openpyxl and xlrd are fallbacks when calamine
cannot open a workbook. CSV goes through the ``csv`` module with an explicit
delimiter (pitfalls P2).

Each rule cites the pitfall in ``shared/pitfalls.md`` it comes from.
"""

from __future__ import annotations

import codecs
import datetime as dt
import csv
import gc
import hashlib
import html
import io
import re
import threading
import unicodedata
import zipfile
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import chain, compress, count as _indices, repeat
from operator import is_
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable, Mapping

from flexybulk.errors import ConfigError, InputFileError
from flexybulk.model import Field, InputRow, RowProblem, Sheet
from flexybulk import values as V

__all__ = ["ReadOptions", "read_sheet", "HEADER_SYNONYMS", "RESULT_COLUMNS", "column_letter"]


@dataclass(frozen=True)
class ReadOptions:
    """How to read an input file.

    Attributes:
        sheet: the worksheet to read, by name; ``None`` picks the one visible
            sheet whose header matches (pitfalls P13).
        columns: ``--column`` overrides, field name -> header text
            (``{"amount": "Værdi i kr"}``); the header is matched after the
            same normalisation as the built-in names (pitfalls P15).
        max_file_size: bytes; larger files are refused before reading (issue #6).
        max_rows: data rows (non-empty rows below the header); more are
            refused with both counts (pitfalls P10, P11).
    """

    sheet: str | None = None
    columns: Mapping[str, str] = field(default_factory=dict)
    max_file_size: int = 50 * 1024 * 1024
    max_rows: int = 100_000


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

Matched after :func:`flexybulk.values.normalize_header`, so ``"E-mail"``,
``"EMAIL"`` and ``"e_mail"`` are one name.
"""

RESULT_COLUMNS: tuple[str, ...] = (
    "Status", "Error", "CustomerId", "SalesOrderId", "ExternalPaymentId",
    "GiftCertificateNumbers", "IssuedAt", "BatchId", "Row", "Warning", "AmountRead", "LineTotal",
)
"""Columns flexybulk writes into a result or validation sheet; never mapped to an input field,
passed through in ``InputRow.original`` so a result sheet can be read again for a retry."""

_SYNONYM_INDEX: dict[str, Field] = {
    V.normalize_header(name): fld for fld, names in HEADER_SYNONYMS.items() for name in names
}
_RESULT_KEYS = frozenset(V.normalize_header(name) for name in RESULT_COLUMNS)

_FIELD_LABELS = {
    Field.NAME: "Name", Field.FIRST_NAME: "First name", Field.LAST_NAME: "Last name",
    Field.EMAIL: "E-mail", Field.TYPE: "Gift certificate type", Field.AMOUNT: "Amount",
    Field.QUANTITY: "Quantity", Field.DEPARTMENT: "Department", Field.PHONE: "Phone",
    Field.ADDRESS: "Address", Field.POSTAL_CODE: "Postal code", Field.CITY: "City",
    Field.COUNTRY: "Country", Field.CURRENCY: "Currency",
}
_NAME_LIKE = (Field.NAME, Field.FIRST_NAME, Field.LAST_NAME)

HEADER_SEARCH_ROWS = 20  # pitfalls P12: the header may sit below a title
MAX_UNCOMPRESSED = 200 * 1024 * 1024  # issue #6: zip bomb limits
MAX_RATIO = 100
RATIO_APPLIES_ABOVE = 10 * 1024 * 1024
MAX_ZIP_MEMBERS = 10_000

_MIB = 1024 * 1024


def column_letter(index: int) -> str:
    """Spreadsheet column letter of a 0-based column index: 0 -> ``"A"``, 27 -> ``"AB"``."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _column_index(letters: str) -> int:
    """0-based index of a column letter: ``"A"`` -> 0, ``"AB"`` -> 27."""
    index = 0
    for ch in letters:
        index = index * 26 + ord(ch) - 64
    return index - 1


def _quote(name: str) -> str:
    return f"'{name}'"


def _join_names(items: list[str]) -> str:
    """``["A", "C"]`` -> ``"A and C"``; ``["A", "C", "E"]`` -> ``"A, C and E"``."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _size_text(size: int) -> str:
    if size >= _MIB:
        return f"{size / _MIB:,.1f} MB"
    return f"{size:,} bytes"


# --- the common intermediate: one sheet's cells --------------------------------


@dataclass
class _Grid:
    """The cells of one worksheet or CSV file, before any interpretation.

    ``rows[i][j]`` is the cell at sheet row ``first_row + i`` and column index
    ``first_col + j`` (0-based). Empty cells are ``""``; other values are
    ``str``, ``int``, ``float``, ``bool``, ``date``/``datetime``/``time``.
    """

    rows: list[list[Any]]
    first_row: int = 1
    first_col: int = 0
    merged: list[tuple[tuple[int, int], tuple[int, int]]] = field(default_factory=list)
    line_numbers: list[int] | None = None  # CSV: the physical line each record starts on
    filled: set[tuple[int, int]] | None = None  # header-area cells copied from a merged range
    uncounted_rows: int = 0  # CSV: non-empty records past the row limit, counted but not kept


@dataclass
class _Column:
    index: int  # 0-based index into the grid's rows
    header: str
    letter: str
    field: Field | None = None


@dataclass
class _Header:
    index: int  # index into grid.rows
    score: int
    fields: set[Field]


@dataclass
class _Context:
    """What the reader knows about the file while it works: for messages and notes."""

    path: Path
    opts: ReadOptions
    data: bytes = b""
    format: str = "csv"
    sheet_name: str | None = None
    delimiter: str | None = None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        text = _quote(self.path.name)
        if self.sheet_name is not None:
            text += f", sheet {_quote(self.sheet_name)}"
        return text

    def error(self, message: str) -> InputFileError:
        return InputFileError(f"{self.where}: {message}")


# --- entry point ---------------------------------------------------------------


def read_sheet(path: str | Path, opts: ReadOptions | None = None) -> Sheet:
    """Read one input file into a :class:`~flexybulk.model.Sheet`.

    Args:
        path: the file; its format is decided by content, not by name
            (pitfalls P16): zip -> XLSX/ODS, OLE2 -> XLS, anything else -> text/CSV.
        opts: :class:`ReadOptions`; defaults when ``None``.

    Returns:
        The sheet: header row, column map, rows (fully empty rows left out,
        real row numbers kept), notes (encoding, header row, format surprises)
        and warnings (double-encoded text, hidden rows).

    Raises:
        InputFileError: the file cannot be read at all or is refused as unsafe:
            too big, too many rows, a zip bomb, macros, a password, an HTML/XML
            page or binary junk, broken quoting, no header, a column with values
            but no header, two columns for one field, an unknown or ambiguous
            sheet (issue #6, pitfalls P2, P10-P13, P15, P16, P19).
        ConfigError: ``opts.columns`` names an unknown field.
    """
    opts = opts or ReadOptions()
    path = Path(path)
    ctx = _Context(path=path, opts=opts)
    overrides = _check_overrides(opts.columns)
    data = _read_bytes(path, opts)
    ctx.data = data
    # Creating a million cells' worth of objects makes the cyclic GC rescan
    # everything again and again; nothing here forms cycles worth collecting
    # mid-read, so switch it off for the read (pitfalls P11: time and memory).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        sheet = _read(data, ctx, overrides)
    except (InputFileError, ConfigError):
        raise
    except MemoryError as exc:
        raise InputFileError(f"{ctx.where} is too large to read in memory — split it into smaller files") from exc
    except Exception as exc:  # never a traceback for a file a user gave us (issue #6)
        raise InputFileError(
            f"{ctx.where} could not be read ({type(exc).__name__}: {exc}). "
            "Open it in Excel or LibreOffice, save it as .xlsx and try again"
        ) from exc
    finally:
        if gc_was_enabled:
            gc.enable()
    sheet.sha256 = hashlib.sha256(data).hexdigest()
    return sheet


def _check_overrides(columns: Mapping[str, str]) -> dict[str, Field]:
    """``--column`` overrides as normalised header -> field; unknown field names are a usage error."""
    result: dict[str, Field] = {}
    for name, header in (columns or {}).items():
        if not V.normalize_header(header):
            raise ConfigError(f"--column {name}=...: give the header text of the column")
        try:
            fld = Field(str(name).strip().lower().replace("-", "_"))
        except ValueError:
            known = ", ".join(f.value for f in Field)
            raise ConfigError(f"--column {name}=...: unknown field '{name}'. Known fields: {known}") from None
        key = V.normalize_header(header)
        if key in result and result[key] is not fld:
            raise ConfigError(f"--column: '{header}' is given for both {result[key].value} and {fld.value}")
        result[key] = fld
    return result


def _read_bytes(path: Path, opts: ReadOptions) -> bytes:
    """The file's bytes, after the size limit was checked on the directory entry (issue #6)."""
    name = _quote(path.name)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputFileError(f"{name} does not exist — check the file name and folder") from None
    except OSError as exc:
        raise InputFileError(f"{name} cannot be opened ({exc.strerror}) — check the path and permissions") from None
    if path.is_dir():
        raise InputFileError(f"{name} is a folder, not a file — give the spreadsheet file itself")
    if size > opts.max_file_size:
        raise InputFileError(
            f"{name} is {_size_text(size)}; the limit is {_size_text(opts.max_file_size)} — split it into smaller files"
        )
    if size == 0:
        raise InputFileError(f"{name} is empty (0 bytes) — export the spreadsheet again")
    try:
        with open(path, "rb") as handle:
            data = handle.read(opts.max_file_size + 1)
    except OSError as exc:
        raise InputFileError(f"{name} cannot be read ({exc.strerror}) — check the permissions") from None
    if len(data) > opts.max_file_size:  # it grew after stat()
        raise InputFileError(f"{name} is larger than the limit of {_size_text(opts.max_file_size)} — split it")
    return data


_OTHER_MAGIC = (
    (b"%PDF", "a PDF document — export the list from the original spreadsheet as .xlsx or .csv instead"),
    (b"\x89PNG", "a PNG image, not a spreadsheet — save the recipient list as .xlsx or .csv"),
    (b"\xff\xd8\xff", "a JPEG image, not a spreadsheet — save the recipient list as .xlsx or .csv"),
    (b"GIF8", "a GIF image, not a spreadsheet — save the recipient list as .xlsx or .csv"),
    (b"\x1f\x8b", "a gzip archive — unpack it and give the spreadsheet inside"),
    (b"Rar!", "a RAR archive — unpack it and give the spreadsheet inside"),
    (b"7z\xbc\xaf", "a 7-Zip archive — unpack it and give the spreadsheet inside"),
    (b"{\\rtf", "an RTF document — save the list as .xlsx or .csv"),
    (b"PK\x05\x06", "an empty zip archive, not a spreadsheet — export the list again"),
)


def _read(data: bytes, ctx: _Context, overrides: dict[str, Field]) -> Sheet:
    """Dispatch on the first bytes (pitfalls P16)."""
    if data.startswith(b"PK\x03\x04"):
        return _read_zip(data, ctx, overrides)
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        return _read_ole2(data, ctx, overrides)
    for magic, what in _OTHER_MAGIC:
        if data.startswith(magic):
            raise InputFileError(f"{_quote(ctx.path.name)} is really {what}")
    return _read_text(data, ctx, overrides)


# --- zip containers: XLSX, ODS (issue #6, pitfalls P16) -------------------------

_ODS_MIMETYPE = "application/vnd.oasis.opendocument.spreadsheet"


def _read_zip(data: bytes, ctx: _Context, overrides: dict[str, Field]) -> Sheet:
    name = _quote(ctx.path.name)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise InputFileError(
            f"{name} is damaged: it starts like a spreadsheet (a zip archive) but cannot be opened ({exc}). "
            "Ask the sender for a new copy, or open it in Excel or LibreOffice and save it again"
        ) from None
    _check_zip_bomb(infos, len(data), name)
    names = {info.filename for info in infos}
    if any(info.flag_bits & 0x1 for info in infos):
        raise InputFileError(f"{name} is password-protected — remove the password and save it again")

    if "mimetype" in names:
        mimetype = _read_member(zf, "mimetype", 1024, name).decode("ascii", "replace").strip()
        if mimetype == _ODS_MIMETYPE or mimetype == _ODS_MIMETYPE + "-template":
            _refuse_ods_macros(names, name)
            ctx.format = "ods"
            _note_extension(ctx, "ods", (".ods", ".ots"))
            return _read_workbook(data, ctx, overrides, zf=None)
        if "opendocument.text" in mimetype:
            raise InputFileError(f"{name} is really an OpenDocument text document (.odt), not a spreadsheet")
        raise InputFileError(f"{name} is really an OpenDocument file of type '{mimetype}', not a spreadsheet")

    if "[Content_Types].xml" in names:
        content_types = _read_member(zf, "[Content_Types].xml", 4 * _MIB, name).decode("utf-8", "replace")
        if "xl/vbaProject.bin" in names or "macroEnabled" in content_types:
            raise InputFileError(
                f"{name} is a macro-enabled workbook — save it as a plain .xlsx (Excel Workbook) and try again"
            )
        if "xl/workbook.bin" in names:
            raise InputFileError(f"{name} is a binary Excel workbook (.xlsb) — save it as a plain .xlsx and try again")
        if "xl/workbook.xml" in names or "spreadsheetml" in content_types:
            ctx.format = "xlsx"
            _note_extension(ctx, "xlsx", (".xlsx", ".xltx"))
            return _read_workbook(data, ctx, overrides, zf=zf)
        if "word/document.xml" in names:
            raise InputFileError(f"{name} is really a Word document, not a spreadsheet — save the list as .xlsx")
        if "ppt/presentation.xml" in names:
            raise InputFileError(f"{name} is really a PowerPoint presentation, not a spreadsheet")
    if any(n.startswith("Index/") and n.endswith(".iwa") for n in names):
        raise InputFileError(f"{name} is an Apple Numbers file — in Numbers choose File > Export To > Excel")
    raise InputFileError(f"{name} is a zip archive, not a spreadsheet — unpack it and give the spreadsheet inside")


def _check_zip_bomb(infos: list[zipfile.ZipInfo], packed: int, name: str) -> None:
    """Refuse archives that unpack to far more than a spreadsheet needs, before any parse (issue #6).

    Uses the sizes the archive declares: > 200 MB in total, or a ratio over
    100:1 once more than 10 MB would be unpacked, or more than 10,000 members.
    """
    if len(infos) > MAX_ZIP_MEMBERS:
        raise InputFileError(
            f"{name} holds {len(infos):,} files; a spreadsheet holds a few dozen — it is refused as unsafe"
        )
    total = sum(info.file_size for info in infos)
    compressed = max(1, sum(info.compress_size for info in infos), packed // 2)
    ratio = total / compressed
    if total > MAX_UNCOMPRESSED or (total > RATIO_APPLIES_ABOVE and ratio > MAX_RATIO):
        raise InputFileError(
            f"{name} would unpack to {_size_text(total)} from {_size_text(packed)} (ratio {ratio:,.0f}:1) — "
            "far more than a recipient list needs (a zip bomb?), so it is refused. "
            "Copy the data into a new workbook and save that"
        )


def _read_member(zf: zipfile.ZipFile, member: str, limit: int, name: str) -> bytes:
    """A small zip member, at most ``limit`` bytes (its declared size is not trusted)."""
    try:
        with zf.open(member) as handle:
            content = handle.read(limit + 1)
    except (zipfile.BadZipFile, OSError, RuntimeError, EOFError, ValueError) as exc:
        raise InputFileError(
            f"{name} is damaged ({member}: {exc}) — open it in Excel or LibreOffice and save it again"
        ) from None
    if len(content) > limit:
        raise InputFileError(f"{name} has an oversized part {member} — it is refused as unsafe")
    return content


def _refuse_ods_macros(names: set[str], name: str) -> None:
    """An ODS with Basic modules is macro-enabled: refused like an XLSM (issue #6)."""
    library_files = {"script-lb.xml", "script-lc.xml", "dialog-lb.xml", "dialog-lc.xml"}
    for member in names:
        if member.startswith(("Basic/", "Scripts/")) and PurePosixPath(member).name not in library_files:
            if not member.endswith("/"):
                raise InputFileError(
                    f"{name} contains macros — save it without macros as a plain .xlsx or .ods and try again"
                )


def _note_extension(ctx: _Context, real: str, expected: tuple[str, ...]) -> None:
    """A note when the name says another format than the content (pitfalls P16)."""
    suffix = ctx.path.suffix.lower()
    if suffix and suffix not in expected:
        what = {"xlsx": "an XLSX workbook", "ods": "an ODS spreadsheet", "xls": "a legacy Excel (.xls) workbook"}[real]
        ctx.notes.append(f"{_quote(ctx.path.name)} is really {what} — read it as one")


# --- OLE2: legacy XLS, encrypted XLSX (issue #6, pitfalls P16) ---------------------


def _ole_name(text: str) -> bytes:
    return text.encode("utf-16-le")


def _read_ole2(data: bytes, ctx: _Context, overrides: dict[str, Field]) -> Sheet:
    """Compound files: encrypted OOXML, XLS with macros, Word documents, plain XLS.

    Directory entries store stream names in UTF-16LE, so a byte search finds
    them without an OLE library.
    """
    name = _quote(ctx.path.name)
    if _ole_name("EncryptedPackage") in data or _ole_name("EncryptionInfo") in data:
        raise InputFileError(f"{name} is password-protected — remove the password and save it again")
    if _ole_name("_VBA_PROJECT_CUR") in data:
        raise InputFileError(
            f"{name} is a macro-enabled workbook — save it as a plain .xlsx (Excel Workbook) and try again"
        )
    if _ole_name("WordDocument") in data:
        raise InputFileError(f"{name} is really a Word document, not a spreadsheet — save the list as .xlsx")
    if _ole_name("Workbook") not in data and _ole_name("Book") not in data:
        raise InputFileError(f"{name} is an Office file but not an Excel workbook — save the list as .xlsx")
    ctx.format = "xls"
    _note_extension(ctx, "xls", (".xls", ".xlt"))
    return _read_workbook(data, ctx, overrides, zf=None)


# --- workbooks ---------------------------------------------------------------------


@dataclass
class _SheetInfo:
    name: str
    visible: bool
    is_worksheet: bool = True


class _Book:
    """One opened workbook, behind one small interface whatever engine reads it (pitfalls P20)."""

    engine = "?"
    sheets: list[_SheetInfo]

    def grid(self, name: str, nrows: int | None = None) -> _Grid:  # pragma: no cover - interface
        raise NotImplementedError


class _CalamineBook(_Book):
    """python-calamine: the fast path for XLSX, ODS and XLS values (pitfalls P11, P20)."""

    engine = "calamine"

    def __init__(self, data: bytes) -> None:
        import python_calamine

        self._wb = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(data))
        visible = python_calamine.SheetVisibleEnum.Visible
        worksheet = python_calamine.SheetTypeEnum.WorkSheet
        self.sheets = [
            _SheetInfo(meta.name, meta.visible == visible, meta.typ == worksheet)
            for meta in self._wb.sheets_metadata
        ]

    def grid(self, name: str, nrows: int | None = None) -> _Grid:
        sheet = self._wb.get_sheet_by_name(name)
        rows = sheet.to_python(skip_empty_area=True, nrows=nrows) if nrows else sheet.to_python(skip_empty_area=True)
        start = sheet.start or (0, 0)
        merged = list(sheet.merged_cell_ranges or [])
        return _Grid(rows=rows, first_row=start[0] + 1, first_col=start[1], merged=merged)


class _OpenpyxlBook(_Book):
    """openpyxl in read-only mode: the fallback for XLSX calamine cannot open (pitfalls P10, P11)."""

    engine = "openpyxl"

    def __init__(self, data: bytes) -> None:
        import openpyxl

        self._wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        self.sheets = [
            _SheetInfo(ws.title, ws.sheet_state == "visible", ws.__class__.__name__ != "Chartsheet")
            for ws in self._wb.worksheets
        ]

    def grid(self, name: str, nrows: int | None = None) -> _Grid:
        ws = self._wb[name]
        ws.reset_dimensions()  # never trust <dimension> (pitfalls P10)
        rows: list[list[Any]] = []
        for values in ws.iter_rows(values_only=True):
            rows.append(["" if v is None else _like_calamine(v) for v in values])
            if nrows and len(rows) >= nrows:
                break
        width = max((len(r) for r in rows), default=0)
        for row in rows:
            if len(row) < width:
                row.extend([""] * (width - len(row)))
        return _Grid(rows=rows)


class _XlrdBook(_Book):
    """xlrd: the fallback for legacy XLS calamine cannot open (pitfalls P20)."""

    engine = "xlrd"

    def __init__(self, data: bytes) -> None:
        import xlrd

        self._xlrd = xlrd
        self._wb = xlrd.open_workbook(file_contents=data, on_demand=True)
        self.sheets = [
            _SheetInfo(sh.name, sh.visibility == 0) for sh in (self._wb.sheet_by_index(i) for i in range(self._wb.nsheets))
        ]

    def grid(self, name: str, nrows: int | None = None) -> _Grid:
        xlrd = self._xlrd
        sh = self._wb.sheet_by_name(name)
        rows = []
        for r in range(sh.nrows if not nrows else min(nrows, sh.nrows)):
            row = []
            for cell in sh.row(r):
                if cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
                    row.append("")
                elif cell.ctype == xlrd.XL_CELL_DATE:
                    row.append(_like_calamine(xlrd.xldate.xldate_as_datetime(cell.value, self._wb.datemode)))
                elif cell.ctype == xlrd.XL_CELL_BOOLEAN:
                    row.append(bool(cell.value))
                elif cell.ctype == xlrd.XL_CELL_ERROR:
                    row.append(xlrd.error_text_from_code.get(cell.value, "#ERROR"))
                else:
                    row.append(cell.value)
            rows.append(row)
        width = max((len(r) for r in rows), default=0)
        for row in rows:
            row.extend([""] * (width - len(row)))
        return _Grid(rows=rows)


def _like_calamine(value: Any) -> Any:
    """Fallback engines give what calamine gives: a datetime at midnight is a date (pitfalls P20)."""
    if value.__class__ is dt.datetime and not value.hour and not value.minute and not value.second \
            and not value.microsecond:
        return value.date()
    return value


def _engine_failure(exc: Exception, name: str) -> str:
    """One engine's failure as text; a password error ends the read at once (issue #6)."""
    text = f"{type(exc).__name__}: {exc}"
    if "password" in text.lower() or "encrypt" in text.lower():
        raise InputFileError(f"{name} is password-protected — remove the password and save it again") from None
    return text


_CALAMINE_ENABLED = True  # tests switch this off to run the same files through the fallbacks


def _read_workbook(data: bytes, ctx: _Context, overrides: dict[str, Field], zf: zipfile.ZipFile | None) -> Sheet:
    """Open with calamine; if it cannot open or parse the workbook, openpyxl (XLSX) or xlrd (XLS)
    take over silently; only when all fail is the file refused (pitfalls P20)."""
    name = _quote(ctx.path.name)
    engines: list[Callable[[bytes], _Book]] = [_CalamineBook] if _CALAMINE_ENABLED else []
    engines += {"xlsx": [_OpenpyxlBook], "xls": [_XlrdBook]}.get(ctx.format, [])
    errors: list[str] = []
    xlsx = None
    for engine in engines:
        notes = list(ctx.notes)
        try:
            book = engine(data)
            if zf is not None and xlsx is None:
                # Scan the likely sheet's XML while calamine parses it (calamine releases
                # the GIL), so the scan costs no wall time on a multi-core machine.
                likely = _likely_sheet(book, ctx.opts.sheet)
                if likely is not None:
                    xlsx = _XlsxParts(zf, likely, ctx)
                    xlsx.start_scan()
            sheet_name, grid, header = _choose_sheet(book, ctx, overrides)
            break
        except InputFileError:
            raise
        except Exception as exc:  # this engine failed: try the next, report all at the end
            ctx.notes[:] = notes
            errors.append(_engine_failure(exc, name))
    else:
        if xlsx is not None:
            xlsx.scan()
        raise InputFileError(
            f"{name} is damaged or not a readable {ctx.format.upper()} file ({'; '.join(errors) or 'no reader'}) — "
            "open it in Excel or LibreOffice and save it again as .xlsx"
        )
    ctx.sheet_name = sheet_name
    if zf is not None and (xlsx is None or xlsx.sheet_name != sheet_name):
        if xlsx is not None:
            xlsx.scan()  # let the thread finish before the zip is read again
        xlsx = _XlsxParts(zf, sheet_name, ctx)
    return _build_sheet(grid, header, ctx, overrides, xlsx=xlsx, book=book)


def _likely_sheet(book: _Book, wanted: str | None) -> str | None:
    """The sheet :func:`_choose_sheet` will most likely pick, known before any sheet is parsed."""
    worksheets = [s for s in book.sheets if s.is_worksheet]
    if wanted is not None:
        return next((s.name for s in worksheets if s.name == wanted), None)
    visible = [s.name for s in worksheets if s.visible]
    return visible[0] if len(visible) == 1 else None


def _choose_sheet(book: _Book, ctx: _Context, overrides: dict[str, Field]) -> tuple[str, _Grid, _Header]:
    """The worksheet to read: by ``--sheet``, else the one visible sheet with a header (pitfalls P13)."""
    name = _quote(ctx.path.name)
    worksheets = [s for s in book.sheets if s.is_worksheet]
    visible = [s.name for s in worksheets if s.visible]
    hidden = [s.name for s in worksheets if not s.visible]
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
                fld = _field_for(V.normalize_header(value), overrides)
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
    shown = ", ".join(V.clean_header(v) for v in first if not _is_blank(v))[:200] if first else "(nothing)"
    return (
        f"no header row found in the first {HEADER_SEARCH_ROWS} rows — the first row with text has: {shown}. "
        "Add a header row with column names such as Navn, E-mail, Beløb, Antal, or name a column with --column"
    )


# --- XLSX parts the values don't carry: formulas, error cells, hidden rows, number formats ---


_HIDDEN_ROW = re.compile(rb"<(?:\w+:)?row\s[^>]*?\bhidden=\"(?:1|true)\"[^>]*>")
_HIDDEN_COL = re.compile(rb"<(?:\w+:)?col\s[^>]*?\bhidden=\"(?:1|true)\"[^>]*>")
_ATTR_R = re.compile(rb"\br=\"([A-Z]*)(\d+)\"")
_ATTR_MIN_MAX = re.compile(rb"\bmin=\"(\d+)\"[^>]*?\bmax=\"(\d+)\"|\bmax=\"(\d+)\"[^>]*?\bmin=\"(\d+)\"")
_ROW_OR_CELL = re.compile(
    rb"<(?:\w+:)?(?:(row)\b([^>]*)>|c\b([^>]*?)(?:/>|>(.*?)</(?:\w+:)?c>))",
    re.DOTALL,
)
_F_ELEMENT = re.compile(rb"<(?:\w+:)?f\b([^>]*?)(?:/>|>(.*?)</(?:\w+:)?f>)", re.DOTALL)
_V_ELEMENT = re.compile(rb"<(?:\w+:)?v\b[^>]*?(?:/>|>(.*?)</(?:\w+:)?v>)", re.DOTALL)
_ATTR = re.compile(rb"\b([\w:]+)=\"([^\"]*)\"")
_ROW_END = re.compile(rb"</(?:\w+:)?row>")
_CHUNK = 1 << 20


class _XlsxParts:
    """Lazy access to the chosen sheet's XML and the workbook styles (pitfalls P5, P9, P10, P13).

    ``scan()`` streams the sheet XML once looking for formula/error markers and
    hidden rows; ``cells()`` parses cell elements only when needed. Sizes are
    bounded by the zip-bomb check done before.
    """

    def __init__(self, zf: zipfile.ZipFile, sheet_name: str, ctx: _Context) -> None:
        self.zf = zf
        self.ctx = ctx
        self.sheet_name = sheet_name
        self.member = self._sheet_member(sheet_name)
        self.has_formula_or_error = False
        self.hidden_rows: set[int] = set()
        self.hidden_cols: set[int] = set()
        self._scanned = False
        self._thread: threading.Thread | None = None
        self._thread_error: BaseException | None = None

    def start_scan(self) -> None:
        """Run :meth:`scan` in a background thread; :meth:`scan` then waits for it."""

        def run() -> None:
            try:
                self._scan()
            except BaseException as exc:  # handed to the main thread in scan()
                self._thread_error = exc

        self._thread = threading.Thread(target=run, name="flexybulk-xlsx-scan", daemon=True)
        self._thread.start()

    def scan(self) -> None:
        """Make sure the scan ran (in this thread, or wait for the background one)."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
            if self._thread_error is not None:
                raise self._thread_error
        if not self._scanned:
            self._scan()

    def _sheet_member(self, sheet_name: str) -> str | None:
        from defusedxml import ElementTree as ET

        try:
            workbook = ET.fromstring(self.zf.read("xl/workbook.xml"))
            rels = ET.fromstring(self.zf.read("xl/_rels/workbook.xml.rels"))
        except Exception:  # a workbook without the usual parts: skip the extras, calamine read the values
            return None
        targets = {}
        for rel in rels.iter():
            if rel.tag.endswith("Relationship"):
                targets[rel.get("Id")] = rel.get("Target", "")
        for element in workbook.iter():
            if element.tag.endswith("}sheet") and element.get("name") == sheet_name:
                rid = next((v for k, v in element.attrib.items() if k.endswith("}id")), None)
                target = targets.get(rid)
                if not target:
                    return None
                if target.startswith("/"):
                    path = target.lstrip("/")
                else:
                    parts: list[str] = []
                    for part in ("xl/" + target).split("/"):
                        if part == "..":
                            if parts:
                                parts.pop()
                        elif part and part != ".":
                            parts.append(part)
                    path = "/".join(parts)
                return path if path in self.zf.namelist() else None
        return None

    def _chunks(self) -> Iterable[bytes]:
        with self.zf.open(self.member) as handle:
            while True:
                chunk = handle.read(_CHUNK)
                if not chunk:
                    return
                yield chunk

    def _scan(self) -> None:
        """One streaming pass: any formula or error cell? which rows/columns are hidden?

        Plain substring searches (no regex over the whole sheet) keep this to
        about the cost of decompressing the XML.
        """
        self._scanned = True
        if self.member is None:
            return
        tail = b""
        marks: tuple[bytes, ...] | None = None
        for chunk in self._chunks():
            if marks is None:
                root = re.search(rb"<(\w+:)?worksheet\b", chunk)
                prefix = (root.group(1) or b"") if root else b""
                # Every formula sheet has a closing </f> (a shared formula's children
                # <f .../> always come with a master that has one), and error cells t="e".
                marks = (b"</" + prefix + b"f>", b't="e"')
            seam = tail[-16:] + chunk[:16]  # a mark split across two chunks
            if not self.has_formula_or_error and any(m in chunk or m in seam for m in marks):
                self.has_formula_or_error = True
            if b"hidden" in chunk or b"hidden" in seam:
                buf = tail + chunk
                for match in _HIDDEN_ROW.finditer(buf):
                    r = _ATTR_R.search(match.group(0))
                    if r:
                        self.hidden_rows.add(int(r.group(2)))
                for match in _HIDDEN_COL.finditer(buf):
                    mm = _ATTR_MIN_MAX.search(match.group(0))
                    if mm:
                        lo, hi = (mm.group(1), mm.group(2)) if mm.group(1) else (mm.group(4), mm.group(3))
                        if int(hi) - int(lo) < 1000:
                            self.hidden_cols.update(range(int(lo) - 1, int(hi)))
            tail = chunk[-4096:]

    def cells(self, want_style: set[tuple[int, int]]) -> tuple[dict[tuple[int, int], tuple[str, str]], dict[tuple[int, int], int]]:
        """Parse cell elements: formula cells without a cached value, error cells, and styles.

        Returns ``(issues, styles)``: ``issues[(row, col)] = ("formula", "=F2*G2")``
        or ``("error", "#DIV/0!")``; ``styles[(row, col)] = style index`` for the
        cells in ``want_style``. ``row`` is 1-based, ``col`` 0-based.
        """
        issues: dict[tuple[int, int], tuple[str, str]] = {}
        styles: dict[tuple[int, int], int] = {}
        if self.member is None:
            return issues, styles
        shared: dict[bytes, tuple[str, str]] = {}  # si -> (formula, origin cell)
        row_number = 0
        col = -1
        tail = b""
        for chunk in self._chunks():
            buf = tail + chunk
            cut = None
            for cut in _ROW_END.finditer(buf):
                pass
            if cut is None:
                tail = buf
                continue
            end = cut.end()
            for match in _ROW_OR_CELL.finditer(buf, 0, end):
                if match.group(1):
                    r = re.search(rb"\br=\"(\d+)\"", match.group(2))
                    row_number = int(r.group(1)) if r else row_number + 1
                    col = -1
                    continue
                attrs = dict(_ATTR.findall(match.group(3)))
                ref = attrs.get(b"r")
                if ref:
                    m = _ATTR_R.match(b"r=\"" + ref + b"\"")
                    col = _column_index(m.group(1).decode()) if m and m.group(1) else col + 1
                else:
                    col += 1
                key = (row_number, col)
                if key in want_style and b"s" in attrs:
                    styles[key] = int(attrs[b"s"])
                body = match.group(4) or b""
                cell_type = attrs.get(b"t", b"n")
                v = _V_ELEMENT.search(body)
                cached = v is not None and (v.group(1) or cell_type in (b"str", b"inlineStr"))
                if cell_type == b"e" and v is not None and v.group(1):
                    issues[key] = ("error", html.unescape(v.group(1).decode("utf-8", "replace")))
                    continue
                f = _F_ELEMENT.search(body)
                if f is None:
                    continue
                f_attrs = dict(_ATTR.findall(f.group(1)))
                formula = html.unescape((f.group(2) or b"").decode("utf-8", "replace"))
                ref_text = column_letter(col) + str(row_number)
                if f_attrs.get(b"t") == b"shared" and b"si" in f_attrs:
                    if formula:
                        shared[f_attrs[b"si"]] = (formula, ref_text)
                    elif f_attrs[b"si"] in shared:
                        formula = _translate_shared(*shared[f_attrs[b"si"]], ref_text)
                if not cached:
                    issues[key] = ("formula", "=" + formula if formula else "(a shared formula)")
            tail = buf[end:]
        return issues, styles

    def zero_pad_styles(self) -> dict[int, str]:
        """Style index -> format code for the cell styles whose number format pads with zeros (``0000``)."""
        from defusedxml import ElementTree as ET

        try:
            root = ET.fromstring(_read_member(self.zf, "xl/styles.xml", 16 * _MIB, _quote(self.ctx.path.name)))
        except InputFileError:
            raise
        except Exception:  # no or odd styles: nothing to pad
            return {}
        codes: dict[str, str] = {}
        xf_formats: list[str] = []
        for element in root.iter():
            tag = element.tag.rsplit("}", 1)[-1]
            if tag == "numFmt":
                codes[element.get("numFmtId", "")] = element.get("formatCode", "")
            elif tag == "cellXfs":
                xf_formats = [xf.get("numFmtId", "0") for xf in element if xf.tag.rsplit("}", 1)[-1] == "xf"]
        return {
            index: codes[fmt]
            for index, fmt in enumerate(xf_formats)
            if fmt in codes and V.zero_pad_width(codes[fmt])
        }


def _translate_shared(formula: str, origin: str, target: str) -> str:
    """The formula of a shared-formula child cell, moved from the master cell (pitfalls P9)."""
    try:
        from openpyxl.formula.translate import Translator

        return Translator("=" + formula, origin=origin).translate_formula(target).lstrip("=")
    except Exception:
        return formula


# --- text files: CSV/TSV (pitfalls P2, P3, P4, P16, P17) -----------------------------

_MOJIBAKE = ("Ã¸", "Ã¦", "Ã¥", "Ã˜", "Ã…", "Ã†")
_SEP_LINE = re.compile(r'^"?sep=(.)"?[ \t]*$', re.IGNORECASE)
_DELIMITERS = (";", ",", "\t")
_DELIMITER_NAMES = {";": "';'", ",": "','", "\t": "tab"}


def _read_text(data: bytes, ctx: _Context, overrides: dict[str, Field]) -> Sheet:
    name = _quote(ctx.path.name)
    text, encoding_note = _decode(data, name)
    stripped = text.lstrip(" \t\r\n\ufeff")
    if stripped.startswith("<"):
        raise InputFileError(_markup_message(name, stripped[:2000]))
    ctx.format = "csv"
    ctx.notes.append(encoding_note)
    _warn_mojibake(text, ctx)

    line_offset = 0
    forced = None
    first_line, _, rest = text.partition("\n")
    sep = _SEP_LINE.match(first_line.rstrip("\r").lstrip("\ufeff"))
    if sep:
        # Excel's "sep=;" directive line: honour it and do not count it as a row (pitfalls P2).
        forced = sep.group(1)
        text = rest
        line_offset = 1
        ctx.notes.append(f"Used the separator {_DELIMITER_NAMES.get(forced, repr(forced))} from the sep= line")

    delimiter = forced or _choose_delimiter(text, ctx, overrides, line_offset)
    ctx.delimiter = delimiter
    grid = _parse_csv(text, delimiter, ctx, line_offset)
    suffix = ctx.path.suffix.lower()
    if suffix in (".xlsx", ".xlsm", ".xls", ".ods", ".xlsb"):
        kind = {"\t": "tab-separated", ";": "semicolon-separated", ",": "comma-separated"}.get(delimiter, "delimited")
        ctx.notes.append(f"{name} is really a {kind} text file — read it as CSV")
    header = _find_header(grid, overrides)
    if header is None:
        raise ctx.error(_no_header_message(grid))
    return _build_sheet(grid, header, ctx, overrides)


def _decode(data: bytes, name: str) -> tuple[str, str]:
    """Strict UTF-8 (BOM or not), UTF-16 with a BOM, else strict Windows-1252 (pitfalls P3, P4).

    Never ``errors="replace"``/``"ignore"``. Returns ``(text, note)``.

    Raises:
        InputFileError: a NUL byte in the first KB (binary junk), or bytes that
            neither encoding can decode, naming the line.
    """
    for bom, codec, label in (
        (codecs.BOM_UTF32_LE, "utf-32", "UTF-32"),
        (codecs.BOM_UTF32_BE, "utf-32", "UTF-32"),
        (codecs.BOM_UTF8, "utf-8-sig", "UTF-8 (with BOM)"),
        (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"),
        (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"),
    ):
        if data.startswith(bom):
            try:
                text = data.decode(codec)
            except UnicodeDecodeError as exc:
                line = data[: exc.start].decode(codec, "replace").count("\n") + 1
                raise InputFileError(
                    f"{name} line {line}: the file says it is {label} but has bytes that are not — "
                    "save it again as 'CSV UTF-8' from Excel"
                ) from None
            nul = text.find("\x00", 0, 1024)
            if nul >= 0:
                raise InputFileError(_nul_message(name, text.count("\n", 0, nul) + 1))
            return text, f"Read as {label}"
    nul = data.find(b"\x00", 0, 1024)
    if nul >= 0:
        raise InputFileError(_nul_message(name, data.count(b"\n", 0, nul) + 1))
    try:
        return data.decode("utf-8"), "Read as UTF-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "Read as Windows-1252 (the file is not UTF-8)"
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputFileError(
            f"{name} line {line}: the text is neither UTF-8 nor Windows-1252 (byte 0x{data[exc.start]:02X}) — "
            "it may not be a text file. Save the list as 'CSV UTF-8' or .xlsx"
        ) from None


def _nul_message(name: str, line: int) -> str:
    if name.rstrip("'").lower().endswith((".xlsx", ".xlsm", ".xls", ".ods")):
        # Named as a workbook but neither a zip nor an OLE2 file: damaged, or not a spreadsheet at all.
        return (
            f"{name} is not a readable spreadsheet: it is neither an Excel/LibreOffice workbook nor a text file. "
            "Ask the sender for the file again, or open it in Excel or LibreOffice and save it as .xlsx"
        )
    return (
        f"{name} line {line}: contains a NUL byte — it is not a text/CSV file (or it is UTF-16 without "
        "a byte-order mark). Save the list as .xlsx or 'CSV UTF-8' and try again"
    )


def _markup_message(name: str, head: str) -> str:
    lower = head.lower()
    if "<html" in lower or "<!doctype html" in lower or "<table" in lower or "<body" in lower:
        what = "an HTML page"
    elif "urn:schemas-microsoft-com:office:spreadsheet" in lower or "<workbook" in lower:
        what = "an Excel 2003 XML spreadsheet"
    else:
        what = "an XML file, not a spreadsheet"
    return f"{name} is really {what} — open it in Excel and save as .xlsx"


def _warn_mojibake(text: str, ctx: _Context) -> None:
    """Warn when UTF-8 text was decoded twice somewhere upstream: ``Ã¸`` for ``ø`` (pitfalls P4)."""
    positions = [p for p in (text.find(m) for m in _MOJIBAKE) if p >= 0]
    if positions:
        first = min(positions)
        sample = text[first : first + 2]
        line = text.count("\n", 0, first) + 1
        ctx.warnings.append(
            f"{_quote(ctx.path.name)} line {line}: the text looks double-encoded ('{sample}' where æ, ø or å was "
            "probably meant) — the file was converted twice; export it again as 'CSV UTF-8' from the original"
        )


class _CsvError(Exception):
    """csv.Error with the line where the failing record starts."""

    def __init__(self, line: int, detail: str) -> None:
        super().__init__(detail)
        self.line = line
        self.detail = detail


def _csv_records(text: str, delimiter: str, limit: int | None = None) -> Iterable[tuple[int, list[str]]]:
    """``(start line, fields)`` per record, with strict quoting (pitfalls P2).

    Raises:
        _CsvError: broken quoting, with the line where the bad record starts.
    """
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    line = 0
    count = 0
    while limit is None or count < limit:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _CsvError(line + 1, str(exc)) from None
        yield line + 1, fields
        line = reader.line_num
        count += 1


def _choose_delimiter(text: str, ctx: _Context, overrides: dict[str, Field], line_offset: int) -> str:
    """Pick ``;``, ``,`` or tab by known header names, then by equal field counts (pitfalls P2).

    Each candidate is parsed with ``csv`` and an explicit delimiter; never
    csv.Sniffer alone, never hand-split lines.
    """
    sample_end = len(text)
    if len(text) > 256 * 1024:
        cut = text.rfind("\n", 0, 256 * 1024)
        sample_end = cut if cut > 0 else len(text)
    sample = text[:sample_end]
    results = []
    for delimiter in _DELIMITERS:
        records: list[list[str]] = []
        try:
            for _, fields in _csv_records(sample, delimiter, limit=200):
                records.append(fields)
        except _CsvError:
            pass  # judge by the records before the bad quote; the full parse reports the line
        if not records:
            continue
        grid = _Grid(rows=[list(r) for r in records])
        header = _find_header(grid, overrides)
        if header is None:
            continue
        width = len(records[header.index])
        body = [r for r in records[header.index + 1 :] if r and not _is_blank_row(r)]
        consistent = sum(1 for r in body if len(r) == width or (len(r) > width and _is_blank_row(r[width:])))
        share = consistent / len(body) if body else 1.0
        results.append(((header.score, share), delimiter, records))
    if not results:
        first = text.split("\n", 1)[0].strip()[:120]
        raise InputFileError(
            f"{_quote(ctx.path.name)}: no header row found — the first line is '{first}'. "
            "The file needs a header with column names such as Navn, E-mail, Beløb, separated by ';', ',' or tabs"
        )
    results.sort(key=lambda item: item[0], reverse=True)
    best = results[0]
    rivals = [r for r in results[1:] if r[0] == best[0] and r[2] != best[2]]
    if rivals:
        names = " or ".join(_DELIMITER_NAMES[d] for d in [best[1]] + [r[1] for r in rivals])
        raise InputFileError(
            f"{_quote(ctx.path.name)}: Could not tell whether the file is separated by {names}. "
            "Save it as 'CSV UTF-8' from Excel, or add a first line sep=; (with the right separator)"
        )
    return best[1]


def _parse_csv(text: str, delimiter: str, ctx: _Context, line_offset: int) -> _Grid:
    """All records as a grid of strings, with clear messages for broken quoting (pitfalls P2).

    Record numbers are the rows a spreadsheet shows (a quoted value with line
    breaks stays one row; a ``sep=`` line is not a row, as in Excel).
    """
    name = _quote(ctx.path.name)
    rows: list[list[str]] = []
    lines: list[int] = []
    # Once more non-empty records were stored than the row limit allows whatever the
    # header row is, the file will be refused: only count the rest (issue #6: memory).
    store_limit = ctx.opts.max_rows + HEADER_SEARCH_ROWS + 1
    stored = overflow = 0
    try:
        for start, fields in _csv_records(text, delimiter):
            non_blank = bool(fields) and not _is_blank_row(fields)
            if stored >= store_limit:
                overflow += non_blank
                continue
            stored += non_blank
            rows.append(fields)
            lines.append(start + line_offset)
    except _CsvError as exc:
        at = exc.line + line_offset
        if "unexpected end of data" in exc.detail:
            raise InputFileError(
                f"{name} line {at}: a quote (\") opened here is never closed, so the rest of the file would be "
                "one value — fix the quotes on that line or export the file again"
            ) from None
        raise InputFileError(
            f"{name} line {at}: the quoting is broken ({exc.detail}) — a value has a stray \" character. "
            "Fix the quotes on that line or export the file again"
        ) from None
    _check_swallowed_lines(rows, lines, delimiter, name)
    return _Grid(rows=rows, line_numbers=lines, first_row=1, uncounted_rows=overflow)


def _check_swallowed_lines(rows: list[list[str]], lines: list[int], delimiter: str, name: str) -> None:
    """A quoted value that runs over lines holding whole records: an unclosed quote (pitfalls P2)."""
    if not rows:
        return
    width = max(len(rows[0]), 2)
    for fields, line in zip(rows, lines):
        for value in fields:
            if "\n" in value and delimiter in value:
                inner = value.split("\n")[1:]
                if any(part.count(delimiter) >= width - 1 for part in inner):
                    raise InputFileError(
                        f"{name} line {line}: a quote (\") opened here runs over the next lines, which look like "
                        "rows of their own — a closing quote is missing. Fix the quotes on that line"
                    )


# --- from grid to rows ---------------------------------------------------------------


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

    # Data rows: keep the real row numbers, drop fully empty rows (pitfalls P10).
    # A first cell with a value settles it without a call; only the others get the full check.
    kept: list[int] = [
        i for i, row in enumerate(body)
        if row and ((v := row[0]).__class__ is str and v and not v.isspace() or v is not None and v.__class__ is not str)
        or not _is_blank_row(row)
    ]
    count = len(kept) + grid.uncounted_rows
    if count > ctx.opts.max_rows:
        raise ctx.error(
            f"the sheet has {count:,} data row{'s' if count != 1 else ''}; "
            f"the limit is {ctx.opts.max_rows:,} — split it into smaller files"
        )
    if is_csv:
        _check_csv_widths(grid, header_index, header_cells, body, kept, ctx)
    rows = [body[i] for i in kept]
    first_data = grid.first_row + header_index + 1
    numbers = [first_data + i for i in kept]
    width = len(header_cells)
    if is_csv:  # short CSV records end early; long ones were checked above
        for row in rows:
            if len(row) != width:
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
    for start, end in spans:
        part = rows[start:end]
        column_values = list(zip(*part)) if part else [() for _ in range(width)]
        originals: list[list[Any] | tuple[Any, ...]] = []
        joined: list[str | None] = []
        for col in columns:
            values = column_values[col.index] if part else ()
            text = _joined_text(values)
            plain = text is not None and _plain_original(text)
            originals.append(values if plain else _original_column(values))
            joined.append(text if plain else None)
        block_originals.append(originals)
        block_joined.append(joined)

    def whole(k: int) -> Iterable[Any]:
        """Column k's originals from top to bottom, across the blocks."""
        return chain.from_iterable(block[k] for block in block_originals)

    # Formula cells without a cached value and error cells (pitfalls P9); 0000 formats (P5).
    issues: dict[tuple[int, int], tuple[str, str]] = {}
    formats: dict[tuple[int, int], str] = {}
    if xlsx is not None:
        issues, formats = _xlsx_extras(xlsx, columns, [whole(k) for k in range(len(columns))], numbers, grid.first_col)
        _warn_hidden(xlsx, columns, numbers, grid.first_col, ctx)
    elif ctx.format == "xls":
        below = {Field.POSTAL_CODE: 1000, Field.PHONE: 10_000_000}
        want = _numeric_cells(columns, [whole(k) for k in range(len(columns))], numbers, grid.first_col, below)
        if want:
            formats = _xls_number_formats(ctx, want)

    # The amount column's convention comes from all its text cells (pitfalls P1), so it is
    # decided over the whole column, once, when some block has a text amount.
    conventions: list[V.AmountConvention] = []

    def amount_convention(k: int) -> V.AmountConvention:
        if not conventions:
            conventions.append(V.amount_convention(whole(k)))
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

    hidden_by_formulas = _rows_only_formulas(issues, columns, numbers, first_data, grid.first_col)
    if hidden_by_formulas:
        result_rows = sorted(result_rows + hidden_by_formulas, key=lambda r: r.number)

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
    )


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
        text = V.clean_header(raw) if not _is_blank(raw) else ""
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
    keys = [V.normalize_header(c.header) for c in columns]
    for key, fld in overrides.items():
        matches = [c for c, k in zip(columns, keys) if k == key]
        if not matches:
            wanted, header_text = next(
                (fname, text) for fname, text in ctx.opts.columns.items() if V.normalize_header(text) == key
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
            shown = "" if len(headers) == 1 else " (" + ", ".join(f"'{c.header}'" for c in cols) + ")"
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
        else (int(v) if v.is_integer() else (get(v) or decimals.setdefault(v, V.number_from_float(v))))
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
        return V.strip_formula_guard(value) if value else None
    if cls is float:
        return V.number_from_float(value)
    return value


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
) -> tuple[dict[tuple[int, int], tuple[str, str]], dict[tuple[int, int], str]]:
    """Formula/error cells (pitfalls P9) and ``0000`` formats of numeric postal codes/phones (P5).

    The cell-by-cell pass over the sheet XML runs only when the cheap scan saw
    a formula or an error cell, or when the workbook defines a zero-padding
    number format and a postal code/phone column holds numbers.
    """
    xlsx.scan()
    want: set[tuple[int, int]] = set()
    pad_styles = None
    if any(c.field in (Field.POSTAL_CODE, Field.PHONE) for c in columns):
        pad_styles = xlsx.zero_pad_styles()  # styles.xml is small; the cells are many
        if pad_styles:
            below = {Field.POSTAL_CODE: 10**9, Field.PHONE: 10**15}
            want = _numeric_cells(columns, originals, numbers, first_col, below)
    issues: dict[tuple[int, int], tuple[str, str]] = {}
    formats: dict[tuple[int, int], str] = {}
    if xlsx.has_formula_or_error or want:
        issues, styles = xlsx.cells(want)
        formats = {key: pad_styles[style] for key, style in styles.items() if pad_styles and style in pad_styles}
    return issues, formats


def _xls_number_formats(ctx: _Context, want: set[tuple[int, int]]) -> dict[tuple[int, int], str]:
    """Number formats of XLS cells, via xlrd with formatting info (pitfalls P5)."""
    try:
        import xlrd

        book = xlrd.open_workbook(file_contents=ctx.data, formatting_info=True, on_demand=True)
        sheet = book.sheet_by_name(ctx.sheet_name)
        result = {}
        for row, col in want:
            xf = book.xf_list[sheet.cell_xf_index(row - 1, col)]
            fmt = book.format_map.get(xf.format_key)
            if fmt is not None and V.zero_pad_width(fmt.format_str):
                result[(row, col)] = fmt.format_str
        return result
    except Exception:  # formats are a refinement; the values were read already
        return {}


def _warn_hidden(xlsx: _XlsxParts, columns: list[_Column], numbers: list[int], first_col: int, ctx: _Context) -> None:
    """Hidden rows and columns are read like any other: say so (pitfalls P13)."""
    if xlsx.hidden_rows:
        hidden = [n for n in numbers if n in xlsx.hidden_rows]
        if hidden:
            many = len(hidden) > 1
            shown = ", ".join(map(str, hidden[:10])) + (f" and {len(hidden) - 10} more" if len(hidden) > 10 else "")
            ctx.warnings.append(
                f"{ctx.where}: {len(hidden)} hidden row{'s' if many else ''} will be read too "
                f"(row{'s' if many else ''} {shown}) — unhide to check, and delete rows that "
                "should not get gift certificates"
            )
    if xlsx.hidden_cols:
        hidden_cols = [c for c in columns if first_col + c.index in xlsx.hidden_cols]
        if hidden_cols:
            ctx.warnings.append(
                f"{ctx.where}: hidden column{'s' if len(hidden_cols) > 1 else ''} "
                f"{', '.join(f'{c.letter} ({c.header})' for c in hidden_cols)} will be read too — unhide to check"
            )


_FORMULA_MESSAGE = (
    "Cell {ref} ({header}) has the formula {formula} but no calculated value. "
    "Open and save the file in Excel/LibreOffice, or paste values."
)
_ERROR_MESSAGE = "Cell {ref} ({header}) shows the error {error} — fix the formula or type the value"

_ODD_CHARACTER = re.compile("[" + V.INVISIBLE + "\u00a0\u202f\u2007]")
def _issue_problem(column: _Column, row: int, col_abs: int, kind: str, text: str) -> RowProblem:
    template = _FORMULA_MESSAGE if kind == "formula" else _ERROR_MESSAGE
    message = template.format(ref=f"{column_letter(col_abs)}{row}", header=column.header, formula=text, error=text)
    return RowProblem(row, column.header, message, text, column.letter)


def _rows_only_formulas(
    issues: dict[tuple[int, int], tuple[str, str]],
    columns: list[_Column],
    numbers: list[int],
    first_data: int,
    first_col: int,
) -> list[InputRow]:
    """Rows that look empty only because their mapped cells are formulas without values or errors.

    Such a row must not vanish (pitfalls P9): it comes back with a problem per
    cell. Formulas in unmapped columns of otherwise empty rows (a template's
    Total column filled down) leave the row empty and skipped.
    """
    if not issues:
        return []
    by_col = {first_col + c.index: c for c in columns}
    kept = set(numbers)
    rows = sorted({r for (r, col) in issues if r >= first_data and r not in kept
                   and col in by_col and by_col[col].field is not None})
    result = []
    for row in rows:
        original = {c.header: None for c in columns}
        problems = []
        for col_abs, column in sorted(by_col.items()):
            if (row, col_abs) in issues:
                kind, text = issues[(row, col_abs)]
                problems.append(_issue_problem(column, row, col_abs, kind, text))
                if kind == "error":
                    original[column.header] = text
        result.append(InputRow(row, {}, original, problems))
    return result


_SLOW = object()  # "this cell needs the full parser" in the vectorised first pass
_BLOCK_ROWS = 1024  # rows worked on together in _build_sheet (tests make it small)
_FAST_PATHS = True  # tests switch this off to compare the fast paths with the per-cell parsers
_TEXT_FIELDS = (Field.NAME, Field.FIRST_NAME, Field.LAST_NAME, Field.TYPE, Field.DEPARTMENT,
                Field.ADDRESS, Field.CITY)


def _fast_column(
    fld: Field, values: list[Any], countries: list[Any] | None, padded: bool, joined: str | None = None
) -> list[Any]:
    """The common cells of a column parsed in one comprehension; ``_SLOW`` for the rest.

    Every fast branch gives exactly what the matching :mod:`flexybulk.values`
    function would (ASCII text needs no NFKC/NBSP work; an 8-digit integer
    phone in DK is ``+45`` and its digits); anything unusual is left to it.
    Keeps the 100,000-row case near calamine's own read time (issue #6, P11).
    """
    S = _SLOW
    if not _FAST_PATHS:
        return [None if v is None else S for v in values]
    if fld in _TEXT_FIELDS:
        # Plain text: ASCII, or composed (NFC) text without invisible characters or NBSP.
        odd, nfc = _ODD_CHARACTER.search, unicodedata.is_normalized
        if joined is not None and (joined.isascii() or (not odd(joined) and nfc("NFC", joined))):
            # Every cell is plain text (checked once over the joined column): strip them in C.
            out = list(map(str.strip, values))
            return out if all(out) else [v or None for v in out]
        return [
            None if v is None else (
                (v.strip() or None) if v.__class__ is str and (v.isascii() or (not odd(v) and nfc("NFC", v))) else S
            )
            for v in values
        ]
    if fld is Field.EMAIL:
        if joined is not None and joined.isascii() and "mailto:" not in joined.lower():
            # All ASCII text and no mailto: anywhere: strip and lower-case in C, then check the
            # cells in C; any cell that fails a check sends the column to the comprehension below.
            out = list(map(str.lower, map(str.strip, values)))
            if all(out) and set(map(str.count, out, repeat("@"))) == {1} and not any(map(str.endswith, out, repeat("."))):
                return out
        return [
            None if v is None else (
                e if v.__class__ is str and v.isascii() and (e := v.strip().lower()) and e.count("@") == 1
                and e[-1] != "." and not e.startswith("mailto:") else S
            )
            for v in values
        ]
    if fld in (Field.COUNTRY, Field.CURRENCY):
        return [None if v is None else ((v.strip().upper() or None) if v.__class__ is str and v.isascii() else S)
                for v in values]
    if fld is Field.AMOUNT:
        return [None if v is None else (Decimal(v) if v.__class__ is int else (v if v.__class__ is Decimal else S))
                for v in values]
    if fld is Field.QUANTITY:
        return [None if v is None else (v if v.__class__ is int else S) for v in values]
    if fld is Field.PHONE and not padded:
        # An 8-digit integer, or ASCII text that normalize_phone's Danish fast path takes
        # (the same two patterns: punctuation dropped, then +45/0045/45 and 8 digits).
        dk, punct = V._DK_FAST.match, V._PHONE_PUNCTUATION.sub
        if countries is None:
            return [None if v is None else (
                ("+45%d" % v) if v.__class__ is int and 10_000_000 <= v <= 99_999_999
                else ("+45" + m.group(1)) if v.__class__ is str and v.isascii() and (m := dk(punct("", v))) else S
            ) for v in values]
        return [None if v is None else (
            S if c is not None and c != "DK"
            else ("+45%d" % v) if v.__class__ is int and 10_000_000 <= v <= 99_999_999
            else ("+45" + m.group(1)) if v.__class__ is str and v.isascii() and (m := dk(punct("", v))) else S
        ) for v, c in zip(values, countries)]
    if fld is Field.POSTAL_CODE and not padded:
        return [None if v is None else (str(v) if v.__class__ is int and v >= 1000 else S) for v in values]
    return [None if v is None else S for v in values]


def _parse_fields(
    columns: list[_Column],
    originals: list[list[Any]],
    numbers: list[int],
    first_col: int,
    issues: dict[tuple[int, int], tuple[str, str]],
    formats: dict[tuple[int, int], str],
    joined: list[str | None] | None = None,
    amount_convention: Callable[[int], V.AmountConvention] | None = None,
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
        for (row, col), (kind, text) in sorted(issues.items()):
            if col not in col_index or row not in row_index:
                continue
            k, i = col_index[col], row_index[row]
            per_column[k].append((i, _issue_problem(columns[k], row, col, kind, text)))
            blocked.setdefault(k, set()).add(i)
            if kind == "error":
                if originals[k].__class__ is not list:  # a plain text column shared with the grid
                    originals[k] = list(originals[k])
                originals[k][i] = text

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
            convention = amount_convention(k) if amount_convention else V.amount_convention(values)
        column_blocked = blocked.get(k, ())
        problems = per_column[k]
        for i in slow:
            value = values[i]
            out[i] = None
            if i in column_blocked:
                continue
            try:
                if fld is Field.AMOUNT:
                    out[i] = V.parse_amount(value, convention)
                elif fld is Field.QUANTITY:
                    out[i] = V.parse_quantity(value)
                elif fld is Field.EMAIL:
                    out[i] = V.normalize_email(value)
                elif fld in (Field.COUNTRY, Field.CURRENCY):
                    out[i] = V.normalize_code(value)
                elif fld is Field.PHONE:
                    fmt = formats.get((numbers[i], col_abs)) if formats else None
                    out[i] = V.normalize_phone(value, countries[i] if countries else None, fmt)
                elif fld is Field.POSTAL_CODE:
                    fmt = formats.get((numbers[i], col_abs)) if formats else None
                    code = out[i] = V.postal_code_text(value, fmt)
                    if code is not None:
                        if fmt and code != str(value):
                            values[i] = code  # keep what the sheet shows: "0800" (pitfalls P5)
                        warning = V.postal_code_warning(code, countries[i] if countries else None)
                        if warning:
                            problems.append((i, RowProblem(numbers[i], column.header, warning, code, column.letter)))
                else:
                    out[i] = V.clean_text(value)
            except V.CellValueError as exc:
                shown = value if value.__class__ is str else V.clean_text(value)
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
