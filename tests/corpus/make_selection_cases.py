#!/usr/bin/python3
"""Regenerate the committed workbooks of issue #12 ("what the person meant"), written by LibreOffice.

    /usr/bin/python3 tests/corpus/make_selection_cases.py   # needs soffice and python3-uno (LibreOffice 7.x)

Not run by the tests: the files are committed. LibreOffice is driven through its
UNO API the way a coordinator works in Calc: an AutoFilter chosen from the
header's drop-down, a row hidden by hand, a row struck through, a mailto link
typed over with other text, an amount taken from another workbook. Each
sheet is saved as ODS, XLSX and XLS (``sel-*-libreoffice.{ods,xlsx,xls}``):

- ``sel-filtered``: 8 recipients; the AutoFilter (Data > AutoFilter) on ``Årgang``
  shows 2026 only, hiding rows 3, 5 and 6; then row 8 is hidden by hand.
- ``sel-struck``: 5 recipients; row 4 is struck through (the whole row).
- ``sel-mailto``: 3 recipients; E-mail of row 3 shows ``anna@example.com`` but
  links to ``mailto:anna.hansen@example.com``.
- ``sel-external``: 3 recipients; Beløb in E2 is ``='Budget 2026.xlsx'#$Ark1.B2``
  (an amount from another workbook, cached as 400).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import uno  # noqa: F401  (LibreOffice's Python bridge: python3-uno)
from com.sun.star.beans import PropertyValue

HERE = Path(__file__).resolve().parent
HEADER = ["Navn", "E-mail", "Gavekorttype", "Afdeling", "Beløb", "Antal", "Årgang"]
PEOPLE = [
    ["Ida Testesen", "ida@example.com", "Gavekort", "Webshop", 250, 1, "2026"],
    ["Bo Fiktiv", "bo@example.org", "Gavekort", "Webshop", 300, 1, "2025"],
    ["Åse Ørnebjerg", "aase@example.net", "Julegavekort", "Odense", 500, 2, "2026"],
    ["Lars Eksempel", "lars@example.com", "Gavekort", "Aarhus", 150, 1, "2025"],
    ["Julie Demo", "julie@example.com", "Firmagavekort", "Webshop", 750, 1, "2025"],
    ["Søren Prøvesen", "soeren@example.org", "Gavekort", "Aarhus", 200, 3, "2026"],
    ["Mette Skjult", "mette@example.com", "Gavekort", "København", 999, 1, "2026"],
    ["Niels Nielsen", "niels@example.com", "Oplevelsesgavekort", "København", 400, 1, "2026"],
]
FILTERS = {"ods": "calc8", "xlsx": "Calc MS Excel 2007 XML", "xls": "MS Excel 97"}


def prop(name: str, value) -> PropertyValue:
    p = PropertyValue()
    p.Name, p.Value = name, value
    return p


class Calc:
    """A headless LibreOffice with its own profile, reached over a local UNO socket."""

    def __init__(self, work: Path) -> None:
        self.work = work
        port = 2002 + os.getpid() % 1000
        env = {"HOME": str(work / "home"), "PATH": "/usr/bin:/bin:/usr/local/bin"}
        (work / "home").mkdir()
        self.proc = subprocess.Popen(
            ["soffice", f"-env:UserInstallation=file://{work}/profile", "--headless", "--invisible", "--norestore",
             f"--accept=socket,host=127.0.0.1,port={port};urp;"], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        local = uno.getComponentContext()
        resolver = local.ServiceManager.createInstanceWithContext("com.sun.star.bridge.UnoUrlResolver", local)
        for _ in range(120):
            try:
                ctx = resolver.resolve(f"uno:socket,host=127.0.0.1,port={port};urp;StarOffice.ComponentContext")
                break
            except Exception:
                time.sleep(0.5)
        else:
            raise RuntimeError("LibreOffice did not start")
        self.desktop = ctx.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", ctx)

    def new(self, rows: list[list], title: str = "Modtagere"):
        doc = self.desktop.loadComponentFromURL("private:factory/scalc", "_blank", 0, (prop("Hidden", True),))
        sheet = doc.Sheets.getByIndex(0)
        sheet.Name = title
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                cell = sheet.getCellByPosition(c, r)
                if isinstance(value, (int, float)):
                    cell.setValue(value)
                elif isinstance(value, str) and value.startswith("="):
                    cell.setFormula(value)
                else:
                    cell.setString(value)
        return doc, sheet

    def save(self, doc, stem: str, formats=("ods", "xlsx", "xls")) -> None:
        for ext in formats:
            doc.storeToURL(f"file://{HERE / f'{stem}-libreoffice.{ext}'}", (prop("FilterName", FILTERS[ext]),))
        doc.close(True)

    def close(self) -> None:
        try:
            self.desktop.terminate()
        except Exception:
            pass
        self.proc.wait(timeout=60)


def filtered(calc: Calc) -> None:
    doc, sheet = calc.new([HEADER] + PEOPLE)
    area = sheet.getCellRangeByName(f"A1:G{len(PEOPLE) + 1}")
    # Data > AutoFilter: the sheet's own unnamed database range, with drop-down buttons on the header.
    unnamed = doc.getPropertyValue("UnnamedDatabaseRanges")
    unnamed.setByTable(area.RangeAddress)
    db = unnamed.getByTable(0)
    db.AutoFilter = True
    descriptor = db.getFilterDescriptor()
    field = uno.createUnoStruct("com.sun.star.sheet.TableFilterField")
    field.Field = 6
    field.Operator = uno.Enum("com.sun.star.sheet.FilterOperator", "EQUAL")
    field.IsNumeric = False
    field.StringValue = "2026"
    descriptor.FilterFields = (field,)
    descriptor.ContainsHeader = True
    db.refresh()
    sheet.Rows.getByIndex(7).IsVisible = False  # then row 8 hidden by hand (Format > Rows > Hide)
    calc.save(doc, "sel-filtered")


def struck(calc: Calc) -> None:
    doc, sheet = calc.new([HEADER] + PEOPLE[:5])
    sheet.getCellRangeByName("A4:G4").CharStrikeout = 1  # FontStrikeout.SINGLE: Format > Text > Strikethrough
    calc.save(doc, "sel-struck")


def mailto(calc: Calc) -> None:
    rows = [HEADER] + [PEOPLE[0], ["Anna Hansen", "", "Gavekort", "Webshop", 250, 1, "2026"], PEOPLE[2]]
    doc, sheet = calc.new(rows)
    cell = sheet.getCellByPosition(1, 2)
    link = doc.createInstance("com.sun.star.text.TextField.URL")
    link.URL = "mailto:anna.hansen@example.com"
    link.Representation = "anna@example.com"
    cell.insertTextContent(cell.createTextCursor(), link, False)
    calc.save(doc, "sel-mailto")


def external(calc: Calc) -> None:
    budget_dir = calc.work / "Budget"
    budget_dir.mkdir()
    budget = budget_dir / "Budget 2026.xlsx"
    doc, sheet = calc.new([["Post", "Beløb"], ["Gavekort", 400]], title="Ark1")
    doc.storeToURL(f"file://{budget}", (prop("FilterName", FILTERS["xlsx"]),))
    doc.close(True)
    rows = [HEADER] + PEOPLE[:3]
    doc, sheet = calc.new(rows)
    sheet.getCellByPosition(4, 1).setFormula(f"='file://{budget}'#$Ark1.B2")
    doc.calculateAll()
    calc.save(doc, "sel-external")


def main() -> int:
    if not shutil.which("soffice"):
        print("soffice (LibreOffice) is not on PATH", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        calc = Calc(Path(tmp))
        try:
            filtered(calc)
            struck(calc)
            mailto(calc)
            external(calc)
        finally:
            calc.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
