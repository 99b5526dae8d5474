"""The reader (flexybulk.reading): API shapes, row numbers, options, engines and speed.

The real-world cases, one per pitfall, are in tests/corpus (test_corpus.py);
these tests pin the behaviour around them: exact values and exact messages.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
import sys
import zipfile
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

import flexybulk.reading.engines as engines_module
import flexybulk.reading.xlsx_scan as xlsx_scan_module
from flexybulk.errors import ConfigError, InputFileError
from flexybulk.model import Field, Sheet
from flexybulk.reading import HEADER_SYNONYMS, RESULT_COLUMNS, ReadOptions, column_letter, read_sheet

REPO = Path(__file__).resolve().parents[1]
SHARED_INPUTS = Path(__file__).resolve().parents[2] / "shared" / "inputs"
CORPUS = Path(__file__).resolve().parent / "corpus"


def shared(name: str) -> Path:
    path = SHARED_INPUTS / name
    if not path.exists():
        pytest.skip(f"{path} is missing: CI keeps ../shared beside the clone; nothing to read here")
    return path


def totals(sheet: Sheet) -> tuple[int, int, Decimal]:
    """(rows, certificates, total money) exactly as the issue counts them."""
    certificates = sum(r.fields["quantity"] for r in sheet.rows)
    money = sum((r.fields["amount"] * r.fields["quantity"] for r in sheet.rows), Decimal(0))
    return len(sheet.rows), certificates, money


def write_xlsx(path: Path, rows: list[list], *, title: str = "Ark1", **cells_fmt: str) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = title
    for row in rows:
        ws.append(row)
    for ref, fmt in cells_fmt.items():
        ws[ref].number_format = fmt
    wb.save(path)
    return path


def write_csv(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


# --- the two real files (shared/inputs) ------------------------------------------------------


def test_kampagne_libreoffice_xlsx_reads_25_rows_54_certificates_31500_dkk():
    sheet = read_sheet(shared("kampagne-libreoffice.xlsx"))
    assert totals(sheet) == (25, 54, Decimal("31500.00"))
    assert (sheet.format, sheet.sheet_name, sheet.header_row) == ("xlsx", "kampagne", 1)
    assert sheet.column_map == {
        "name": "Navn", "email": "E-mail", "phone": "Telefon", "address": "Adresse", "postal_code": "Postnr",
        "city": "By", "type": "Gavekorttype", "department": "Afdeling", "amount": "Beløb", "quantity": "Antal",
    }
    first = sheet.rows[0]
    assert first.number == 2
    assert first.fields["phone"] == "+4594700087"  # stored as a number by LibreOffice
    assert first.fields["postal_code"] == "8000"  # never "8000.0"
    assert first.original["Telefon"] == 94700087 and type(first.original["Telefon"]) is int
    assert [r.number for r in sheet.rows] == list(range(2, 27))
    assert not any(r.problems for r in sheet.rows)
    assert sheet.sha256 == hashlib.sha256(shared("kampagne-libreoffice.xlsx").read_bytes()).hexdigest()


def test_firmagaver_da_csv_reads_8_rows_34_certificates_67249_40_dkk():
    sheet = read_sheet(shared("firmagaver-da.csv"))
    assert totals(sheet) == (8, 34, Decimal("67249.40"))
    assert (sheet.format, sheet.sheet_name, sheet.csv_delimiter) == ("csv", None, ";")
    assert sheet.notes == ["Read as Windows-1252 (the file is not UTF-8)"]
    assert sheet.rows[0].fields["amount"] == Decimal("499.95")
    assert str(sheet.rows[3].fields["amount"]) == "1250.5"
    assert sheet.rows[0].fields["name"] == "Jørgen Fiktivsen"
    assert sheet.rows[0].original["Beløb"] == "499,95"  # text as read
    assert {r.fields["country"] for r in sheet.rows} == {"DK"}


# --- shapes --------------------------------------------------------------------------------


def test_read_options_defaults():
    opts = ReadOptions()
    assert (opts.sheet, dict(opts.columns)) == (None, {})
    assert (opts.max_file_size, opts.max_rows) == (50 * 1024 * 1024, 100_000)


def test_every_field_has_synonyms_and_result_columns_are_never_mapped(tmp_path):
    assert set(HEADER_SYNONYMS) == set(Field)
    headers = ["Navn", "E-mail", *RESULT_COLUMNS]
    path = write_csv(tmp_path / "resultat.csv", ";".join(headers) + "\nA;a@example.com;FAILED;boom;;;;;;;2;\n")
    sheet = read_sheet(path)
    assert sheet.column_map == {"name": "Navn", "email": "E-mail"}
    assert sheet.rows[0].original["Status"] == "FAILED"
    assert sheet.rows[0].original["Row"] == "2"
    assert list(sheet.rows[0].original) == headers


def test_original_keeps_types_in_file_order_and_never_float_or_nan(tmp_path):
    path = write_xlsx(tmp_path / "typer.xlsx", [
        ["Navn", "E-mail", "Beløb", "Antal", "Udløb", "Note", "Land"],
        ["Test Person", "t@example.com", 499.95, 2.0, dt.datetime(2024, 3, 5, 14, 30), None, "NA"],
    ])
    row = read_sheet(path).rows[0]
    assert row.original == {"Navn": "Test Person", "E-mail": "t@example.com", "Beløb": Decimal("499.95"),
                            "Antal": 2, "Udløb": dt.datetime(2024, 3, 5, 14, 30), "Note": None, "Land": "NA"}
    assert type(row.original["Antal"]) is int
    assert row.fields == {"name": "Test Person", "email": "t@example.com", "amount": Decimal("499.95"),
                          "quantity": 2, "country": "NA"}


def test_blank_rows_are_skipped_and_keep_the_numbering(tmp_path):
    path = write_xlsx(tmp_path / "huller.xlsx", [
        ["Navn", "E-mail"], ["A", "a@example.com"], [None, None], ["  ", None], ["B", "b@example.com"],
    ])
    assert [r.number for r in read_sheet(path).rows] == [2, 5]
    csv_path = write_csv(tmp_path / "huller.csv", "Navn;E-mail\nA;a@example.com\n\n;\nB;b@example.com\n")
    assert [r.number for r in read_sheet(csv_path).rows] == [2, 5]


def test_a_quoted_value_over_two_lines_is_one_row_as_excel_shows_it(tmp_path):
    path = write_csv(tmp_path / "adresse.csv",
                     'Navn;E-mail;Adresse\nA;a@example.com;"Vej 1\n2. sal"\nB;b@example.com;Vej 2\n')
    rows = read_sheet(path).rows
    assert [(r.number, r.fields["address"]) for r in rows] == [(2, "Vej 1\n2. sal"), (3, "Vej 2")]


def test_columns_and_rows_offset_in_the_sheet_keep_real_letters_and_numbers(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws["C4"], ws["D4"], ws["E4"] = "Navn", "E-mail", "Beløb"
    ws["C5"], ws["D5"], ws["E5"] = "A", "a@example.com", "abc"
    wb.save(tmp_path / "forskudt.xlsx")
    sheet = read_sheet(tmp_path / "forskudt.xlsx")
    assert sheet.header_row == 4
    assert sheet.notes == ["Header found on row 4"]
    assert sheet.column_letters == {"Navn": "C", "E-mail": "D", "Beløb": "E"}
    problem = sheet.rows[0].problems[0]
    assert (problem.row, problem.column, problem.column_letter, problem.value) == (5, "Beløb", "E", "abc")
    assert sheet.describe(problem) == (
        "forskudt.xlsx, sheet 'Sheet', row 5, column 'Beløb' (E): "
        "'abc' is not an amount — write the price as a number, e.g. 250 or 1.234,50"
    )


def test_column_letter():
    assert [column_letter(i) for i in (0, 25, 26, 27, 701, 702)] == ["A", "Z", "AA", "AB", "ZZ", "AAA"]


def test_first_and_last_name_are_joined_only_without_a_name_column(tmp_path):
    path = write_csv(tmp_path / "mailchimp.csv", "Email Address,First Name,Last Name\nt@example.com,Test,Person\n"
                     "u@example.com,,Kun Efternavn\n")
    rows = read_sheet(path).rows
    assert rows[0].fields["name"] == "Test Person"
    assert rows[1].fields["name"] == "Kun Efternavn"
    both = write_csv(tmp_path / "begge.csv", "Navn;Fornavn;E-mail\nFuldt Navn;Test;t@example.com\n")
    assert read_sheet(both).rows[0].fields["name"] == "Fuldt Navn"


def test_no_defaults_are_applied_by_the_reader(tmp_path):
    # Quantity, country, currency and --department defaults belong to the validator, which names their source.
    path = write_csv(tmp_path / "min.csv", "Navn;E-mail;Afdeling\nA;a@example.com;\nB;b@example.com;Aarhus\n")
    rows = read_sheet(path).rows
    assert rows[0].fields == {"name": "A", "email": "a@example.com"}
    assert rows[1].fields["department"] == "Aarhus"
    assert rows[0].original["Afdeling"] is None


# --- options --------------------------------------------------------------------------------


def test_column_override_maps_any_header_and_wins_over_a_synonym(tmp_path):
    path = write_csv(tmp_path / "vaerdi.csv", "Navn;E-mail;Beløb;Værdi pr. kort\nA;a@example.com;1;250,00\n")
    sheet = read_sheet(path, ReadOptions(columns={"amount": "værdi pr kort"}))
    assert sheet.column_map["amount"] == "Værdi pr. kort"
    assert sheet.rows[0].fields["amount"] == Decimal("250.00")
    assert "Column C ('Beløb') is not used as Amount: --column chose another column" in sheet.notes


def test_column_override_naming_a_missing_header_lists_the_headers(tmp_path):
    path = write_csv(tmp_path / "liste.csv", "Navn;E-mail;Beløb\nA;a@example.com;100\n")
    with pytest.raises(InputFileError) as err:
        read_sheet(path, ReadOptions(columns={"amount": "Værdi i kr"}))
    assert str(err.value) == (
        "'liste.csv': --column amount='Værdi i kr': there is no column 'Værdi i kr'. "
        "The headers are: Navn, E-mail, Beløb"
    )


def test_column_override_with_an_unknown_field_is_a_usage_error(tmp_path):
    path = write_csv(tmp_path / "liste.csv", "Navn;E-mail\nA;a@example.com\n")
    with pytest.raises(ConfigError, match="unknown field 'beløbet'"):
        read_sheet(path, ReadOptions(columns={"beløbet": "Beløb"}))


def test_sheet_option_picks_a_sheet_and_an_unknown_name_lists_the_visible_ones(tmp_path):
    wb = openpyxl.Workbook()
    wb.active.title = "Modtagere"
    wb.active.append(["Navn", "E-mail"])
    wb.active.append(["A", "a@example.com"])
    other = wb.create_sheet("Ark2")
    other.append(["Navn", "E-mail"])
    other.append(["B", "b@example.com"])
    hidden = wb.create_sheet("Skjult")
    hidden.sheet_state = "hidden"
    wb.save(tmp_path / "ark.xlsx")
    assert read_sheet(tmp_path / "ark.xlsx", ReadOptions(sheet="Ark2")).rows[0].fields["name"] == "B"
    with pytest.raises(InputFileError) as err:
        read_sheet(tmp_path / "ark.xlsx", ReadOptions(sheet="Ark9"))
    assert str(err.value) == "'ark.xlsx' has no sheet 'Ark9' — the sheets are: Modtagere, Ark2"


def test_the_one_sheet_with_recipients_among_several_is_read_in_full(tmp_path):
    wb = openpyxl.Workbook()
    wb.active.title = "Forside"
    wb.active.append(["Velkommen til julens gavekort"])
    ws = wb.create_sheet("Modtagere")
    ws.append(["Navn", "E-mail"])
    for i in range(150):
        ws.append([f"P{i}", f"p{i}@example.com"])
    wb.save(tmp_path / "flere-ark.xlsx")
    sheet = read_sheet(tmp_path / "flere-ark.xlsx")
    assert (sheet.sheet_name, len(sheet.rows), sheet.rows[-1].number) == ("Modtagere", 150, 151)
    assert sheet.notes == ["Read sheet 'Modtagere', the only sheet with recipients"]


def test_size_limit_is_checked_before_reading(tmp_path, monkeypatch):
    path = write_csv(tmp_path / "stor.csv", "Navn;E-mail\n" + "A;a@example.com\n" * 1000)
    monkeypatch.setattr("builtins.open", lambda *a, **k: pytest.fail("the file was opened"))
    with pytest.raises(InputFileError) as err:
        read_sheet(path, ReadOptions(max_file_size=1000))
    assert str(err.value) == "'stor.csv' is 16,012 bytes; the limit is 1,000 bytes — split it into smaller files"


def test_row_limit_gives_both_counts(tmp_path):
    path = write_csv(tmp_path / "mange.csv", "Navn;E-mail\n" + "".join(f"P{i};p{i}@example.com\n" for i in range(25)))
    with pytest.raises(InputFileError) as err:
        read_sheet(path, ReadOptions(max_rows=10))
    assert str(err.value) == "'mange.csv': the sheet has 25 data rows; the limit is 10 — split it into smaller files"
    assert len(read_sheet(path, ReadOptions(max_rows=25)).rows) == 25


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "findes-ikke.xlsx", "'findes-ikke.xlsx' does not exist — check the file name and folder"),
    (lambda d: (d / "mappe.xlsx").mkdir() or d / "mappe.xlsx",
     "'mappe.xlsx' is a folder, not a file — give the spreadsheet file itself"),
    (lambda d: write_csv(d / "tom.csv", ""), "'tom.csv' is empty (0 bytes) — export the spreadsheet again"),
])
def test_paths_that_are_not_files(tmp_path, make, message):
    with pytest.raises(InputFileError) as err:
        read_sheet(make(tmp_path))
    assert str(err.value) == message


def test_no_header_names_what_the_first_row_has(tmp_path):
    path = write_xlsx(tmp_path / "ingen.xlsx", [["Kode", "Tekst"], ["A", "x"]])
    with pytest.raises(InputFileError) as err:
        read_sheet(path)
    assert str(err.value) == (
        "'ingen.xlsx', sheet 'Ark1': no header row found in the first 20 rows — the first row with text has: "
        "Kode, Tekst. Add a header row with column names such as Navn, E-mail, Beløb, Antal, or name a column "
        "with --column"
    )


def test_a_name_column_alone_is_not_a_header_but_an_email_column_alone_is(tmp_path):
    with pytest.raises(InputFileError, match="no header row found"):
        read_sheet(write_csv(tmp_path / "navne.csv", "Navn;Note\nA;x\n"))
    sheet = read_sheet(write_csv(tmp_path / "mails.csv", "E-mail\na@example.com\n"))
    assert [r.fields for r in sheet.rows] == [{"email": "a@example.com"}]


# --- XLSX cell metadata: formats, formulas, hidden rows ------------------------------------------


def test_zero_format_restores_leading_zeros_of_postal_codes_and_phones(tmp_path):
    path = write_xlsx(tmp_path / "nuller.xlsx", [
        ["Navn", "E-mail", "Postnr", "Telefon"],
        ["A", "a@example.com", 800, 1234567],
        ["B", "b@example.com", 2100, 12345678],
    ], C2="0000", D2="00000000")
    rows = read_sheet(path).rows
    assert rows[0].fields["postal_code"] == "0800"
    assert rows[0].original["Postnr"] == "0800"  # what the sheet shows
    assert rows[0].fields["phone"] == "+4501234567"
    assert (rows[1].fields["postal_code"], rows[1].original["Postnr"]) == ("2100", 2100)
    assert not rows[0].problems


def test_plain_workbook_does_not_parse_cells_or_import_openpyxl_or_pandas():
    code = (
        "import sys; from flexybulk.reading import read_sheet;"
        f"read_sheet({str(SHARED_INPUTS / 'kampagne-libreoffice.xlsx')!r});"
        "print(sorted(m for m in ('openpyxl', 'pandas') if m in sys.modules))"
    )
    shared("kampagne-libreoffice.xlsx")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"


def test_cell_pass_runs_only_when_the_sheet_has_formulas(tmp_path, monkeypatch):
    plain = write_xlsx(tmp_path / "plain.xlsx", [["Navn", "E-mail"], ["A", "a@example.com"]])
    monkeypatch.setattr(xlsx_scan_module._XlsxParts, "cells", lambda *a: pytest.fail("cells parsed"))
    assert read_sheet(plain).rows[0].fields["name"] == "A"


def test_shared_formula_children_are_named_with_their_own_formula(tmp_path):
    path = write_xlsx(tmp_path / "delt.xlsx", [["Navn", "E-mail", "Antal", "Beløb", "Total"],
                                               ["A", "a@example.com", 2, 5, None], ["B", "b@example.com", 3, 5, None]])
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    xml = members["xl/worksheets/sheet1.xml"].decode()
    xml = xml.replace('<c r="D2" t="n"><v>5</v></c>', '<c r="D2" t="n"><v>5</v></c><c r="E2"><f t="shared" ref="E2:E3" si="0">C2*D2</f></c>')
    xml = xml.replace('<c r="D3" t="n"><v>5</v></c>', '<c r="D3" t="n"><v>5</v></c><c r="E3"><f t="shared" si="0"/></c>')
    members["xl/worksheets/sheet1.xml"] = xml.encode()
    with zipfile.ZipFile(path, "w") as z:
        for name, body in members.items():
            z.writestr(name, body)
    messages = [p.message for r in read_sheet(path).rows for p in r.problems]
    assert messages == [
        "Cell E2 (Total) has the formula =C2*D2 but no calculated value. Open and save the file in "
        "Excel/LibreOffice, or paste values.",
        "Cell E3 (Total) has the formula =C3*D3 but no calculated value. Open and save the file in "
        "Excel/LibreOffice, or paste values.",
    ]


def test_rows_of_an_unfilled_template_with_formulas_only_in_extra_columns_are_blank(tmp_path):
    path = write_xlsx(tmp_path / "skabelon.xlsx", [["Navn", "E-mail", "Antal", "Beløb", "Total"],
                                                   ["A", "a@example.com", 2, 5, "=C2*D2"],
                                                   [None, None, None, None, "=C3*D3"]])
    rows = read_sheet(path).rows
    assert [r.number for r in rows] == [2]
    assert [p.column for p in rows[0].problems] == ["Total"]


def test_a_row_of_formulas_without_values_is_kept_with_its_problems(tmp_path):
    # A library-written sheet pulling names from another sheet: calamine sees an empty row (P9).
    path = write_xlsx(tmp_path / "opslag.xlsx", [["Navn", "E-mail", "Beløb"], ["A", "a@example.com", 100],
                                                 ["=Data!A3", "=Data!B3", None], ["B", "b@example.com", 200]])
    rows = read_sheet(path).rows
    assert [r.number for r in rows] == [2, 3, 4]
    assert rows[1].fields == {}
    assert rows[1].original == {"Navn": None, "E-mail": None, "Beløb": None}
    assert [(p.column, p.column_letter, p.value) for p in rows[1].problems] == [
        ("Navn", "A", "=Data!A3"), ("E-mail", "B", "=Data!B3")]
    assert rows[1].problems[0].message == (
        "Cell A3 (Navn) has the formula =Data!A3 but no calculated value. "
        "Open and save the file in Excel/LibreOffice, or paste values."
    )


def test_a_huge_csv_is_counted_past_the_row_limit_without_keeping_the_rows(tmp_path):
    path = write_csv(tmp_path / "kaempe.csv", "Navn;E-mail\n" + "A;a@example.com\n" * 5000 + "\n" * 100)
    with pytest.raises(InputFileError) as err:
        read_sheet(path, ReadOptions(max_rows=100))
    assert str(err.value) == (
        "'kaempe.csv': the sheet has 5,000 data rows; the limit is 100 — split it into smaller files"
    )


def test_defusedxml_is_there_for_openpyxl_and_the_reader():
    import defusedxml  # noqa: F401  (issue #6: no entity expansion in any XML we or openpyxl parse)
    import openpyxl.xml

    assert openpyxl.xml.DEFUSEDXML is True


# --- engines (P20) ----------------------------------------------------------------------------


def _snapshot(sheet: Sheet):
    return (sheet.header_row, sheet.headers, sheet.column_map,
            [(r.number, r.fields, r.original, [(p.column, p.message) for p in r.problems]) for r in sheet.rows])


@pytest.mark.parametrize("name", ["kampagne-libreoffice.xlsx", "p20-kampagne-libreoffice.xls"])
def test_fallback_engines_read_the_same_as_calamine(name, monkeypatch):
    path = CORPUS / name if name.startswith("p20") else shared(name)
    expected = _snapshot(read_sheet(path))
    monkeypatch.setattr(engines_module, "_CALAMINE_ENABLED", False)
    assert _snapshot(read_sheet(path)) == expected


def test_calamine_failure_falls_back_silently(monkeypatch):
    path = shared("kampagne-libreoffice.xlsx")

    def broken(self, data):
        raise ValueError("calamine could not")

    monkeypatch.setattr(engines_module._CalamineBook, "__init__", broken)
    sheet = read_sheet(path)
    assert totals(sheet) == (25, 54, Decimal("31500.00"))
    assert sheet.notes == [] and sheet.warnings == []


def test_calamine_failing_on_the_sheet_itself_also_falls_back(monkeypatch):
    path = shared("kampagne-libreoffice.xlsx")

    def broken(self, name, nrows=None):
        raise RuntimeError("XmlError: bad sheet")

    monkeypatch.setattr(engines_module._CalamineBook, "grid", broken)
    assert totals(read_sheet(path)) == (25, 54, Decimal("31500.00"))


def test_when_every_engine_fails_the_message_names_the_file_and_what_to_do(tmp_path, monkeypatch):
    path = write_xlsx(tmp_path / "liste.xlsx", [["Navn", "E-mail"], ["A", "a@example.com"]])

    def broken(self, data):
        raise ValueError("nope")

    monkeypatch.setattr(engines_module._CalamineBook, "__init__", broken)
    monkeypatch.setattr(engines_module._OpenpyxlBook, "__init__", broken)
    with pytest.raises(InputFileError) as err:
        read_sheet(path)
    assert str(err.value) == (
        "'liste.xlsx' is damaged or not a readable XLSX file — open it in Excel or LibreOffice and save it again "
        "as .xlsx. (The readers said: ValueError: nope; ValueError: nope.)"
    )


# --- speed (issue #6: validate <= 2x the bare read) ---------------------------------------------


def _fast_xlsx(path: Path, n: int) -> Path:
    """A plain n-row x 10-column XLSX written as raw XML (openpyxl would take seconds)."""
    head = ["Navn", "E-mail", "Telefon", "Adresse", "Postnr", "By", "Gavekorttype", "Afdeling", "Beløb", "Antal"]

    def cell(ref: str, value) -> str:
        if isinstance(value, str):
            return f'<c r="{ref}" t="inlineStr"><is><t>{value}</t></is></c>'
        return f'<c r="{ref}"><v>{value}</v></c>'

    rows = ["<row r=\"1\">" + "".join(cell(f"{column_letter(j)}1", h) for j, h in enumerate(head)) + "</row>"]
    for i in range(n):
        r = i + 2
        values = [f"Test Person {i}", f"p{i}@example.com", 20000000 + i, f"Prøvevej {i % 90}", 1000 + i % 8000,
                  "Aarhus C", "Gavekort", "Webshop", (250, 499.95, 1000)[i % 3], 1 + i % 4]
        rows.append(f'<row r="{r}">' + "".join(cell(f"{column_letter(j)}{r}", v) for j, v in enumerate(values)) + "</row>")
    sheet_xml = ('<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
                 + "".join(rows) + "</sheetData></worksheet>")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                   '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                   '<Default Extension="xml" ContentType="application/xml"/>'
                   '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
                   '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
                   "</Types>")
        z.writestr("_rels/.rels", '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                   '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>')
        z.writestr("xl/workbook.xml", '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
                   'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
                   '<sheets><sheet name="Modtagere" sheetId="1" r:id="rId1"/></sheets></workbook>')
        z.writestr("xl/_rels/workbook.xml.rels", '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                   '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>')
        z.writestr("xl/worksheets/sheet1.xml", sheet_xml)
    return path


def test_reading_20000_rows_is_right(tmp_path):
    # Correctness only: speed is measured by benchmarks/bench.py, not by a timed test.
    path = _fast_xlsx(tmp_path / "stor.xlsx", 20_000)
    sheet = read_sheet(path)
    assert len(sheet.rows) == 20_000 and not any(r.problems for r in sheet.rows)
    assert sheet.rows[-1].number == 20_001


def test_an_error_text_in_a_csv_is_a_cell_problem_not_a_name_or_an_address(tmp_path):
    # Excel and Calc save an error cell as its text; in a text field it must not become a name or an address.
    path = tmp_path / "fejl.csv"
    path.write_bytes("Navn;E-mail;Adresse;Beløb\r\n#N/A;a@example.com;Vej 1;250\r\nBo;b@example.com;#VALUE!;Err:502\r\n"
                     "Vej #3;c@example.com;#3;100\r\n".encode("cp1252"))
    rows = read_sheet(path).rows
    assert [(p.row, p.column_letter, p.message) for r in rows for p in r.problems] == [
        (2, "A", "Cell A2 (Navn) shows the error #N/A — fix the formula or type the value"),
        (3, "C", "Cell C3 (Adresse) shows the error #VALUE! — fix the formula or type the value"),
        (3, "D", "Cell D3 (Beløb) shows the error Err:502 — fix the formula or type the value"),
    ]
    assert "name" not in rows[0].fields and "address" not in rows[1].fields and rows[0].original["Navn"] == "#N/A"
    assert rows[2].fields["name"] == "Vej #3" and rows[2].fields["address"] == "#3"  # a # alone is text


def test_merged_data_cells_are_a_problem_on_each_covered_row_not_a_value_copied_down(tmp_path):
    """A fresh user's find: Beløb E2:E4 merged holding 250 was read as 250 on three rows (750.00 DKK), with no word;
    a name merged over the email column read as a bad email address. The header's merged cells still fill (P12)."""
    from clirun import flexybulk

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Modtagere"
    ws.append(["Gavekort julen", None, None, None, None, None])
    ws.append(["Navn", "E-mail", "Gavekorttype", "Afdeling", "Beløb", "Antal"])
    ws.append(["Anna Hansen", "anna@example.com", "Gavekort", "Webshop", 250, 1])
    ws.append(["Bo Jensen", "bo@example.com", "Gavekort", None, None, 1])
    ws.append(["Cai Berg", "cai@example.com", "Gavekort", "Aarhus", None, 1])
    ws.append(["Dina Test", None, "Gavekort", "Aarhus", 100, 1])
    for span in ("A1:F1", "E3:E5", "D3:D4", "A6:B6"):
        ws.merge_cells(span)
    path = tmp_path / "merged.xlsx"
    wb.save(path)
    sheet = read_sheet(path, ReadOptions())
    assert sheet.header_row == 2 and [r.number for r in sheet.rows] == [3, 4, 5, 6]
    got = [(p.row, p.column, p.column_letter, p.message) for r in sheet.rows for p in r.problems]
    said = "Unmerge the cells and write the value on each row."
    assert got == [
        (4, "Afdeling", "D", f"the cell is part of the merged cells D3:D4, whose value is in D3 only. {said}"),
        (4, "Beløb", "E", f"the cell is part of the merged cells E3:E5, whose value is in E3 only. {said}"),
        (5, "Beløb", "E", f"the cell is part of the merged cells E3:E5, whose value is in E3 only. {said}"),
        (6, "E-mail", "B", f"the cell is part of the merged cells A6:B6, whose value is in A6 only. {said}"),
    ]
    assert [r.fields.get("amount") for r in sheet.rows] == [Decimal("250"), None, None, Decimal("100")]
    assert sheet.rows[1].original["Afdeling"] is None and sheet.rows[3].original["E-mail"] is None
    run = flexybulk("validate", path, "--sandbox")
    assert "Valid rows: 1 of 4" in run.output and "total: 250.00 DKK" in run.output
    assert "merged.xlsx, sheet 'Modtagere', row 4, column 'Afdeling' (D): the cell is part of the merged cells D3:D4" \
        in run.output
    assert "the department is missing" not in run.output and "not a valid email" not in run.output


