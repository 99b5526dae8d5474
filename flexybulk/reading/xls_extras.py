"""What a legacy XLS sheet's values do not carry, read through xlrd with formatting info: number formats
of postal codes and phones (pitfalls P5), error cells (P9: calamine gives ``#N/A`` as an empty cell),
and the person's marks, hidden and filtered-out rows, struck-through cells and hyperlinks, and
formulas that read another workbook (issue #12).

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


def _xls_extras(ctx: _Context, want: set[tuple[int, int]], recipient_cols: set[int], mapped_cols: set[int]
                ) -> tuple[dict[tuple[int, int], str], _Marks, dict[tuple[int, int], tuple[str, ...]]]:
    """``(formats, marks, issues)``: the zero-padding number formats of the ``want`` cells (row,
    column), the chosen sheet's marks (struck-through cells only in ``recipient_cols``), and its
    cell issues (as :mod:`.columns` takes them): the error cells of ``mapped_cols`` (``("error",
    "#N/A")``) and the cells whose formula reads another workbook (``("external", file name)``, or
    ``("external", file name, "#REF!")`` when the value it keeps shows an error)."""
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
    errors = _xls_errors(sheet, mapped_cols)
    issues: dict[tuple[int, int], tuple[str, ...]] = dict(errors)
    for key, (kind, book) in _xls_external(book, ctx.sheet_name).items():
        issues[key] = (kind, book, errors[key][1]) if key in errors else (kind, book)
    return formats, marks, issues


def _xls_errors(sheet: Any, cols: set[int]) -> dict[tuple[int, int], tuple[str, str]]:
    """(row, column) -> ``("error", "#DIV/0!")`` for the error cells (typed or a formula's cached
    result) in ``cols`` of an ``xlrd`` sheet (pitfalls P9)."""
    import xlrd

    found: dict[tuple[int, int], tuple[str, str]] = {}
    try:
        for c in cols:
            if c >= sheet.ncols:
                continue
            types = sheet.col_types(c)
            if xlrd.XL_CELL_ERROR in types:
                for r, kind in enumerate(types):
                    if kind == xlrd.XL_CELL_ERROR:
                        code = sheet.cell_value(r, c)
                        found[(r + 1, c)] = ("error", xlrd.error_text_from_code.get(code, "#ERROR"))
    except Exception:  # an odd sheet: the values were read already
        return {}
    return found


# --- formulas that read another workbook (issue #12) -------------------------------------------------
#
# xlrd gives cached values only. A formula's tokens (BIFF8 "parsed expressions") are read here just
# far enough to see 3-D references (ptgRef3d, ptgArea3d, ptgNameX and their error forms) whose
# EXTERNSHEET entry points at an external SUPBOOK, i.e. another file. A cell of an array formula or of a
# shared formula holds only ptgExp, pointing at the ARRAY or SHRFMLA record with the tokens.
# LibreOffice writes the SUPBOOK of a linked file it could not open with no sheets (ctab 0), which
# xlrd files as a DDE/OLE link; its path (an encoded file path, starting with 0x01) says it is a file.

_FORMULA, _SUPBOOK, _EOF, _ARRAY, _SHRFMLA = 0x0006, 0x01AE, 0x000A, 0x0221, 0x04BC
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

        kinds = (xlrd.book.SUPBOOK_EXTERNAL, xlrd.book.SUPBOOK_DDEOLE)
        external = {i for i, kind in enumerate(book._supbook_types) if kind in kinds}
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
                    if book._supbook_types[index] == xlrd.book.SUPBOOK_EXTERNAL or url.startswith("\x01"):
                        books[index] = _file_name(url)
                index += 1
        linked = {ixti: books[info[0]] for ixti, info in enumerate(book._externsheet_info) if info[0] in books}
        if not linked:
            return {}
        pos = book._sh_abs_posn[book.sheet_names().index(sheet_name)]
        found: dict[tuple[int, int], tuple[str, str]] = {}
        via: dict[tuple[int, int], list[tuple[int, int]]] = {}  # ptgExp's master cell -> the cells using it
        linked_masters: dict[tuple[int, int], str] = {}  # master cell -> the file its tokens read
        master: tuple[int, int] | None = None  # the cell of the last FORMULA record
        while pos + 4 <= len(mem):
            rtype, size = struct.unpack_from("<HH", mem, pos)
            data = mem[pos + 4:pos + 4 + size]
            pos += 4 + size
            if rtype == _EOF:
                break
            if rtype == _FORMULA and size >= 22:
                row, col = struct.unpack_from("<HH", data, 0)
                (cce,) = struct.unpack_from("<H", data, 20)
                rgce = data[22:22 + cce]
                if cce == 5 and rgce[0] == 0x01:  # ptgExp: the tokens are in the ARRAY/SHRFMLA record
                    master = struct.unpack_from("<HH", rgce, 1)
                    via.setdefault(master, []).append((row, col))
                    continue
                master = None
                name = _linked_book(rgce, linked)
                if name is not None:
                    found[(row + 1, col)] = ("external", name)
            elif rtype in (_ARRAY, _SHRFMLA) and master is not None and size >= 14:
                start = 14 if rtype == _ARRAY else 10  # RefU, then flags and unused (ARRAY) or reserved, cUse
                (cce,) = struct.unpack_from("<H", data, start - 2)
                name = _linked_book(data[start:start + cce], linked)
                if name is not None:
                    linked_masters[master] = name
        # The cells holding ptgExp come before and after the ARRAY/SHRFMLA record: mark them at the end.
        for key, name in linked_masters.items():
            for row, col in via.get(key, ()):
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
