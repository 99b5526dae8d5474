#!/usr/bin/env python
"""Regenerate the committed binary corpus files that only a real program can write.

    python tests/corpus/make_binary_cases.py        # needs soffice (LibreOffice 7.x) on PATH

Not run by the tests: the files it writes are committed, so CI needs neither
LibreOffice nor any encryption tool. Every other corpus input is either a
committed text file or built at test time from its ``.expected.json`` spec.

Written here:

- ``p20-kampagne-libreoffice.{ods,xls}`` and ``p20-kampagne-libreoffice-resaved.xlsx``:
  ``shared/inputs/kampagne-libreoffice.xlsx`` converted by LibreOffice
  (xlsx -> ods, xlsx -> xls, ods -> xlsx): pitfalls P20, one file per engine path.
- ``p13-hidden-first-sheet-libreoffice.{ods,xls}``: a workbook whose first sheet
  is hidden, converted by LibreOffice (pitfalls P13 in the other formats).
- ``p05-postnr-0000-libreoffice.xls``: postal code 800 with number format ``0000``
  saved by LibreOffice as XLS (pitfalls P5 through xlrd's formats).
- ``hostile-password-libreoffice.xls``: the kampagne sheet saved by LibreOffice
  with a password (BIFF8 FILEPASS encryption; issue #6).
- ``hostile-password.xlsx``: LibreOffice's XLSX encrypted with
  ``msoffcrypto-tool -e`` (ECMA-376 agile encryption, the OLE2 container with
  ``EncryptedPackage`` that Excel writes); skipped when the tool is missing.
  LibreOffice 7.4 would not write an encrypted XLSX from the command line.
"""

from __future__ import annotations

import html
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import openpyxl

HERE = Path(__file__).resolve().parent
KAMPAGNE = HERE.parents[2] / "shared" / "inputs" / "kampagne-libreoffice.xlsx"

# A LibreOffice profile that saves no thumbnails (keeps .ods files small) and
# holds one Basic macro to save with a password.
NO_THUMBNAIL = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Common/Save/Document"><prop oor:name="GenerateThumbnail" oor:op="fuse">
<value>false</value></prop></item>
</oor:items>
"""
PASSWORD_MACRO = """Sub SaveWithPassword(sSrc As String, sDst As String, sFilter As String)
  Dim args(0) As New com.sun.star.beans.PropertyValue
  args(0).Name = "Hidden"
  args(0).Value = True
  oDoc = StarDesktop.loadComponentFromURL(sSrc, "_blank", 0, args())
  Dim sargs(1) As New com.sun.star.beans.PropertyValue
  sargs(0).Name = "FilterName"
  sargs(0).Value = sFilter
  sargs(1).Name = "Password"
  sargs(1).Value = "hemmelig"
  oDoc.storeToURL(sDst, sargs())
  oDoc.close(True)
End Sub
"""


class Office:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.profile = work / "profile"
        self.env = {"HOME": str(work / "home"), "PATH": "/usr/bin:/bin:/usr/local/bin"}
        (work / "home").mkdir()
        self._run(["--terminate_after_init"])
        (self.profile / "user" / "registrymodifications.xcu").write_text(NO_THUMBNAIL, encoding="utf-8")

    def _install_macro(self) -> None:
        # Written just before use: the first real start of LibreOffice rewrites the profile's Basic library.
        module = self.profile / "user" / "basic" / "Standard" / "Module1.xba"
        module.write_text(
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<!DOCTYPE script:module PUBLIC "-//OpenOffice.org//DTD OfficeDocument 1.0//EN" "module.dtd">\n'
            '<script:module xmlns:script="http://openoffice.org/2000/script" script:name="Module1" '
            'script:language="StarBasic">' + html.escape(PASSWORD_MACRO) + "</script:module>\n",
            encoding="utf-8",
        )

    def _run(self, args: list[str]) -> None:
        subprocess.run(["soffice", f"-env:UserInstallation=file://{self.profile}", "--headless", *args],
                       env=self.env, check=True, timeout=180, capture_output=True)

    def convert(self, src: Path, ext: str, dst: Path) -> None:
        out = self.work / "out"
        out.mkdir(exist_ok=True)
        self._run(["--convert-to", ext, "--outdir", str(out), str(src)])
        shutil.move(str(out / (src.stem + "." + ext)), dst)

    def save_with_password(self, src: Path, dst: Path, filter_name: str) -> None:
        self._install_macro()
        self._run([f'macro:///Standard.Module1.SaveWithPassword("file://{src}","file://{dst}","{filter_name}")'])


def hidden_first_sheet(path: Path) -> Path:
    wb = openpyxl.Workbook()
    lookup = wb.active
    lookup.title = "Opslag"
    lookup.append(["Kode", "Tekst"])
    lookup.append(["GK", "Gavekort"])
    lookup.sheet_state = "hidden"
    ws = wb.create_sheet("Modtagere")
    ws.append(["Navn", "E-mail"])
    ws.append(["Test Person", "test@example.com"])
    wb.active = 1
    wb.save(path)
    return path


def postnr_0000(path: Path) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Modtagere"
    ws.append(["Navn", "E-mail", "Postnr", "By"])
    ws.append(["Test Person", "test@example.com", 800, "København C"])
    ws.append(["Anden Person", "anden@example.com", 2100, "København Ø"])
    ws.append(["Tredje Person", "tredje@example.com", 900, "København C"])
    ws["C2"].number_format = "0000"
    wb.save(path)
    return path


def main() -> int:
    if not shutil.which("soffice"):
        print("soffice (LibreOffice) is not on PATH", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        office = Office(work)
        src = work / "kampagne.xlsx"
        shutil.copy(KAMPAGNE, src)
        office.convert(src, "ods", HERE / "p20-kampagne-libreoffice.ods")
        office.convert(src, "xls", HERE / "p20-kampagne-libreoffice.xls")
        shutil.copy(HERE / "p20-kampagne-libreoffice.ods", work / "kampagne-resaved.ods")
        office.convert(work / "kampagne-resaved.ods", "xlsx", HERE / "p20-kampagne-libreoffice-resaved.xlsx")

        hidden = hidden_first_sheet(work / "hidden.xlsx")
        office.convert(hidden, "ods", HERE / "p13-hidden-first-sheet-libreoffice.ods")
        office.convert(hidden, "xls", HERE / "p13-hidden-first-sheet-libreoffice.xls")
        office.convert(postnr_0000(work / "postnr.xlsx"), "xls", HERE / "p05-postnr-0000-libreoffice.xls")

        office.save_with_password(src, HERE / "hostile-password-libreoffice.xls", "MS Excel 97")
        tool = shutil.which("msoffcrypto-tool")
        if tool:
            plain = work / "plain.xlsx"
            shutil.copy(HERE / "p20-kampagne-libreoffice-resaved.xlsx", plain)
            subprocess.run([tool, "-e", "-p", "hemmelig", str(plain), str(HERE / "hostile-password.xlsx")], check=True)
        else:
            print("msoffcrypto-tool not found: hostile-password.xlsx left as it is", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
