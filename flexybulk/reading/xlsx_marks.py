"""The person's marks in an XLSX sheet: hidden rows and AutoFilters, struck-through cells, hyperlinks,
and the workbooks its formulas link to (issue #12).

Everything here starts from what :class:`~.xlsx_scan._XlsxParts` saw in its one
streaming pass (hidden rows, the XML after ``</sheetData>``) and reads more only
when that says there is something to read: the sheet's relationships for
hyperlinks and tables, ``styles.xml`` for a struck-through font (and only then
one regex pass over the sheet for the cells using it), the external link
parts for the file names. A sheet with none of these costs nothing more.
"""

from __future__ import annotations

import html
import posixpath
import re
import zipfile
from typing import Any
from urllib.parse import unquote

from .context import _MIB, _column_index, _quote
from .formats import _read_member
from .marks import _Filter, _Marks
from .xlsx_scan import _XlsxParts

_AUTOFILTER = re.compile(
    rb"<(?:\w+:)?autoFilter\b[^>]*?\bref=\"\$?([A-Z]+)\$?(\d+)(?::\$?([A-Z]+)\$?(\d+))?\"[^>]*?(?:/>|>(.*?)</(?:\w+:)?autoFilter>)",
    re.DOTALL)
_FILTER_COLUMN = re.compile(rb"<(?:\w+:)?filterColumn\b[^>]*?\bcolId=\"(\d+)\"[^>]*?(?:/>|>(.*?)</(?:\w+:)?filterColumn>)",
                            re.DOTALL)
_FILTERS = re.compile(rb"<(?:\w+:)?filters\b([^>]*?)(?:/>|>(.*?)</(?:\w+:)?filters>)", re.DOTALL)
_FILTER_VALUE = re.compile(rb"<(?:\w+:)?filter\b[^>]*?\bval=\"([^\"]*)\"")
_HYPERLINK = re.compile(rb"<(?:\w+:)?hyperlink\b([^>]*?)/?>")
_TABLE_PART = re.compile(rb"<(?:\w+:)?tablePart\b[^>]*?\br:id=\"([^\"]+)\"")
_ATTR = re.compile(rb"\b([\w:]+)=\"([^\"]*)\"")
_CELL_REF = re.compile(r"^\$?([A-Z]+)\$?(\d+)(?::\$?([A-Z]+)\$?(\d+))?$")


def _xlsx_marks(xlsx: _XlsxParts) -> _Marks:
    """The marks of the chosen sheet; call after :meth:`_XlsxParts.scan` and ``cells()`` (for HYPERLINK formulas)."""
    marks = _Marks(hidden_rows=set(xlsx.hidden_rows), links=dict(xlsx.formula_links))
    after = xlsx.after_data
    rels: dict[str, str] | None = None
    if after and xlsx.hidden_rows:
        marks.filters = [f for f in (_filter(m) for m in _AUTOFILTER.finditer(after)) if f]
        if b"tablePart" in after:
            rels = _sheet_rels(xlsx)
            for rid in _TABLE_PART.findall(after):
                target = rels.get(rid.decode())
                if target:
                    table = _member_bytes(xlsx, target, 4 * _MIB)
                    marks.filters += [f for f in (_filter(m) for m in _AUTOFILTER.finditer(table)) if f]
    if after and b"hyperlink" in after:
        rels = rels if rels is not None else _sheet_rels(xlsx)
        for match in _HYPERLINK.finditer(after):
            attrs = dict(_ATTR.findall(match.group(1)))
            target = rels.get(attrs.get(b"r:id", b"").decode())
            ref = _CELL_REF.match(attrs.get(b"ref", b"").decode())
            if target and ref:
                c0, r0 = _column_index(ref.group(1)), int(ref.group(2))
                c1, r1 = (_column_index(ref.group(3)), int(ref.group(4))) if ref.group(3) else (c0, r0)
                if (r1 - r0 + 1) * (c1 - c0 + 1) <= 100_000:
                    marks.links.update(((r, c), html.unescape(target)) for r in range(r0, r1 + 1) for c in range(c0, c1 + 1))
    struck = _struck_styles(xlsx.styles_root())
    if struck and xlsx.member is not None:
        marks.struck = _struck_cells(xlsx, struck)
    return marks


def _filter(match: re.Match) -> _Filter | None:
    """An ``<autoFilter>``'s range and its plain value criteria (``<filters><filter val=.../>``)."""
    c0, r0 = _column_index(match.group(1).decode()), int(match.group(2))
    r1 = int(match.group(4)) if match.group(4) else r0
    flt = _Filter(first_row=r0, last_row=r1)
    for column in _FILTER_COLUMN.finditer(match.group(5) or b""):
        body = column.group(2) or b""
        values = _FILTERS.fullmatch(body.strip())
        if values is None:  # customFilters, top10, dynamicFilter, colour filters: not evaluated here
            flt.criteria[c0 + int(column.group(1))] = None
            continue
        shown = {html.unescape(v.decode("utf-8", "replace")).strip() for v in _FILTER_VALUE.findall(values.group(2) or b"")}
        if b'blank="1"' in values.group(1) or b'blank="true"' in values.group(1):
            shown.add("")
        flt.criteria[c0 + int(column.group(1))] = frozenset(shown)
    return flt


