"""What a legacy XLS sheet's values do not carry, read through xlrd with formatting info: number formats
of postal codes and phones (pitfalls P5) and the person's marks, hidden and filtered-out rows,
struck-through cells and hyperlinks, and formulas that read another workbook (issue #12).

calamine gives the values; xlrd opens the workbook once more with
``formatting_info=True`` (XLS files are small: at most 65,536 rows). An
AutoFilter shows as the sheet's built-in ``_FilterDatabase`` name; XLS does not
say which hidden rows of its range the filter hid, so they all count as
filtered out.
"""

from __future__ import annotations

from typing import Any

from .cells import zero_pad_width
from .context import _Context
from .marks import _Filter, _Marks


def _xls_extras(ctx: _Context, want: set[tuple[int, int]], recipient_cols: set[int]
                ) -> tuple[dict[tuple[int, int], str], _Marks, dict[tuple[int, int], tuple[str, str]]]:
    """``(formats, marks, external)``: the zero-padding number formats of the ``want`` cells (row,
    column), the chosen sheet's marks (struck-through cells only in ``recipient_cols``), and its
    cells whose formula reads another workbook (``("external", file name)``, a cell issue)."""
    marks = _Marks()
    try:
        import xlrd

        book = xlrd.open_workbook(file_contents=ctx.data, formatting_info=True, on_demand=True)
        sheet = book.sheet_by_name(ctx.sheet_name)
    except Exception:  # formats and marks are refinements; the values were read already
        return {}, marks, {}
    formats = {}
    try:
        for row, col in want:
            xf = book.xf_list[sheet.cell_xf_index(row - 1, col)]
            fmt = book.format_map.get(xf.format_key)
            if fmt is not None and zero_pad_width(fmt.format_str):
                formats[(row, col)] = fmt.format_str
    except Exception:
        formats = {}

    marks.hidden_rows = {r + 1 for r, info in sheet.rowinfo_map.items() if info.hidden}
    if marks.hidden_rows:
        index = book.sheet_names().index(ctx.sheet_name)
        for name in book.name_obj_list:
            if name.builtin and name.name == "_FilterDatabase" and name.scope == index:
                try:
                    _, row_lo, row_hi, col_lo, _ = name.area2d()
                except Exception:  # an odd range: treat the whole sheet as filtered
                    row_lo, row_hi, col_lo = 0, sheet.nrows, 0
                marks.filters.append(_Filter(first_row=row_lo + 1, last_row=row_hi, criteria={col_lo: None}))
    struck_fonts = {i for i, font in enumerate(book.font_list) if font.struck_out}
    if struck_fonts:
        struck_xfs = {i for i, xf in enumerate(book.xf_list) if xf.font_index in struck_fonts}
        for r in range(sheet.nrows):
            for c in recipient_cols:
                if c < sheet.ncols and sheet.cell_xf_index(r, c) in struck_xfs:
                    marks.struck.add((r + 1, c))
    for (r, c), link in sheet.hyperlink_map.items():
        if link.type == "url" and link.url_or_path:
            marks.links[(r + 1, c)] = link.url_or_path.rstrip("\x00")
    return formats, marks, _xls_external(book, ctx.sheet_name)


# --- formulas that read another workbook (issue #12) -------------------------------------------------
#
# xlrd gives cached values only. A formula's tokens (BIFF8 "parsed expressions") are read here just
# far enough to see 3-D references (ptgRef3d, ptgArea3d, ptgNameX and their error forms) whose
# EXTERNSHEET entry points at an external SUPBOOK, i.e. another file.

_FORMULA, _SUPBOOK, _EOF = 0x0006, 0x01AE, 0x000A
_FIXED = {0x01: 4, 0x02: 4, 0x1C: 1, 0x1D: 1, 0x1E: 2, 0x1F: 8}
_CLASSED = {0x20: 7, 0x21: 2, 0x22: 3, 0x23: 4, 0x24: 4, 0x25: 8, 0x26: 6, 0x27: 6, 0x28: 6, 0x29: 2, 0x2A: 4,
            0x2B: 8, 0x2C: 4, 0x2D: 8, 0x39: 6, 0x3A: 6, 0x3B: 10, 0x3C: 6, 0x3D: 10}
