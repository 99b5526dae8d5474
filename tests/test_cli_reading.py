"""The reader's faults a tester found by attacking the CLI, end to end through ``flexybulk issue ... --yes``.

Each input is made the way real software makes it: LibreOffice-written
workbooks (``tests/corpus/make_reader_cases.py``), an XLSB after [MS-XLSB]
(``make_xlsb_case.py``), and text files encoded as the programs named write
them. The tests assert the exact messages (file, sheet, row, column) and the
rows the sandbox on 127.0.0.1 really issued, and that nothing is sent for a
refused file.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from clirun import flexybulk
from test_cli_issue import result_rows
from test_cli_selection import copy, issued, issued_names, nothing_sent


# --- error cells: money at risk (pitfalls P9) ----------------------------------------------------

@pytest.mark.parametrize("name", ["err-cells-libreoffice.xlsx", "err-cells-libreoffice.ods", "err-cells-libreoffice.xls",
                                  "xlsb-fejl.xlsb", "err-cells-libreoffice.csv"])
def test_an_error_cell_is_a_cell_problem_showing_the_error_in_every_format(tmp_path, sandbox_env, name):
    src = copy(name, tmp_path)
    run = flexybulk("issue", src, "--yes")
    assert run.code == 1
    where = name if name.endswith(".csv") else f"{name}, sheet 'Modtagere'"  # a CSV: the error texts Calc saved
    assert (f"{where}, row 2, column 'Beløb' (F): Cell F2 (Beløb) shows the error #DIV/0! — fix the formula or "
            "type the value") in run.stderr
    assert (f"{where}, row 3, column 'Antal' (G): Cell G3 (Antal) shows the error #N/A — fix the formula or "
            "type the value") in run.stderr
    # An error in an optional field does not silently become an empty cell either.
    assert (f"{where}, row 4, column 'Telefon' (C): Cell C4 (Telefon) shows the error #N/A — fix the formula or "
            "type the value") in run.stderr
    assert "the amount is missing" not in run.stderr
    assert "Nothing was issued: 3 rows are invalid." in run.stderr
    assert nothing_sent(sandbox_env)

    run = flexybulk("issue", src, "--yes", "--skip-invalid")
    assert run.code == 1  # three rows were not issued
    if name == "xlsb-fejl.xlsb":
        assert issued(sandbox_env) == (1, 1, Decimal("200"))
        assert issued_names(sandbox_env) == ["Julie Demo"]
        statuses = [(2, "INVALID"), (3, "INVALID"), (4, "INVALID"), (5, "ISSUED")]
    else:
        assert issued(sandbox_env) == (2, 2, Decimal("900"))
        assert issued_names(sandbox_env) == ["Julie Demo", "Lars Eksempel"]
        statuses = [(2, "INVALID"), (3, "INVALID"), (4, "INVALID"), (5, "ISSUED"), (6, "ISSUED")]
    got = result_rows(tmp_path / f"{src.stem}.result.xlsx")
    assert [(r["Row"], r["Status"]) for r in got] == statuses
    # The result sheet shows what the cells showed, not an empty cell.
    assert (got[0]["Beløb"], got[1]["Antal"], got[2]["Telefon"]) == ("#DIV/0!", "#N/A", "#N/A")


# --- values from another workbook ---------------------------------------------------------------


@pytest.mark.parametrize("ext", ["xlsx", "ods", "xls"])
def test_an_array_formula_or_a_link_to_a_moved_workbook_is_a_row_problem_naming_the_file(tmp_path, sandbox_env, ext):
    src = copy(f"ext-more-libreoffice.{ext}", tmp_path)
    run = flexybulk("issue", src, "--yes")
    assert run.code == 1
    where = f"ext-more-libreoffice.{ext}, sheet 'Modtagere'"
    for row in (2, 3):  # one array formula over both cells
        assert (f"{where}, row {row}, column 'Beløb' (F): F{row} takes its value from 'Budget 2026.xlsx'; paste the "
                "values, then validate again") in run.stderr
    assert (f"{where}, row 4, column 'Beløb' (F): F4 takes its value from 'Budget 2025.xlsx' and shows the error "
            "#REF!; paste the values, then validate again") in run.stderr
    assert "the amount is missing" not in run.stderr
    assert nothing_sent(sandbox_env)
    run = flexybulk("issue", src, "--yes", "--skip-invalid")
    assert issued(sandbox_env) == (1, 1, Decimal("150"))
    assert issued_names(sandbox_env) == ["Lars Eksempel"]


# --- an old DOS program's CSV (code page 850) ------------------------------------------------------

DOS_ENGLISH = ("Name;Email;Type;Department;Amount\r\n"
               "Søren Bæk;soren@example.com;Gavekort;Webshop;250\r\n"
               "Bo Fiktiv;bo@example.org;Gavekort;Webshop;300\r\n")


def test_a_cp850_csv_that_reads_as_windows_1252_is_not_issued_garbled_and_names_encoding_cp850(tmp_path, sandbox_env):
    src = tmp_path / "dos.csv"
    src.write_bytes(DOS_ENGLISH.encode("cp850"))  # an old DOS program's export: cp850, CRLF
    run = flexybulk("issue", src, "--yes")
    assert run.code == 1
    assert ("Warning: 'dos.csv' line 2: the text looks like an old DOS program's (code page 850), where 'S›ren' is "
            "'Søren' — read the file with --encoding cp850 (or --encoding cp1252 if 'S›ren' is right)") in run.stderr
    assert ("dos.csv, row 2, column 'Name' (A): 'S›ren B‘k' looks wrongly decoded: in code page 850 (an old DOS "
            "program's) it reads 'Søren Bæk' — read the file with --encoding cp850") in run.stderr
    assert "Nothing was issued: 1 row is invalid." in run.stderr
    assert nothing_sent(sandbox_env)

    run = flexybulk("issue", src, "--yes", "--encoding", "cp850")
    assert run.code == 0, run.output
    assert "  Read as cp850 (--encoding cp850)" in run.stdout
    assert "DOS" not in run.output
    assert issued(sandbox_env) == (2, 2, Decimal("550"))
    assert issued_names(sandbox_env) == ["Bo Fiktiv", "Søren Bæk"]


def test_a_cp850_csv_that_windows_1252_cannot_decode_is_refused_naming_encoding_cp850(tmp_path, sandbox_env):
    src = tmp_path / "dos.csv"
    src.write_bytes(("Navn;E-mail;Gavekorttype;Afdeling;Beløb\r\n"
                     "Åse Ørnebjerg;aase@example.net;Julegavekort;Odense;500\r\n").encode("cp850"))  # Å is 0x8F
    run = flexybulk("issue", src, "--yes")
    assert run.code == 1
    assert ("Error: 'dos.csv' line 2: the text is neither UTF-8 nor Windows-1252 (byte 0x8F) — it looks like an old "
            "DOS program's export (code page 850, where line 1 reads 'Beløb'). Read it with --encoding cp850, or save "
            "the list as 'CSV UTF-8'") in run.stderr
    assert nothing_sent(sandbox_env)
    run = flexybulk("issue", src, "--yes", "--encoding", "cp850")
    assert run.code == 0, run.output
    assert issued_names(sandbox_env) == ["Åse Ørnebjerg"]


def test_a_csv_that_is_not_the_utf_8_its_bom_says_names_encoding(tmp_path, sandbox_env):
    src = tmp_path / "halv.csv"
    # A UTF-8 byte-order mark before Windows-1252 text (ø is 0xF8): the BOM says what the bytes are not.
    src.write_bytes(b"\xef\xbb\xbf" + "Navn;E-mail;Gavekorttype;Afdeling;Beløb\r\nSøren Kjær;soren@example.com;Gavekort;Webshop;250\r\n".encode("cp1252"))
    run = flexybulk("issue", src, "--yes")
    assert run.code == 1
    assert ("Error: 'halv.csv' line 1: the file says it is UTF-8 (with BOM) but has bytes that are not (byte 0xF8) — "
            "save it again as 'CSV UTF-8' from Excel, or give its real encoding with --encoding (e.g. --encoding cp1252)") in run.stderr
    run = flexybulk("issue", src, "--yes", "--encoding", "cp1252")
    assert run.code == 0, run.output
    assert issued_names(sandbox_env) == ["Søren Kjær"]


# --- one amount column, one convention (pitfalls P1) ----------------------------------------------------


def test_an_amount_written_the_other_way_than_the_column_is_a_row_problem_saying_how_to_write_it(tmp_path, sandbox_env):
    src = tmp_path / "beloeb.csv"
    src.write_bytes(("Navn;E-mail;Gavekorttype;Afdeling;Beløb\r\n"  # Danish Excel's "CSV (semikolonsepareret)"
                     "Ida Testesen;ida@example.com;Gavekort;Webshop;1.000,00\r\n"
                     "Bo Fiktiv;bo@example.org;Gavekort;Webshop;1,000.00\r\n"
                     "Åse Ørnebjerg;aase@example.net;Julegavekort;Odense;1.234,50\r\n"
                     "Lars Eksempel;lars@example.com;Gavekort;Aarhus;250\r\n").encode("cp1252"))
    run = flexybulk("issue", src, "--yes")
    assert run.code == 1
    assert ("beloeb.csv, row 3, column 'Beløb' (E): '1,000.00' is written the English way (1,234.50), but the other "
            "amounts in this column are written the Danish way (1.234,50) — write it as 1.000,00") in run.stderr
    assert "Nothing was issued: 1 row is invalid." in run.stderr
    assert nothing_sent(sandbox_env)
    run = flexybulk("issue", src, "--yes", "--skip-invalid")
    assert issued(sandbox_env) == (3, 3, Decimal("2484.50"))
    assert sorted(c["Amount"] for c in sandbox_env.state.certificates) == [Decimal("250"), Decimal("1000"), Decimal("1234.50")]
    assert issued_names(sandbox_env) == ["Ida Testesen", "Lars Eksempel", "Åse Ørnebjerg"]


def test_an_amount_column_written_as_often_one_way_as_the_other_issues_none_of_those_values(tmp_path, sandbox_env):
    src = tmp_path / "beloeb.csv"
    src.write_text("Navn;E-mail;Gavekorttype;Afdeling;Beløb\n"
                   "Ida Testesen;ida@example.com;Gavekort;Webshop;1.000,00\n"
                   "Bo Fiktiv;bo@example.org;Gavekort;Webshop;1,000.00\n", encoding="utf-8")
    run = flexybulk("issue", src, "--yes", "--skip-invalid")
    assert ("beloeb.csv, row 2, column 'Beløb' (E): '1.000,00' is written the Danish way (1.234,50), but as many "
            "amounts in this column are written the English way (1,234.50), so the column's way cannot be told — "
            "write every amount one way (this one is 1,000.00 the English way)") in run.stderr
    assert ("beloeb.csv, row 3, column 'Beløb' (E): '1,000.00' is written the English way (1,234.50), but as many "
            "amounts in this column are written the Danish way (1.234,50), so the column's way cannot be told — "
            "write every amount one way (this one is 1.000,00 the Danish way)") in run.stderr
    assert nothing_sent(sandbox_env)


# --- separators, and text named as a workbook (pitfalls P2, P16) --------------------------------------------


def test_a_line_that_uses_another_separator_says_so(tmp_path, sandbox_env):
    src = tmp_path / "liste.csv"
    src.write_bytes(("Navn;E-mail;Gavekorttype;Afdeling;Beløb\r\n"
                     "Ida Testesen;ida@example.com;Gavekort;Webshop;250\r\n"
                     "Bo Fiktiv,bo@example.org,Gavekort,Webshop,300\r\n"  # pasted from another, comma-separated file
                     "Åse Ørnebjerg;aase@example.net;Julegavekort;Odense;500\r\n").encode("cp1252"))
    run = flexybulk("issue", src, "--yes")
    assert run.code == 1
    assert ("liste.csv, row 3: row 3 seems to separate its values with ',', not ';' like the rest of the file, so the "
            "whole line is read into column A (Navn) — separate the values with ';' as in the other rows") in run.stderr
    # One cause, said once: not also "the email address is missing" and so on (a fresh user's find).
    assert "1 invalid row, 1 problem:" in run.output and "liste.csv, row 3" in run.stderr
    assert [line for line in run.output.splitlines() if "row 3" in line and "separate its values" not in line] == []
    assert nothing_sent(sandbox_env)
    run = flexybulk("issue", src, "--yes", "--skip-invalid")
    assert issued(sandbox_env) == (2, 2, Decimal("750"))
    assert issued_names(sandbox_env) == ["Ida Testesen", "Åse Ørnebjerg"]


def test_a_csv_named_xlsx_says_it_is_text_when_read_and_when_refused(tmp_path, sandbox_env):
    src = tmp_path / "liste.xlsx"
    lines = ["Navn;E-mail;Gavekorttype;Afdeling;Beløb", "Ida Testesen;ida@example.com;Gavekort;Webshop;250",
             "Bo Fiktiv;bo@example.org;Gavekort;Webshop;300"]
    src.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1252"))
    run = flexybulk("issue", src, "--yes")
    assert run.code == 0, run.output
    assert "Read liste.xlsx (CSV): 2 rows." in run.stdout
    assert "  'liste.xlsx' is really a semicolon-separated text file — read it as CSV" in run.stdout
    assert issued_names(sandbox_env) == ["Bo Fiktiv", "Ida Testesen"]

    broken = tmp_path / "brudt.xlsx"
    broken.write_bytes(("\r\n".join(lines[:2] + ['"Lars Eksempel;lars@example.com;Gavekort;Aarhus;150']) + "\r\n").encode("cp1252"))
    run = flexybulk("issue", broken, "--yes")
    assert run.code == 1
    assert ("Error: 'brudt.xlsx' line 3: a quote (\") opened here is never closed, so the rest of the file would be one "
            "value — fix the quotes on that line or export the file again ('brudt.xlsx' is not a workbook but a text "
            "file: it was read as CSV)") in run.stderr


# --- limits and empty sheets ------------------------------------------------------------------------------


def test_the_default_rows_limit_names_max_rows_and_a_limit_set_by_max_rows_is_kept(tmp_path, sandbox_env):
    src = tmp_path / "stor.csv"
    rows = "".join(f"Person {i};p{i}@example.com;Gavekort;Webshop;100\n" for i in range(100_001))
    src.write_text("Navn;E-mail;Gavekorttype;Afdeling;Beløb\n" + rows, encoding="utf-8")
    run = flexybulk("issue", src, "--yes")
    assert run.code == 1
    assert ("Error: 'stor.csv': the sheet has 100,001 data rows; the limit is 100,000 — split it into smaller files, "
            "or raise the limit with --max-rows") in run.stderr
    assert nothing_sent(sandbox_env)
    run = flexybulk("validate", src, "--max-rows", "1000")
    assert "Error: 'stor.csv': the sheet has 100,001 data rows; the limit is 1,000 — split it into smaller files\n" in run.stderr


def test_the_default_file_size_limit_names_max_file_size(tmp_path, sandbox_env):
    src = tmp_path / "stor.csv"
    with open(src, "wb") as handle:
        handle.truncate(50 * 1024 * 1024 + 1)
    run = flexybulk("validate", src)
    assert run.code == 1
    assert ("Error: 'stor.csv' is 50.0 MB; the limit is 50.0 MB — split it into smaller files, or raise the limit with "
            "--max-file-size (in MB)") in run.stderr


def test_an_empty_sheet_or_file_is_said_to_be_empty(tmp_path, sandbox_env):
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.title = "Modtagere"
    wb.save(tmp_path / "tom.xlsx")
    run = flexybulk("issue", tmp_path / "tom.xlsx", "--yes")
    assert run.code == 1
    assert ("Error: 'tom.xlsx', sheet 'Modtagere': the sheet is empty — put the recipients on it below a header row with "
            "column names such as Navn, E-mail, Beløb, Antal, or choose the sheet that has them with --sheet") in run.stderr
    assert "(nothing)" not in run.stderr

    (tmp_path / "tom.csv").write_bytes(b";;;;\r\n;;;;\r\n")  # an export of an empty range
    run = flexybulk("issue", tmp_path / "tom.csv", "--yes")
    assert run.code == 1
    assert ("Error: 'tom.csv' is empty: it has only empty lines or separators — export the list again, with a header "
            "row (Navn, E-mail, Beløb, ...) and a row per recipient") in run.stderr
    assert nothing_sent(sandbox_env)