def _struck_styles(root: Any) -> set[int]:
    """Indexes of the cell formats (``cellXfs``) whose font is struck through."""
    if root is None:
        return set()
    struck_fonts: set[int] = set()
    xfs: list[Any] = []
    for element in root.iter():
        tag = element.tag.rsplit("}", 1)[-1]
        if tag == "fonts":
            for i, font in enumerate(f for f in element if f.tag.rsplit("}", 1)[-1] == "font"):
                for prop in font:
                    if prop.tag.rsplit("}", 1)[-1] == "strike" and prop.get("val", "true") in ("1", "true"):
                        struck_fonts.add(i)
        elif tag == "cellXfs":
            xfs = [xf for xf in element if xf.tag.rsplit("}", 1)[-1] == "xf"]
    if not struck_fonts:
        return set()
    return {i for i, xf in enumerate(xfs) if int(xf.get("fontId", "0") or 0) in struck_fonts}


def _struck_cells(xlsx: _XlsxParts, styles: set[int]) -> set[tuple[int, int]]:
    """(row, column) of the cells whose style is one of ``styles``: one regex pass over the sheet XML."""
    alternatives = b"|".join(str(s).encode() for s in sorted(styles))
    cell = re.compile(rb"<(?:\w+:)?c r=\"([A-Z]+)(\d+)\"[^>]*?\bs=\"(?:" + alternatives + rb")\"")
    found: set[tuple[int, int]] = set()
    tail = b""
    for chunk in xlsx._chunks():
        buf = tail + chunk
        cut = buf.rfind(b"<")
        for match in cell.finditer(buf, 0, cut if cut > 0 else len(buf)):
            found.add((int(match.group(2)), _column_index(match.group(1).decode())))
        tail = buf[cut:] if cut > 0 else b""
    return found


def _sheet_rels(xlsx: _XlsxParts) -> dict[str, str]:
    """The chosen sheet's relationships: id -> target (a member path, or an external URL as written)."""
    folder, name = posixpath.split(xlsx.member or "")
    return _rels(xlsx.zf, f"{folder}/_rels/{name}.rels", folder, _quote(xlsx.ctx.path.name))


def _rels(zf: zipfile.ZipFile, member: str, folder: str, name: str) -> dict[str, str]:
    from defusedxml import ElementTree as ET

    if member not in zf.namelist():
        return {}
    try:
        root = ET.fromstring(_read_member(zf, member, 4 * _MIB, name))
    except Exception:  # an odd part: no links or tables to learn from it
        return {}
    out = {}
    for rel in root.iter():
        if rel.tag.endswith("Relationship") and rel.get("Id"):
            target = rel.get("Target", "")
            if rel.get("TargetMode") != "External":
                target = posixpath.normpath(posixpath.join(folder, target)).lstrip("/")
            out[rel.get("Id")] = target
    return out


def _member_bytes(xlsx: _XlsxParts, member: str, limit: int) -> bytes:
    if member not in xlsx.zf.namelist():
        return b""
    return _read_member(xlsx.zf, member, limit, _quote(xlsx.ctx.path.name))


def _external_books(zf: zipfile.ZipFile, name: str) -> dict[int, str]:
    """External workbook number as formulas write it (``[1]``) -> the linked file's name (issue #12).

    The numbers follow ``<externalReferences>`` in ``xl/workbook.xml``; each
    external link part names its file in its own relationships.
    """
    if not any(n.startswith("xl/externalLinks/") for n in zf.namelist()):
        return {}
    workbook = _read_member(zf, "xl/workbook.xml", 16 * _MIB, name)
    refs = re.search(rb"<(?:\w+:)?externalReferences>(.*?)</(?:\w+:)?externalReferences>", workbook, re.DOTALL)
    if not refs:
        return {}
    book_rels = _rels(zf, "xl/_rels/workbook.xml.rels", "xl", name)
    books: dict[int, str] = {}
    for number, rid in enumerate(re.findall(rb"\br:id=\"([^\"]+)\"", refs.group(1)), start=1):
        part = book_rels.get(rid.decode())
        if not part:
            continue
        folder, base = posixpath.split(part)
        targets = _rels(zf, f"{folder}/_rels/{base}.rels", folder, name)
        path = next(iter(targets.values()), "")
        books[number] = posixpath.basename(unquote(path).replace("\\", "/")) or path or "another workbook"
    return books