_THREE_D = {0x39, 0x3A, 0x3B, 0x3C, 0x3D}


def _xls_external(book: Any, sheet_name: str | None) -> dict[tuple[int, int], tuple[str, str]]:
    """(row, column) -> ``("external", file name)`` for the sheet's formula cells that read another
    workbook; empty when the workbook links to none (or its records are odd). ``book`` is an
    ``xlrd.Book`` opened ``on_demand`` (its stream is still in ``book.mem``)."""
    import struct

    try:
        import xlrd
        from xlrd.biffh import unpack_unicode_update_pos

        external = {i for i, kind in enumerate(book._supbook_types) if kind == xlrd.book.SUPBOOK_EXTERNAL}
        if not external:
            return {}
        mem = book.mem
        books, pos, index = {}, book.base, 0
        while pos + 4 <= len(mem):  # the workbook globals: SUPBOOK records name the files
            rtype, size = struct.unpack_from("<HH", mem, pos)
            data = mem[pos + 4:pos + 4 + size]
            pos += 4 + size
            if rtype == _EOF:
                break
            if rtype == _SUPBOOK:
                if index in external:
                    url, _ = unpack_unicode_update_pos(data, 2, lenlen=2)
                    books[index] = _file_name(url)
                index += 1
        linked = {ixti: books[info[0]] for ixti, info in enumerate(book._externsheet_info) if info[0] in books}
        if not linked:
            return {}
        pos = book._sh_abs_posn[book.sheet_names().index(sheet_name)]
        found: dict[tuple[int, int], tuple[str, str]] = {}
        while pos + 4 <= len(mem):
            rtype, size = struct.unpack_from("<HH", mem, pos)
            data = mem[pos + 4:pos + 4 + size]
            pos += 4 + size
            if rtype == _EOF:
                break
            if rtype == _FORMULA and size >= 22:
                row, col = struct.unpack_from("<HH", data, 0)
                (cce,) = struct.unpack_from("<H", data, 20)
                name = _linked_book(data[22:22 + cce], linked)
                if name is not None:
                    found[(row + 1, col)] = ("external", name)
        return found
    except Exception:  # a refinement: an odd record leaves the values as read
        return {}


def _linked_book(rgce: bytes, linked: dict[int, str]) -> str | None:
    """The file a formula's tokens read through a 3-D reference into another workbook, or ``None``."""
    pos = 0
    while pos < len(rgce):
        ptg = rgce[pos]
        if 0x03 <= ptg <= 0x16:
            pos += 1
        elif ptg in _FIXED:
            pos += 1 + _FIXED[ptg]
        elif ptg == 0x17:  # ptgStr: cch, flags, characters
            cch, flags = rgce[pos + 1], rgce[pos + 2]
            pos += 3 + cch * (2 if flags & 1 else 1)
        elif ptg == 0x19:  # ptgAttr; tAttrChoose carries a jump table
            kind, count = rgce[pos + 1], int.from_bytes(rgce[pos + 2:pos + 4], "little")
            pos += 4 + (2 * (count + 1) if kind & 0x04 else 0)
        elif ptg >= 0x20:
            base = (ptg & 0x1F) | 0x20
            if base not in _CLASSED:
                return None
            if base in _THREE_D:
                ixti = int.from_bytes(rgce[pos + 1:pos + 3], "little")
                if ixti in linked:
                    return linked[ixti]
            pos += 1 + _CLASSED[base]
        else:
            return None  # a token this walk does not know: stop rather than guess
    return None


def _file_name(url: str) -> str:
    """The file name in a SUPBOOK's encoded path (``\x01\x02dir\x03Budget 2026.xls``) or URL."""
    import re
    from urllib.parse import unquote

    parts = [p for p in re.split(r"[\x00-\x08/\\]", unquote(url)) if p]
    return parts[-1] if parts else url or "another workbook"
