"""The person's marks in an ODS sheet: hidden and filtered-out rows, struck-through cells, links,
and formulas that take their value from another file (issue #12).

calamine reads an ODS workbook's values only. ``content.xml`` is searched for
the few attributes that carry these marks (``table:visibility``, a
line-through text style, ``xlink:href="mailto:``, ``'file:`` in a formula);
only when one occurs is the chosen table parsed element by element, counting
rows and columns with their repeat attributes as LibreOffice writes them.
ODS says outright whether a row was filtered out (``visibility="filter"``) or
hidden by hand (``"collapse"``).
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
from urllib.parse import unquote

from .context import _Context, _quote
from .formats import MAX_UNCOMPRESSED, _read_member
from .marks import FILTERED, HIDDEN, _Marks

_TABLE = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
_STYLE = "urn:oasis:names:tc:opendocument:xmlns:style:1.0"
_TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
_XLINK = "http://www.w3.org/1999/xlink"
_MARKERS = (b'table:visibility="collapse"', b'table:visibility="filter"', b"text-line-through-style",
            b'xlink:href="mailto:', b"&apos;file:", b"'file:")
_EXTERNAL = re.compile(r"'file:(?://)?([^']*)'#")
_MAX_REPEAT = 100_000  # longer runs are the empty tail LibreOffice writes to the sheet's end


def _q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}"


def _ods_marks(ctx: _Context, zf: zipfile.ZipFile | None) -> tuple[_Marks, dict[tuple[int, int], tuple[str, str]]]:
    """``(marks, external cells)`` of the chosen sheet; external cells map (row, column) to
    ``("external", file name)``, as :mod:`.columns` takes cell issues."""
    marks = _Marks()
    external: dict[tuple[int, int], tuple[str, str]] = {}
    if zf is None or "content.xml" not in zf.namelist():
        return marks, external
    name = _quote(ctx.path.name)
    content = _read_member(zf, "content.xml", MAX_UNCOMPRESSED, name)
    if not any(m in content for m in _MARKERS):
        return marks, external
    struck_styles = _struck_styles(content, zf, name)
    _walk(content, ctx.sheet_name, struck_styles, marks, external)
    return marks, external


def _struck_styles(content: bytes, zf: zipfile.ZipFile, name: str) -> set[str]:
    """Names of the cell styles (automatic or named, with their parents) whose text is struck through."""
    from defusedxml import ElementTree as ET

    parents: dict[str, str | None] = {}
    struck: set[str] = set()
    sources = [content]
    if "styles.xml" in zf.namelist():
        styles = _read_member(zf, "styles.xml", 16 * 1024 * 1024, name)
        if b"line-through" in styles:
            sources.append(styles)
    for source in sources:
        if b"line-through" not in source:
            continue
        for _, element in ET.iterparse(io.BytesIO(source), events=("end",)):
            if element.tag != _q(_STYLE, "style") or element.get(_q(_STYLE, "family")) != "table-cell":
                continue
            style = element.get(_q(_STYLE, "name"))
            parents[style] = element.get(_q(_STYLE, "parent-style-name"))
            for props in element.iter(_q(_STYLE, "text-properties")):
                through = props.get(_q(_STYLE, "text-line-through-style"))
                if through is not None:
                    (struck.add if through != "none" else struck.discard)(style)
    # A style without a line-through of its own takes its parent's.
    for style in list(parents):
        seen, cur = set(), style
        while cur is not None and cur not in struck and cur not in seen:
            seen.add(cur)
            cur = parents.get(cur)
        if cur in struck:
            struck.add(style)
    return struck


def _walk(content: bytes, sheet_name: str | None, struck_styles: set[str], marks: _Marks,
          external: dict[tuple[int, int], tuple[str, str]]) -> None:
    """Parse the chosen table's rows and cells, counting repeats, and record their marks."""
    from defusedxml import ElementTree as ET

    table_tag, row_tag, col_tag = _q(_TABLE, "table"), _q(_TABLE, "table-row"), _q(_TABLE, "table-column")
    cell_tags = (_q(_TABLE, "table-cell"), _q(_TABLE, "covered-table-cell"))
    repeat_rows, repeat_cols = _q(_TABLE, "number-rows-repeated"), _q(_TABLE, "number-columns-repeated")
    visibility, style_name, formula = _q(_TABLE, "visibility"), _q(_TABLE, "style-name"), _q(_TABLE, "formula")
    default_style = _q(_TABLE, "default-cell-style-name")
    href, link_tag = _q(_XLINK, "href"), _q(_TEXT, "a")
    inside = False
    row = col = 0
    column_styles: list[str | None] = []
    row_style: str | None = None
    for event, element in ET.iterparse(io.BytesIO(content), events=("start", "end")):
        tag = element.tag
        if tag == table_tag:
            if event == "start":
                inside = element.get(_q(_TABLE, "name")) == sheet_name
                row, column_styles = 0, []
            elif inside:
                return
            continue
        if not inside:
            if event == "end" and tag in cell_tags:
                element.clear()
            continue
        if tag == col_tag and event == "start":
            count = int(element.get(repeat_cols, "1"))
            if count <= _MAX_REPEAT:
                column_styles.extend([element.get(default_style)] * count)
        elif tag == row_tag:
            count = int(element.get(repeat_rows, "1"))
            if event == "start":
                col, row_style = 0, element.get(default_style)
                state = element.get(visibility)
                if state in ("collapse", "filter") and count <= _MAX_REPEAT:
                    reason = FILTERED if state == "filter" else HIDDEN
                    marks.hidden.update((r, reason) for r in range(row + 1, row + count + 1))
            else:
                row += count
                element.clear()
        elif tag in cell_tags and event == "end":
            count = int(element.get(repeat_cols, "1"))
            if count <= _MAX_REPEAT:
                style = element.get(style_name) or row_style or (column_styles[col] if col < len(column_styles) else None)
                keys = [(row + 1, c) for c in range(col, col + count)]
                if style in struck_styles and (element.text or len(element)):
                    marks.struck.update(keys)
                text_formula = element.get(formula)
                if text_formula and "file:" in text_formula:
                    linked = _EXTERNAL.search(text_formula)
                    if linked:
                        book = posixpath.basename(unquote(linked.group(1)).replace("\\", "/")) or linked.group(1)
                        external.update((key, ("external", book)) for key in keys)
                for link in element.iter(link_tag):
                    target = link.get(href)
                    if target:
                        marks.links.update((key, target) for key in keys)
                        break
            col += count
            element.clear()
