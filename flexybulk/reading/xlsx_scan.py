"""What an XLSX sheet's values do not carry: formulas, error cells, hidden rows and columns,
number formats (pitfalls P5, P9, P10, P13).

calamine gives the cached values only. ``_XlsxParts`` streams the chosen
sheet's XML once with plain substring searches (about the cost of
decompressing it, and in a background thread while calamine parses) for
formula and error markers and hidden rows/columns, and parses the cell
elements one by one only when such a marker occurred or a numeric postal
code/phone may have lost its leading zeros to a ``0000`` format. Sizes are
bounded by the zip-bomb check in :mod:`flexybulk.reading.formats`.
"""

from __future__ import annotations

import html
import re
import threading
import zipfile
from typing import Any, Iterable

from flexybulk.errors import InputFileError

from .cells import zero_pad_width
from .context import _MIB, _Context, _column_index, _quote, column_letter
from .formats import _read_member


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
_EXTERNAL_REF = re.compile(r"\[(\d+)\]")  # [1]Ark1!B2: a reference into external workbook 1
_HYPERLINK_TARGET = re.compile(r'HYPERLINK\(\s*"((?:[^"]|"")*)"', re.IGNORECASE)
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
        self.after_data = b""  # the XML after </sheetData>: autoFilter, hyperlinks, tableParts (issue #12)
        self.external: dict[int, str] = {}  # external workbook number in formulas ([1]) -> file name; set before cells()
        self.formula_links: dict[tuple[int, int], str] = {}  # HYPERLINK("mailto:...", ...) targets, filled by cells()
        self._styles: Any = None
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
        after: list[bytes] | None = None
        for chunk in self._chunks():
            if marks is None:
                root = re.search(rb"<(\w+:)?worksheet\b", chunk)
                prefix = (root.group(1) or b"") if root else b""
                # Every formula sheet has a closing </f> (a shared formula's children
                # <f .../> always come with a master that has one), and error cells t="e".
                marks = (b"</" + prefix + b"f>", b't="e"')
                data_end = b"</" + prefix + b"sheetData>"
            if after is not None:
                after.append(chunk)
            elif data_end in chunk:
                after = [chunk[chunk.index(data_end):]]
            else:
                edge = tail[-32:] + chunk[:32]  # the closing tag split across two chunks
                if data_end in edge:
                    after = [edge[edge.index(data_end):] + chunk[32:]]
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
        self.after_data = b"".join(after or ())

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
                error = html.unescape(v.group(1).decode("utf-8", "replace")) \
                    if cell_type == b"e" and v is not None and v.group(1) else None
                f = _F_ELEMENT.search(body)
                if f is None:
                    if error is not None:
                        prior = issues.get(key)  # a cell of an array formula that reads another workbook
                        issues[key] = ("external", prior[1], error) if prior else ("error", error)
                    continue
                f_attrs = dict(_ATTR.findall(f.group(1)))
                formula = html.unescape((f.group(2) or b"").decode("utf-8", "replace"))
                ref_text = column_letter(col) + str(row_number)
                if f_attrs.get(b"t") == b"shared" and b"si" in f_attrs:
                    if formula:
                        shared[f_attrs[b"si"]] = (formula, ref_text)
                    elif f_attrs[b"si"] in shared:
                        formula = _translate_shared(*shared[f_attrs[b"si"]], ref_text)
                if self.external and "[" in formula:
                    linked = _EXTERNAL_REF.search(formula)
                    if linked and int(linked.group(1)) in self.external:
                        # Cached or not, the value is another workbook's (issue #12); an array
                        # formula's other cells (ref="F2:F9") hold only values: mark them too.
                        book = self.external[int(linked.group(1))]
                        if f_attrs.get(b"t") == b"array" and b"ref" in f_attrs:
                            for cell in _cells_of(f_attrs[b"ref"].decode("ascii", "replace")):
                                issues.setdefault(cell, ("external", book))
                        issues[key] = ("external", book, error) if error else ("external", book)
                        continue
                if error is not None:
                    issues[key] = ("error", error)
                    continue
                if "mailto:" in formula and "HYPERLINK" in formula.upper():
                    target = _HYPERLINK_TARGET.search(formula)
                    if target:
                        self.formula_links[key] = target.group(1).replace('""', '"')
                if not cached:
                    issues[key] = ("formula", "=" + formula if formula else "(a shared formula)")
            tail = buf[end:]
        return issues, styles

    def styles_root(self) -> Any:
        """``xl/styles.xml`` parsed (once), or ``None`` when it is missing or odd."""
        if self._styles is None:
            from defusedxml import ElementTree as ET

            try:
                self._styles = ET.fromstring(_read_member(self.zf, "xl/styles.xml", 16 * _MIB, _quote(self.ctx.path.name)))
            except InputFileError:
                raise
            except Exception:  # no or odd styles: nothing to pad or strike
                self._styles = False
        return self._styles or None

    def _formats(self) -> tuple[dict[str, str], list[str]]:
        """``(format id -> format code of the workbook's own formats, format id per cell style)``."""
        root = self.styles_root()
        codes: dict[str, str] = {}
        xf_formats: list[str] = []
        if root is None:
            return codes, xf_formats
        for element in root.iter():
            tag = element.tag.rsplit("}", 1)[-1]
            if tag == "numFmt":
                codes[element.get("numFmtId", "")] = element.get("formatCode", "")
            elif tag == "cellXfs":
                xf_formats = [xf.get("numFmtId", "0") for xf in element if xf.tag.rsplit("}", 1)[-1] == "xf"]
        return codes, xf_formats

    def zero_pad_styles(self) -> dict[int, str]:
        """Style index -> format code for the cell styles whose number format pads with zeros (``0000``)."""
        codes, xf_formats = self._formats()
        return {index: codes[fmt] for index, fmt in enumerate(xf_formats) if fmt in codes and zero_pad_width(codes[fmt])}

    def percent_styles(self) -> set[int]:
        """The cell style indexes whose number format shows a percentage (``0%``, ``0.00%``, ``#,##0.0%``)."""
        codes, xf_formats = self._formats()
        codes = {"9": "0%", "10": "0.00%", **codes}  # and Excel's built-in percent formats
        return {index for index, fmt in enumerate(xf_formats) if "%" in _QUOTED.sub("", codes.get(fmt, ""))}


_QUOTED = re.compile(r'"[^"]*"|\\.')  # a format code's literal text ("%" there is shown, not a percentage)


def _cells_of(ref: str, limit: int = 100_000) -> list[tuple[int, int]]:
    """(row, column) of the cells of a range ``"F2:G9"`` (1-based rows, 0-based columns); none
    when it is odd or larger than ``limit`` cells."""
    m = re.fullmatch(r"\$?([A-Z]+)\$?(\d+)(?::\$?([A-Z]+)\$?(\d+))?", ref)
    if not m:
        return []
    c0, r0 = _column_index(m.group(1)), int(m.group(2))
    c1, r1 = (_column_index(m.group(3)), int(m.group(4))) if m.group(3) else (c0, r0)
    if (r1 - r0 + 1) * (c1 - c0 + 1) > limit or r1 < r0 or c1 < c0:
        return []
    return [(r, c) for r in range(r0, r1 + 1) for c in range(c0, c1 + 1)]


def _translate_shared(formula: str, origin: str, target: str) -> str:
    """The formula of a shared-formula child cell, moved from the master cell (pitfalls P9)."""
    try:
        from openpyxl.formula.translate import Translator

        return Translator("=" + formula, origin=origin).translate_formula(target).lstrip("=")
    except Exception:
        return formula

