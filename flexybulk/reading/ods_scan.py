"""The person's marks in an ODS sheet: hidden and filtered-out rows, struck-through cells, links,
and formulas that take their value from another file (issue #12); and error cells (pitfalls P9).

calamine reads an ODS workbook's values only, and gives an error cell (``#N/A``,
``#DIV/0!``, ``Err:502``) as an empty one. ``content.xml`` is searched for
the few attributes that carry these marks (``table:visibility``, a
line-through text style, ``xlink:href="mailto:``, ``'file:`` in a formula,
LibreOffice's ``calcext:value-type="error"``);
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
_CALCEXT = "urn:org:documentfoundation:names:experimental:calc:xmlns:calcext:1.0"
_MARKERS = (b'table:visibility="collapse"', b'table:visibility="filter"', b"text-line-through-style",
            b'xlink:href="mailto:', b"&apos;file:", b"'file:", b'value-type="error"')
_EXTERNAL = re.compile(r"'file:(?://)?([^']*)'#")
_MAX_REPEAT = 100_000  # longer runs are the empty tail LibreOffice writes to the sheet's end


def _q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}"


def _ods_marks(ctx: _Context, zf: zipfile.ZipFile | None) -> tuple[_Marks, dict[tuple[int, int], tuple[str, ...]]]:
    """``(marks, cell issues)`` of the chosen sheet, as :mod:`.columns` takes cell issues: (row, column)
    -> ``("error", "#N/A")`` for an error cell, ``("external", file name)`` for a formula reading another
    file (``("external", file name, "#REF!")`` when its value shows an error)."""
    marks = _Marks()
    external: dict[tuple[int, int], tuple[str, ...]] = {}
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
          external: dict[tuple[int, int], tuple[str, ...]]) -> None:
    """Parse the chosen table's rows and cells, counting repeats, and record their marks and cell issues.

    A row repeated (``number-rows-repeated``) repeats its cells' marks; an array formula's value
    from another file (``number-matrix-rows-spanned``) marks every cell of its range."""
    from defusedxml import ElementTree as ET

    table_tag, row_tag, col_tag = _q(_TABLE, "table"), _q(_TABLE, "table-row"), _q(_TABLE, "table-column")
    cell_tags = (_q(_TABLE, "table-cell"), _q(_TABLE, "covered-table-cell"))
    repeat_rows, repeat_cols = _q(_TABLE, "number-rows-repeated"), _q(_TABLE, "number-columns-repeated")
    visibility, style_name, formula = _q(_TABLE, "visibility"), _q(_TABLE, "style-name"), _q(_TABLE, "formula")
    default_style = _q(_TABLE, "default-cell-style-name")
    href, link_tag = _q(_XLINK, "href"), _q(_TEXT, "a")
    value_type = _q(_CALCEXT, "value-type")
    matrix_rows, matrix_cols = _q(_TABLE, "number-matrix-rows-spanned"), _q(_TABLE, "number-matrix-columns-spanned")
    inside = False
    row = col = 0
    rows_here = 1  # the current row element's repeat count
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
                rows_here = count if count <= _MAX_REPEAT else 1
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
                if count * rows_here > _MAX_REPEAT:  # an empty run to the sheet's end: nothing to mark
                    col += count
                    element.clear()
                    continue
                keys = [(r, c) for r in range(row + 1, row + rows_here + 1) for c in range(col, col + count)]
                if style in struck_styles and (element.text or len(element)):
                    marks.struck.update(keys)
                error = ("".join(element.itertext()).strip() or "#N/A") if element.get(value_type) == "error" else None
                text_formula = element.get(formula)
                linked = _EXTERNAL.search(text_formula) if text_formula and "file:" in text_formula else None
                if linked:
                    book = posixpath.basename(unquote(linked.group(1)).replace("\\", "/")) or linked.group(1)
                    # An array formula's other cells carry no formula of their own: mark its whole range.
                    span_rows = min(int(element.get(matrix_rows, "1")), _MAX_REPEAT)
                    span_cols = min(int(element.get(matrix_cols, "1")), _MAX_REPEAT // span_rows)
                    for r in range(row + 1, row + span_rows + 1):
                        for c in range(col, col + span_cols):
                            external[(r, c)] = ("external", book)
                    for key in keys:
                        external[key] = ("external", book, error) if error else ("external", book)
                elif error is not None:
                    for key in keys:
                        prior = external.get(key)  # a cell in the range of an array formula from another file
                        external[key] = ("external", prior[1], error) if prior else ("error", error)
                for link in element.iter(link_tag):
                    target = link.get(href)
                    if target:
                        marks.links.update((key, target) for key in keys)
                        break
            col += count
            element.clear()