def test_two_columns_with_one_header_are_told_to_rename_not_to_choose_by_header(tmp_path):
    # A fresh user's find: "choose one with --column amount=..." cannot choose between two columns both "Beløb".
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Navn", "E-mail", "Gavekorttype", "Afdeling", "Beløb", "Antal", "Beløb"])
    ws.append(["Ida", "ida@example.com", "Gavekort", "Webshop", 100, 1, 200])
    wb.save(tmp_path / "to.xlsx")
    with pytest.raises(InputFileError) as err:
        read_sheet(tmp_path / "to.xlsx")
    assert str(err.value).endswith("Columns E and G both have the header 'Beløb' — rename one of them, or delete the "
                                   "one that is not the amount")
    assert "--column" not in str(err.value)


def test_an_amount_cell_formatted_as_a_percentage_is_a_problem_not_a_tiny_amount(tmp_path):
    # A fresh user's find: 0.5 formatted 0% shows 50% and was issued as 0.50 DKK. A "%" the format only quotes is text.
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Navn", "E-mail", "Gavekorttype", "Afdeling", "Beløb", "Antal"])
    for i, amount in enumerate([0.5, 250, 0.255, 300, 1, 10]):
        ws.append([f"P {i}", f"p{i}@example.com", "Gavekort", "Webshop", amount, 1])
    ws["E2"].number_format, ws["E4"].number_format, ws["E5"].number_format = "0%", "0.0%", '#,##0 "%"'
    ws["E6"].number_format = ws["E7"].number_format = "0%"  # 100% and 1000%: whole hundreds keep their zeros
    wb.save(tmp_path / "pct.xlsx")
    sheet = read_sheet(tmp_path / "pct.xlsx")
    got = [(p.row, p.column, p.message) for r in sheet.rows for p in r.problems]
    assert got == [
        (2, "Beløb", "E2 shows a percentage (50%), not an amount — format the cell as a number and write the price of "
                     "one gift certificate, e.g. 250"),
        (4, "Beløb", "E4 shows a percentage (25.5%), not an amount — format the cell as a number and write the price "
                     "of one gift certificate, e.g. 250"),
        (6, "Beløb", "E6 shows a percentage (100%), not an amount — format the cell as a number and write the price of "
                     "one gift certificate, e.g. 250"),
        (7, "Beløb", "E7 shows a percentage (1000%), not an amount — format the cell as a number and write the price "
                     "of one gift certificate, e.g. 250")]
    assert [r.fields.get("amount") for r in sheet.rows] == [None, Decimal("250"), None, Decimal("300"), None, None]
