"""Hostile and broken inputs: each ends with a clear message, exit 1 or 2, no traceback, nothing issued.

Issue #6. Every case builds its file in ``tmp_path`` and runs ``flexybulk issue FILE --yes`` against
the sandbox; the sandbox must then have received no PUT or POST at all.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import Callable

import openpyxl
import pytest

from clirun import flexybulk
from conftest import REPO

GOOD_HEADER = "Navn;E-mail;Gavekorttype;Beløb;Antal;Afdeling"
GOOD_ROW = "Test Person;test@example.com;Gavekort;250;1;Webshop"


def _file(tmp: Path, name: str, content: str | bytes) -> Path:
    """``tmp/name`` holding ``content`` (text as UTF-8)."""
    p = tmp / name
    if isinstance(content, str):
        p.write_text(content, encoding="utf-8")
    else:
        p.write_bytes(content)
    return p


def _xlsx(rows: list[list], *, title: str = "Ark1") -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = title
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


GOOD_XLSX_ROWS = [["Navn", "E-mail", "Gavekorttype", "Beløb", "Antal", "Afdeling"],
                  ["Test Person", "test@example.com", "Gavekort", 250, 1, "Webshop"]]


def _rezip(data: bytes, *, add: dict[str, bytes] | None = None, replace: dict[str, bytes] | None = None,
           content_types: Callable[[bytes], bytes] | None = None) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info.filename)
            if replace and info.filename in replace:
                body = replace[info.filename]
            if content_types and info.filename == "[Content_Types].xml":
                body = content_types(body)
            dst.writestr(info.filename, body)
        for name, body in (add or {}).items():
            dst.writestr(name, body)
    return out.getvalue()


def zip_bomb(tmp: Path) -> Path:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>")
        with z.open("xl/worksheets/sheet1.xml", "w") as member:
            chunk = b"\0" * (1 << 20)
            for _ in range(300):  # 300 MB of zeros, about 300 KB packed
                member.write(chunk)
    return _file(tmp, "bombe.xlsx", out.getvalue())


def encrypted(tmp: Path) -> Path:
    # An OLE2 compound file whose directory names an EncryptedPackage: what Excel writes for a password.
    body = bytes.fromhex("D0CF11E0A1B11AE1") + b"\0" * 504 + "EncryptedPackage".encode("utf-16-le") + b"\0" * 2048
    return _file(tmp, "kodeord.xlsx", body)


def macro(tmp: Path) -> Path:
    data = _rezip(_xlsx(GOOD_XLSX_ROWS), add={"xl/vbaProject.bin": b"\xd0\xcf\x11\xe0 not really vba"},
                  content_types=lambda b: b.replace(b"spreadsheetml.sheet.main+xml", b"sheet.macroEnabled.main+xml"))
    return _file(tmp, "makro.xlsm", data)


def macro_renamed(tmp: Path) -> Path:
    p = macro(tmp)
    return p.rename(tmp / "makro-omdoebt.xlsx")


def junk_xlsx(tmp: Path) -> Path:
    return _file(tmp, "skrald.xlsx", os.urandom(4096))


def junk_csv(tmp: Path) -> Path:
    return _file(tmp, "skrald.csv", bytes(range(256)) * 8)


def png_as_xlsx(tmp: Path) -> Path:
    return _file(tmp, "billede.xlsx", b"\x89PNG\r\n\x1a\n" + b"\0\0\0\rIHDR" + os.urandom(200))


def empty_file(tmp: Path) -> Path:
    return _file(tmp, "tom.csv", b"")


def truncated_xlsx(tmp: Path) -> Path:
    return _file(tmp, "afbrudt.xlsx", _xlsx(GOOD_XLSX_ROWS)[:300])


def html_as_xls(tmp: Path) -> Path:
    return _file(tmp, "eksport.xls", "<html><body><table><tr><td>Navn</td><td>E-mail</td></tr></table></body></html>")


def xml2003_as_xls(tmp: Path) -> Path:
    return _file(tmp, "gammel.xls", '<?xml version="1.0"?>\n<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet"></Workbook>')


def nul_in_csv(tmp: Path) -> Path:
    return _file(tmp, "nul.csv", f"{GOOD_HEADER}\n{GOOD_ROW}\nAnden\0Person;a@example.com;Gavekort;250;1;Webshop\n".encode())


def undecodable_csv(tmp: Path) -> Path:
    # 0x81 and 0x8D are neither UTF-8 nor Windows-1252.
    return _file(tmp, "tegn.csv", f"{GOOD_HEADER}\n".encode() + b"S\x81ren;s@example.com;Gavekort;250;1;Webshop\x8d\n")


def broken_quotes(tmp: Path) -> Path:
    return _file(tmp, "citat.csv", f'{GOOD_HEADER}\n"Test Person;test@example.com;Gavekort;250;1;Webshop\nAnden;a@example.com;Gavekort;250;1;Webshop\n')


def huge_field(tmp: Path) -> Path:
    return _file(tmp, "kaempe-felt.csv", f'{GOOD_HEADER}\n"{"x" * 300_000}";t@example.com;Gavekort;250;1;Webshop\n')


def formula_without_value(tmp: Path) -> Path:
    rows = [GOOD_XLSX_ROWS[0] + ["Total"], GOOD_XLSX_ROWS[1] + ["=D2*E2"]]
    return _file(tmp, "formel.xlsx", _xlsx(rows))


def formula_amount(tmp: Path) -> Path:
    rows = [GOOD_XLSX_ROWS[0], ["Test Person", "test@example.com", "Gavekort", "=100*2", 1, "Webshop"]]
    return _file(tmp, "formel-beloeb.xlsx", _xlsx(rows))


def control_characters(tmp: Path) -> Path:
    return _file(tmp, "kontrol.csv", f"{GOOD_HEADER}\n\x01\x02\x07;te\x08st@example.com;Gavekort;250;1;Webshop\n")


def long_name(tmp: Path) -> Path:
    return _file(tmp, "langt-navn.csv", f"{GOOD_HEADER}\n{'Ø' * 10_000};t@example.com;Gavekort;250;1;Webshop\n{GOOD_ROW}\n")


def header_only(tmp: Path) -> Path:
    return _file(tmp, "kun-overskrift.csv", GOOD_HEADER + "\n")


def no_header(tmp: Path) -> Path:
    return _file(tmp, "ingen-overskrift.csv", "a;b;c\n1;2;3\n4;5;6\n")


def duplicate_columns(tmp: Path) -> Path:
    return _file(tmp, "to-email.csv", "Navn;E-mail;Email;Gavekorttype;Beløb;Afdeling\nA;a@example.com;b@example.com;Gavekort;250;Webshop\n")


def data_without_header(tmp: Path) -> Path:
    return _file(tmp, "uden-overskrift.csv", f"{GOOD_HEADER};\n{GOOD_ROW};hemmelig note\n")


def only_hidden_sheet(tmp: Path) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Forside"
    ws.append(["Velkommen"])
    hidden = wb.create_sheet("Modtagere")
    for r in GOOD_XLSX_ROWS:
        hidden.append(r)
    hidden.sheet_state = "hidden"
    p = tmp / "skjult.xlsx"
    wb.save(p)
    return p


def two_candidate_sheets(tmp: Path) -> Path:
    wb = openpyxl.Workbook()
    for i, name in enumerate(("Modtagere", "Ark2")):
        ws = wb.active if i == 0 else wb.create_sheet(name)
        ws.title = name
        for r in GOOD_XLSX_ROWS:
            ws.append(r)
    p = tmp / "to-ark.xlsx"
    wb.save(p)
    return p


def ambiguous_amount(tmp: Path) -> Path:
    return _file(tmp, "tvetydig.csv", "Navn;E-mail;Gavekorttype;Beløb;Afdeling\nA;a@example.com;Gavekort;1.000;Webshop\n")


def scientific_phone(tmp: Path) -> Path:
    return _file(tmp, "telefon.csv", "Navn;E-mail;Gavekorttype;Beløb;Afdeling;Telefon\nA;a@example.com;Gavekort;250;Webshop;4,51235E+09\n")


def entity_expansion(tmp: Path) -> Path:
    laughs = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
              b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
              b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" uniqueCount="1"><si><t>&lol3;</t></si></sst>')
    base = _xlsx(GOOD_XLSX_ROWS)
    names = zipfile.ZipFile(io.BytesIO(base)).namelist()
    target = "xl/sharedStrings.xml" if "xl/sharedStrings.xml" in names else "xl/worksheets/sheet1.xml"
    return _file(tmp, "entiteter.xlsx", _rezip(base, replace={target: laughs}))


def ods_with_macro(tmp: Path) -> Path:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        z.writestr("content.xml", "<office:document-content/>")
        z.writestr("Basic/Standard/Module1.xml", "<script:module/>")
        z.writestr("META-INF/manifest.xml", "<manifest/>")
    return _file(tmp, "makro.ods", out.getvalue())


def too_big(tmp: Path) -> Path:
    p = tmp / "stor.csv"
    p.write_text(GOOD_HEADER + "\n" + (GOOD_ROW + "\n") * 40_000, encoding="utf-8")  # ~2 MB
    return p


def too_many_rows(tmp: Path) -> Path:
    return _file(tmp, "mange.csv", GOOD_HEADER + "\n" + "\n".join(f"P{i};p{i}@example.com;Gavekort;250;1;Webshop" for i in range(25)) + "\n")


def directory(tmp: Path) -> Path:
    d = tmp / "mappe.xlsx"
    d.mkdir()
    return d


def missing(tmp: Path) -> Path:
    return tmp / "findes-ikke.xlsx"


# (builder, extra args, words the message must contain)
CASES: dict[str, tuple[Callable[[Path], Path], list[str], list[str]]] = {
    "zip bomb": (zip_bomb, [], []),
    "password-protected workbook": (encrypted, [], ["password"]),
    "macro-enabled workbook": (macro, [], ["macro"]),
    "macro workbook renamed .xlsx": (macro_renamed, [], ["macro"]),
    "random bytes named .xlsx": (junk_xlsx, [], []),
    "binary junk named .csv": (junk_csv, [], []),
    "PNG named .xlsx": (png_as_xlsx, [], []),
    "empty file": (empty_file, [], []),
    "truncated workbook": (truncated_xlsx, [], []),
    "HTML saved as .xls": (html_as_xls, [], ["HTML"]),
    "XML 2003 saved as .xls": (xml2003_as_xls, [], []),
    "NUL byte in a CSV": (nul_in_csv, [], ["line 3"]),
    "undecodable bytes": (undecodable_csv, [], []),
    "unterminated quote": (broken_quotes, [], ["line"]),
    "300 KB field": (huge_field, [], []),
    "formula without value": (formula_without_value, [], ["=D2*E2"]),
    "formula amount without value": (formula_amount, [], ["=100*2"]),
    "control characters only": (control_characters, [], ["row 2", "name is missing"]),
    "10,000-character name": (long_name, [], ["row 2", "10,000 characters"]),
    "no recognisable header": (no_header, [], []),
    "two email columns": (duplicate_columns, [], ["E-mail", "Email"]),
    "data without a header": (data_without_header, [], ["no header"]),
    "only a hidden sheet has recipients": (only_hidden_sheet, [], []),
    "two candidate sheets": (two_candidate_sheets, [], ["Modtagere", "Ark2"]),
    "unknown --sheet": (two_candidate_sheets, ["--sheet", "Ark9"], ["Ark9"]),
    "ambiguous amount": (ambiguous_amount, [], ["1.000"]),
    "phone shortened by Excel": (scientific_phone, [], ["Text"]),
    "XML entity expansion": (entity_expansion, [], []),
    "ODS with macros": (ods_with_macro, [], ["macro"]),
    "file over --max-file-size": (too_big, ["--max-file-size", "1"], ["MB"]),
    "rows over --max-rows": (too_many_rows, ["--max-rows", "10"], ["25", "10"]),
    "a directory": (directory, [], []),
    "a missing file": (missing, [], []),
    "unknown --column field": (lambda t: REPO / "samples" / "kampagne.xlsx", ["--column", "beløbet=Beløb"], ["--column", "unknown field"]),
    "header without rows": (header_only, [], ["no recipients below the header on row 1"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_input_is_refused_clearly_and_nothing_is_issued(case, tmp_path, sandbox_env):
    build, extra, words = CASES[case]
    path = build(tmp_path)
    run = flexybulk("issue", path, "--yes", *extra)
    assert run.code in (1, 2), f"{case}: exit {run.code}\n{run.output}"
    assert "Traceback" not in run.output
    assert "unexpected" not in run.output.lower(), run.output
    if not any(w.startswith("--") for w in words):  # an option's error names the option instead
        assert path.name in run.output, f"{case}: the message does not name the file\n{run.output}"
    for word in words:
        assert word in run.output, f"{case}: {word!r} missing from\n{run.output}"
    assert not [r for r in sandbox_env.state.requests if r[0] != "GET"], "something was sent"
    assert sandbox_env.state.counts()["customers"] == 0


def test_there_are_at_least_thirty_cases():
    assert len(CASES) >= 30
