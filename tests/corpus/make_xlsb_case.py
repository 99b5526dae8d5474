#!/usr/bin/env python
"""Write the committed XLSB test workbook ``xlsb-modtagere.xlsb`` (issue #12).

    python tests/corpus/make_xlsb_case.py

No program on this machine saves XLSB (LibreOffice opens it but cannot write
it), so this script writes the binary records itself, after Microsoft's
[MS-XLSB] specification, as Excel lays them out: ``workbook.bin`` with one
sheet, ``styles.bin`` with a plain and a struck-through font, shared strings
in ``sharedStrings.bin``, and ``sheet1.bin`` with row headers and cells. Row 4
is hidden (``fDyZero``) and row 5 struck through (its cells use the struck
font), so that the reader's marks are tested on XLSB too. Not run by the tests.

Checked against a reader that is not ours: LibreOffice 7.4 opens the file
(``soffice --headless --convert-to ods xlsb-modtagere.xlsb``) with the same
values, row 4 hidden and row 5 struck through.
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROWS = [
    ["Navn", "E-mail", "Gavekorttype", "Afdeling", "Beløb", "Antal"],
    ["Ida Testesen", "ida@example.com", "Gavekort", "Webshop", 250, 1],
    ["Bo Fiktiv", "bo@example.org", "Gavekort", "Webshop", 300.5, 1],
    ["Mette Skjult", "mette@example.com", "Gavekort", "København", 999, 1],  # row 4: hidden
    ["Lars Aflyst", "lars@example.com", "Gavekort", "Aarhus", 150, 1],  # row 5: struck through
    ["Åse Ørnebjerg", "aase@example.net", "Julegavekort", "Odense", 500, 2],
]
HIDDEN_ROWS = {4}
STRUCK_ROWS = {5}


def varint(n: int, limit: int) -> bytes:
    out = bytearray()
    for _ in range(limit):
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            break
    return bytes(out)


def record(rtype: int, body: bytes = b"") -> bytes:
    return varint(rtype, 2) + varint(len(body), 4) + body


def wide(text: str) -> bytes:  # XLWideString
    return struct.pack("<I", len(text)) + text.encode("utf-16-le")


def workbook() -> bytes:
    sheet = struct.pack("<II", 0, 1) + wide("rId1") + wide("Modtagere")  # hsState visible, iTabID 1
    return (record(0x83) + record(0x8F) + record(0x9C, sheet) + record(0x90) + record(0x84))


def font(struck: bool) -> bytes:
    """BrtFont: dyHeight, grbit (0x0008 fStrikeout), bls, sss, uls, bFamily, bCharSet, unused,
    brtColor (8 bytes, automatic), bFontScheme, name."""
    body = struct.pack("<HHHHBBBB", 220, 0x0008 if struck else 0, 400, 0, 0, 2, 0, 0)
    body += bytes([0x01, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF]) + bytes([0x02])
    return record(0x2B, body + wide("Calibri"))


def xf(font_index: int, parent: int = 0) -> bytes:
    """BrtXF: ixfeParent (0xFFFF for a cell style XF), iFmt, iFont, iFill, ixBorder, trot, indent,
    flags, xfGrbitAtr, unused."""
    return record(0x2F, struct.pack("<HHHHHBBHBB", parent, 0, font_index, 0, 0, 0, 0, 0, 0, 0))


def styles() -> bytes:
    out = record(0x116)  # BrtBeginStyleSheet
    out += record(0x263, struct.pack("<I", 2)) + font(False) + font(True) + record(0x264)  # fonts
    out += record(0x272, struct.pack("<I", 1)) + xf(0, 0xFFFF) + record(0x273)  # cell style xfs
    out += record(0x269, struct.pack("<I", 2)) + xf(0) + xf(1) + record(0x26A)  # cell xfs: 0 plain, 1 struck
    out += record(0x117)  # BrtEndStyleSheet
    return out


def strings() -> tuple[bytes, dict[str, int]]:
    index: dict[str, int] = {}
    for row in ROWS:
        for v in row:
            if isinstance(v, str):
                index.setdefault(v, len(index))
    total = sum(isinstance(v, str) for row in ROWS for v in row)
    body = record(0x9F, struct.pack("<II", total, len(index)))
    for text in index:
        body += record(0x13, b"\x00" + wide(text))  # BrtSSTItem: RichStr without formatting
    return body + record(0xA0), index


def sheet(index: dict[str, int]) -> bytes:
    out = record(0x81)  # BrtBeginSheet
    out += record(0x94, struct.pack("<IIII", 0, len(ROWS) - 1, 0, len(ROWS[0]) - 1))  # BrtWsDim
    out += record(0x91)  # BrtBeginSheetData
    for r, row in enumerate(ROWS):
        number = r + 1
        flags = 0x10 if number in HIDDEN_ROWS else 0  # fDyZero in the second flag byte
        out += record(0x00, struct.pack("<IIHBBBI", r, 0, 300, 0, flags, 0, 1) + struct.pack("<II", 0, len(row) - 1))
        style = 1 if number in STRUCK_ROWS else 0
        for c, v in enumerate(row):
            cell = struct.pack("<I", c) + style.to_bytes(3, "little") + b"\x00"
            if isinstance(v, str):
                out += record(0x07, cell + struct.pack("<I", index[v]))  # BrtCellIsst
            else:
                out += record(0x05, cell + struct.pack("<d", float(v)))  # BrtCellReal
    out += record(0x92) + record(0x82)  # BrtEndSheetData, BrtEndSheet
    return out


CONTENT_TYPES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="bin" ContentType="application/vnd.ms-excel.sheet.binary.macroEnabled.main"/><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/worksheets/sheet1.bin" ContentType="application/vnd.ms-excel.worksheet"/><Override PartName="/xl/styles.bin" ContentType="application/vnd.ms-excel.styles"/><Override PartName="/xl/sharedStrings.bin" ContentType="application/vnd.ms-excel.sharedStrings"/></Types>"""
RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.bin"/></Relationships>"""
WORKBOOK_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.bin"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.bin"/><Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.bin"/></Relationships>"""


def main() -> None:
    shared, index = strings()
    with zipfile.ZipFile(HERE / "xlsb-modtagere.xlsb", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", CONTENT_TYPES)
        z.writestr("_rels/.rels", RELS)
        z.writestr("xl/_rels/workbook.bin.rels", WORKBOOK_RELS)
        z.writestr("xl/workbook.bin", workbook())
        z.writestr("xl/styles.bin", styles())
        z.writestr("xl/sharedStrings.bin", shared)
        z.writestr("xl/worksheets/sheet1.bin", sheet(index))


if __name__ == "__main__":
    main()
