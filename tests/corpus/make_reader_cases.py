#!/usr/bin/python3
"""Regenerate the committed workbooks of the reader's error-cell and external-link cases, written by LibreOffice.

    /usr/bin/python3 tests/corpus/make_reader_cases.py   # needs soffice and python3-uno (LibreOffice 7.x)

Not run by the tests: the files are committed. LibreOffice is driven through its
UNO API (see ``make_selection_cases.py``) as a coordinator types formulas in Calc;
each sheet is saved as ODS, XLSX and XLS (the error cells also as CSV):

- ``err-cells-libreoffice.*``: 5 recipients; Beløb of row 2 is ``=1/0`` (#DIV/0!),
  Antal of row 3 ``=NA()`` (#N/A), Telefon of row 4 ``=NA()`` (an optional field);
  rows 5 and 6 are whole.
- ``ext-more-libreoffice.*``: 4 recipients; Beløb of rows 2-3 is one array formula
  (Ctrl+Shift+Enter) over ``Budget 2026.xlsx``, cached as 400 and 500 (in XLS each
  cell holds only a pointer to the ARRAY record); Beløb of row 4 reads
  ``Budget 2025.xlsx``, which was moved away before the save, so its cached value is
  ``#REF!`` (in XLS its SUPBOOK lists no sheets); row 5 is whole.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from make_selection_cases import FILTERS, HERE, Calc, prop

HEADER = ["Navn", "E-mail", "Telefon", "Gavekorttype", "Afdeling", "Beløb", "Antal"]


def error_cells(calc: Calc) -> None:
    rows = [HEADER,
            ["Ida Testesen", "ida@example.com", "12345678", "Gavekort", "Webshop", "=1/0", 1],
            ["Bo Fiktiv", "bo@example.org", "", "Gavekort", "Webshop", 300, "=NA()"],
            ["Åse Ørnebjerg", "aase@example.net", "=NA()", "Julegavekort", "Odense", 500, 2],
            ["Lars Eksempel", "lars@example.com", "", "Gavekort", "Aarhus", 150, 1],
            ["Julie Demo", "julie@example.com", "87654321", "Firmagavekort", "Webshop", 750, 1]]
    doc, sheet = calc.new(rows)
    doc.calculateAll()
    # File > Save As > Text CSV: ';' separated, '"' quotes, UTF-8 (76), as a Danish Calc offers it.
    doc.storeToURL(f"file://{HERE / 'err-cells-libreoffice.csv'}",
                   (prop("FilterName", "Text - txt - csv (StarCalc)"), prop("FilterOptions", "59,34,76,1")))
    calc.save(doc, "err-cells")


def external_more(calc: Calc) -> None:
    budget_dir = calc.work / "Budget"
    budget_dir.mkdir()
    budget, moved = budget_dir / "Budget 2026.xlsx", budget_dir / "Budget 2025.xlsx"
    for path in (budget, moved):
        doc, sheet = calc.new([["Post", "Beløb"], ["Gavekort", 400], ["Julegave", 500]], title="Ark1")
        doc.storeToURL(f"file://{path}", (prop("FilterName", FILTERS["xlsx"]),))
        doc.close(True)
    rows = [HEADER,
            ["Ida Testesen", "ida@example.com", "", "Gavekort", "Webshop", 0, 1],
            ["Bo Fiktiv", "bo@example.org", "", "Gavekort", "Webshop", 0, 1],
            ["Åse Ørnebjerg", "aase@example.net", "", "Julegavekort", "Odense", 0, 2],
            ["Lars Eksempel", "lars@example.com", "", "Gavekort", "Aarhus", 150, 1]]
    moved.unlink()  # the person's link still points at it
    doc, sheet = calc.new(rows)
    sheet.getCellRangeByName("F2:F3").setArrayFormula(f"='file://{budget}'#$Ark1.B2:B3")
    sheet.getCellByPosition(5, 3).setFormula(f"='file://{moved}'#$Ark1.B2")
    doc.calculateAll()
    calc.save(doc, "ext-more")


def main() -> int:
    if not shutil.which("soffice"):
        print("soffice (LibreOffice) is not on PATH", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        calc = Calc(Path(tmp))
        try:
            error_cells(calc)
            external_more(calc)
        finally:
            calc.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
