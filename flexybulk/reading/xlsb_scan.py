"""The person's marks in an XLSB (binary Excel) sheet: hidden rows, AutoFilter ranges, struck-through
cells and hyperlinks (issue #12).

calamine reads XLSB values; the marks are in the binary records, read here
after [MS-XLSB]: each record is a type and a size (variable-length integers)
and a body. ``workbook.bin`` names each sheet's part (``BrtBundleSh``),
``styles.bin`` the fonts (``BrtFont``, ``fStrikeout``) and cell formats
(``BrtXF``); the sheet's part has a row header per row (``BrtRowHdr``,
``fDyZero`` for hidden), the cells with their format, ``BrtBeginAFilter`` and
``BrtHLink``. This walks every record of the sheet in Python, so it costs
about a second per million cells: XLSB lists are rare and small. Formulas
are not read here (values linked from another workbook are not detected in XLSB).
"""

from __future__ import annotations

import posixpath
import struct
import zipfile
from typing import Iterator

from .context import _MIB, _Context, _quote
from .formats import MAX_UNCOMPRESSED, _read_member
from .marks import _Filter, _Marks
from .xlsx_marks import _rels

_ROW_HDR, _FONT, _XF, _BUNDLE_SH, _BEGIN_CELL_XFS, _END_CELL_XFS = 0x00, 0x2B, 0x2F, 0x9C, 0x269, 0x26A
_BEGIN_AFILTER, _HLINK = 0x1A1, 0x1EE
_CELLS = frozenset(range(0x01, 0x0D))  # BrtCellBlank .. BrtFmlaError: each starts with col (4) + iStyleRef (3)


def _records(data: bytes) -> Iterator[tuple[int, int, int]]:
    """``(type, body start, body end)`` of each record in ``data``."""
    pos, end = 0, len(data)
    while pos < end:
        b = data[pos]
        pos += 1
        rtype = b & 0x7F
        if b & 0x80 and pos < end:
            b = data[pos]
            pos += 1
            rtype |= (b & 0x7F) << 7
        size = shift = 0
        for _ in range(4):
            if pos >= end:
                return
            b = data[pos]
            pos += 1
            size |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        yield rtype, pos, pos + size
        pos += size


def _wide(data: bytes, pos: int) -> tuple[str, int]:
    """An XLWideString at ``pos``: (text, position after it); a null one (0xFFFFFFFF) is ``""``."""
    (count,) = struct.unpack_from("<I", data, pos)
    if count == 0xFFFFFFFF:
        return "", pos + 4
    return data[pos + 4:pos + 4 + 2 * count].decode("utf-16-le", "replace"), pos + 4 + 2 * count


def _xlsb_marks(ctx: _Context, zf: zipfile.ZipFile | None, recipient_cols: set[int]) -> _Marks:
    """The chosen sheet's marks; empty when a part is missing or odd (the values were read already)."""
    marks = _Marks()
    if zf is None:
        return marks
    name = _quote(ctx.path.name)
    try:
        member = _sheet_member(zf, ctx.sheet_name, name)
        if member is None:
            return marks
        struck_xfs = _struck_xfs(zf, name)
        data = _read_member(zf, member, MAX_UNCOMPRESSED, name)
        rels: dict[str, str] | None = None
        row = 0  # the sheet row of the cells that follow a row header
        for rtype, start, end in _records(data):
            if rtype == _ROW_HDR and end - start >= 12:
                row = struct.unpack_from("<I", data, start)[0] + 1
                if data[start + 11] & 0x10:  # fDyZero
                    marks.hidden_rows.add(row)
            elif rtype in _CELLS and struck_xfs and end - start >= 8:
                col = struct.unpack_from("<I", data, start)[0]
                if col in recipient_cols and int.from_bytes(data[start + 4:start + 7], "little") in struck_xfs:
                    marks.struck.add((row, col))
            elif rtype == _BEGIN_AFILTER and end - start >= 16:
                first, last, col0, _ = struct.unpack_from("<IIII", data, start)
                marks.filters.append(_Filter(first_row=first + 1, last_row=last + 1, criteria={col0: None}))
            elif rtype == _HLINK and end - start >= 20:
                first, last, col0, col1 = struct.unpack_from("<IIII", data, start)
                rid, _ = _wide(data, start + 16)
                if rels is None:
                    folder, base = posixpath.split(member)
                    rels = _rels(zf, f"{folder}/_rels/{base}.rels", folder, name)
                target = rels.get(rid)
                if target and (last - first + 1) * (col1 - col0 + 1) <= 100_000:
                    marks.links.update(((r + 1, c), target) for r in range(first, last + 1) for c in range(col0, col1 + 1))
    except (struct.error, ValueError, KeyError):
        return _Marks()
    return marks


def _sheet_member(zf: zipfile.ZipFile, sheet_name: str | None, name: str) -> str | None:
    """The part holding ``sheet_name``, from workbook.bin's ``BrtBundleSh`` and the workbook's relationships."""
    data = _read_member(zf, "xl/workbook.bin", 16 * _MIB, name)
    rels = _rels(zf, "xl/_rels/workbook.bin.rels", "xl", name)
    for rtype, start, end in _records(data):
        if rtype == _BUNDLE_SH:
            rid, pos = _wide(data, start + 8)
            sheet, _ = _wide(data, pos)
            if sheet == sheet_name:
                member = rels.get(rid)
                return member if member in zf.namelist() else None
    return None


def _struck_xfs(zf: zipfile.ZipFile, name: str) -> set[int]:
    """Indexes of the cell formats whose font is struck through (``BrtFont`` grbit 0x0008)."""
    if "xl/styles.bin" not in zf.namelist():
        return set()
    data = _read_member(zf, "xl/styles.bin", 16 * _MIB, name)
    fonts: list[bool] = []
    xfs: list[int] = []
    in_cell_xfs = False
    for rtype, start, end in _records(data):
        if rtype == _FONT and end - start >= 4:
            fonts.append(bool(struct.unpack_from("<H", data, start + 2)[0] & 0x0008))
        elif rtype == _BEGIN_CELL_XFS:
            in_cell_xfs = True
        elif rtype == _END_CELL_XFS:
            in_cell_xfs = False
        elif rtype == _XF and in_cell_xfs and end - start >= 6:
            xfs.append(struct.unpack_from("<H", data, start + 4)[0])
    return {i for i, font in enumerate(xfs) if font < len(fonts) and fonts[font]}
