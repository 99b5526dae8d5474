"""The workbook engines: python-calamine, with openpyxl (XLSX) and xlrd (XLS) as fallbacks (pitfalls P20).

Each engine opens a workbook behind one small interface (``_Book``: the
sheets with their visibility, and one sheet's cells as a ``_Grid``) and gives
the values calamine gives (a datetime at midnight is a date). calamine reads
XLSX, XLSB, ODS and XLS (fast, no pandas, no NA guessing: pitfalls P7, P8, P11);
when it cannot open or parse a workbook the fallback takes over silently (XLSB has none),
and only when all fail is the file refused. :func:`_read_workbook` runs one
workbook from the engines through sheet choice to rows.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from dataclasses import dataclass
from typing import Any, Callable

from flexybulk.errors import InputFileError
from flexybulk.model import Field, Sheet

from .context import _Context, _Grid, _quote
from .layout import _choose_sheet, _likely_sheet
from .rows import _build_sheet
from .xlsx_scan import _XlsxParts


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
        # What to do first; the readers' own words last, for whoever looks into it (a fresh user read them as
        # jargon in the middle of the sentence).
        raise InputFileError(
            f"{name} is damaged or not a readable {ctx.format.upper()} file — open it in Excel or LibreOffice and "
            f"save it again as .xlsx. (The readers said: {'; '.join(errors) or 'no reader'}.)"
        )
    ctx.sheet_name = sheet_name
    if zf is not None and (xlsx is None or xlsx.sheet_name != sheet_name):
        if xlsx is not None:
            xlsx.scan()  # let the thread finish before the zip is read again
        xlsx = _XlsxParts(zf, sheet_name, ctx)
    return _build_sheet(grid, header, ctx, overrides, xlsx=xlsx, book=book)

