"""Read a recipient list (XLSX, XLSB, ODS, XLS, CSV/TSV) into rows that keep their sheet row numbers.

The one entry point is :func:`read_sheet`::

    sheet = read_sheet("kampagne.xlsx", ReadOptions(columns={"amount": "Værdi i kr"}))

It decides the format by content, refuses unsafe or unreadable files with an
:class:`~flexybulk.errors.InputFileError` whose message names the file (and
sheet, row and column) and says what to do, picks the sheet and the header
row, maps the headers to :class:`~flexybulk.model.Field` names and parses each
cell. Cells that cannot be parsed become ``RowProblem`` data on their row,
never exceptions.

The package, one module per step of a read:

- :mod:`.formats`: what the file really is and whether it is safe (size, magic
  bytes, zip bombs, macros, passwords; issue #6, pitfalls P16).
- :mod:`.engines`: the workbook engines, python-calamine with openpyxl and xlrd
  as fallbacks (pitfalls P20).
- :mod:`.xlsx_scan`: what an XLSX sheet's values do not carry: formulas, error
  cells, hidden rows, number formats (pitfalls P5, P9, P13).
- :mod:`.text`, :mod:`.decoding`: CSV/TSV delimiters and quoting, and which
  encoding (pitfalls P2-P4; Mac Roman and ``--encoding``, issue #12).
- :mod:`.layout`: the sheet, the header row and the column-to-field map
  (pitfalls P12, P13, P15, P19); :mod:`.list_end`: where the list ends.
- :mod:`.rows`: from cells to :class:`~flexybulk.model.InputRow`\\ s with their
  row rules (pitfalls P9, P10, P11).
- :mod:`.marks`: what the person marked (hidden and filtered-out rows,
  strike-through, links), found by :mod:`.xlsx_marks`, :mod:`.xlsb_scan`,
  :mod:`.ods_scan` and :mod:`.xls_extras` (issue #12).
- :mod:`.columns`: one column parsed, fast path first (issue #4).
- :mod:`.cells`, :mod:`.amounts`: single cells and their column fast paths
  (pitfalls P1, P5-P8, P14, P17).
- :mod:`.context`: :class:`ReadOptions` and the shapes the modules share.

Each rule cites the pitfall in ``shared/pitfalls.md`` it comes from.
"""

from __future__ import annotations

import gc
import hashlib
from pathlib import Path

from flexybulk.errors import ConfigError, InputFileError
from flexybulk.model import Field, Sheet

from . import formats
from .context import ReadOptions, _Context, column_letter
from .engines import _read_workbook
from .layout import HEADER_SYNONYMS, RESULT_COLUMNS, _check_overrides
from .text import _read_text

__all__ = ["ReadOptions", "read_sheet", "HEADER_SYNONYMS", "RESULT_COLUMNS", "column_letter"]


def read_sheet(path: str | Path, opts: ReadOptions | None = None) -> Sheet:
    """Read one input file into a :class:`~flexybulk.model.Sheet`.

    Args:
        path: the file; its format is decided by content, not by name
            (pitfalls P16): zip -> XLSX/XLSB/ODS, OLE2 -> XLS, anything else -> text/CSV.
        opts: :class:`ReadOptions`; defaults when ``None``.

    Returns:
        The sheet: header row, column map, rows (fully empty rows left out,
        real row numbers kept; rows the person hid or filtered out are
        ``excluded``, issue #12), notes (encoding, header row, format surprises),
        warnings (double-encoded text, hidden columns) and ``list_end`` (what
        lies below the list and is not read).

    Raises:
        InputFileError: the file cannot be read at all or is refused as unsafe:
            too big, too many rows, a zip bomb, macros, a password, an HTML/XML
            page or binary junk, broken quoting, no header, a column with values
            but no header, two columns for one field, an unknown or ambiguous
            sheet (issue #6, pitfalls P2, P10-P13, P15, P16, P19).
        ConfigError: ``opts.columns`` names an unknown field, or ``opts.encoding``
            an unknown encoding.
    """
    opts = opts or ReadOptions()
    path = Path(path)
    ctx = _Context(path=path, opts=opts)
    overrides = _check_overrides(opts.columns)
    data = formats._read_bytes(path, opts)
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


def _read(data: bytes, ctx: _Context, overrides: dict[str, Field]) -> Sheet:
    """Dispatch on the first bytes (pitfalls P16)."""
    if data.startswith(b"PK\x03\x04"):
        ctx.archive = formats._open_zip(data, ctx)
        return _read_workbook(data, ctx, overrides, zf=ctx.archive if ctx.format == "xlsx" else None)
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        formats._check_ole2(data, ctx)
        return _read_workbook(data, ctx, overrides, zf=None)
    formats._refuse_other_formats(data, ctx)
    return _read_text(data, ctx, overrides)
