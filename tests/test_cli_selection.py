"""Issue #12 end to end: what the person meant, not only what the cells hold.

Each kind of mark is run through ``flexybulk issue ... --yes`` against the
sandbox on 127.0.0.1 with LibreOffice-written workbooks
(``tests/corpus/sel-*``, from ``make_selection_cases.py``) or files built here
as the programs named write them; the tests assert the rows the sandbox
really issued, the row numbers in the messages, and that nothing is sent for
a refused file.
"""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from clirun import flexybulk
from test_cli_issue import assert_result_matches_sandbox, result_rows

CORPUS = Path(__file__).resolve().parent / "corpus"


def copy(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copy(CORPUS / name, tmp_path / name))


def issued(sandbox) -> tuple[int, int, Decimal]:
    """(committed orders, certificates, money) the sandbox holds."""
    counts = sandbox.state.counts()
    return counts["committed_orders"], counts["certificates"], sum((Decimal(c["Amount"]) for c in sandbox.state.certificates), Decimal(0))


def issued_names(sandbox) -> list[str]:
    return sorted(c["FullName"] for c in sandbox.state.customers.values())


def nothing_sent(sandbox) -> bool:
    return {m for m, _, _ in sandbox.state.requests} <= {"GET"}


# --- rows hidden or filtered out -------------------------------------------------------------


@pytest.mark.parametrize("ext, hidden_lines", [
    ("xlsx", ["Rows 3, 5 and 6 are hidden by a filter and will not be issued (--include-hidden reads them).",
              "Row 8 is hidden and will not be issued (--include-hidden reads it)."]),
    ("ods", ["Rows 3, 5 and 6 are hidden by a filter and will not be issued (--include-hidden reads them).",
             "Row 8 is hidden and will not be issued (--include-hidden reads it)."]),
    # XLS does not say which hidden rows of a filter's range the filter hid.
    ("xls", ["Rows 3, 5, 6 and 8 are hidden by a filter and will not be issued (--include-hidden reads them)."]),
])
def test_rows_filtered_out_or_hidden_are_not_issued_and_are_marked_excluded(tmp_path, sandbox_env, ext, hidden_lines):
    src = copy(f"sel-filtered-libreoffice.{ext}", tmp_path)
    dry = flexybulk("validate", src)
    assert dry.code == 0, dry.output
    assert "Valid rows: 4 of 4 · gift certificates: 7 · total: 2,250.00 DKK" in dry.stdout
    for line in hidden_lines:
        assert line in dry.stdout
    assert nothing_sent(sandbox_env)
    import openpyxl

    ws = openpyxl.load_workbook(tmp_path / "sel-filtered-libreoffice.validation.xlsx")["Validation"]
    header = [c.value for c in ws[1]]
    statuses = [(r[header.index("Row")], r[header.index("Status")]) for r in ws.iter_rows(min_row=2, values_only=True)]
    assert statuses == [(2, "VALID"), (3, "EXCLUDED"), (4, "VALID"), (5, "EXCLUDED"), (6, "EXCLUDED"), (7, "VALID"),
                        (8, "EXCLUDED"), (9, "VALID")]

    run = flexybulk("issue", src, "--yes")
    assert run.code == 0, run.output
    for line in hidden_lines:
        assert line in run.stdout
    assert "Issued now: 4 rows, 7 gift certificates, 2,250.00 DKK." in run.stdout
    assert issued(sandbox_env) == (4, 7, Decimal("2250"))
    assert issued_names(sandbox_env) == ["Ida Testesen", "Niels Nielsen", "Søren Prøvesen", "Åse Ørnebjerg"]
    got = result_rows(tmp_path / f"sel-filtered-libreoffice.result.xlsx")
    assert [(r["Row"], r["Status"]) for r in got] == [
        (2, "ISSUED"), (3, "EXCLUDED"), (4, "ISSUED"), (5, "EXCLUDED"), (6, "EXCLUDED"), (7, "ISSUED"),
        (8, "EXCLUDED"), (9, "ISSUED")]
    reason = "hidden by a filter" if ext == "xls" else "hidden"
    assert got[6]["Error"] == (f"Not issued: the row is {reason} in the sheet. Unhide it and run again, "
                               "or use --include-hidden, to issue it.")
    assert got[1]["Error"].startswith("Not issued: the row is hidden by a filter in the sheet.")
    assert got[1]["SalesOrderId"] is None
    assert_result_matches_sandbox(got, sandbox_env)


def test_include_hidden_reads_hidden_rows_as_ordinary_rows(tmp_path, sandbox_env):
    src = copy("sel-filtered-libreoffice.xlsx", tmp_path)
    run = flexybulk("issue", src, "--yes", "--include-hidden")
    assert run.code == 0, run.output
    assert "4 hidden rows will be read too (rows 3, 5, 6, 8)" in run.stderr
    assert "Issued now: 8 rows, 11 gift certificates, 4,449.00 DKK." in run.stdout
    assert issued(sandbox_env) == (8, 11, Decimal("4449"))
    assert [r["Status"] for r in result_rows(tmp_path / "sel-filtered-libreoffice.result.xlsx")] == ["ISSUED"] * 8


def test_a_failed_row_hidden_before_the_rerun_is_excluded_not_retried(tmp_path, sandbox_env, monkeypatch):
    """The same batch, run again: a FAILED row that is now hidden becomes EXCLUDED and is not sent."""
    from flexybulk.sandbox.state import Refusal

    src = copy("sel-filtered-libreoffice.xlsx", tmp_path)
    state = sandbox_env.state
    real_put_customer = state.put_customer

    def refusing(customer_id, body):
        if body.get("EmailAddress") == "bo@example.org":  # row 3, filtered out in the file
            raise Refusal(400, "EmailAddress is blocked", "EmailAddress")
        return real_put_customer(customer_id, body)

    monkeypatch.setattr(state, "put_customer", refusing)
    run = flexybulk("issue", src, "--yes", "--include-hidden")
    assert run.code == 1
    assert issued(sandbox_env) == (7, 10, Decimal("4149"))
    run = flexybulk("issue", src, "--yes")  # the coordinator's selection again: row 3 is not wanted
    assert run.code == 0, run.output
    assert "Issued now: nothing." in run.stdout
    assert issued(sandbox_env) == (7, 10, Decimal("4149"))
    got = result_rows(tmp_path / "sel-filtered-libreoffice.result.xlsx")
    assert [(r["Row"], r["Status"]) for r in got if r["Status"] != "ISSUED"] == [(3, "EXCLUDED")]
    status = flexybulk("status", src)
    assert "Rows: EXCLUDED: 1, ISSUED: 7 (of 8)." in status.stdout
    assert "No rows need attention." in status.stdout


# --- struck-through rows ------------------------------------------------------------------------


@pytest.mark.parametrize("ext", ["xlsx", "ods", "xls"])
def test_a_struck_through_row_stops_the_batch_until_decided(tmp_path, sandbox_env, ext):
    src = copy(f"sel-struck-libreoffice.{ext}", tmp_path)
    run = flexybulk("issue", src, "--yes")
    assert run.code == 1
    assert (f"sel-struck-libreoffice.{ext}, sheet 'Modtagere', row 4: row 4 is struck through — delete it, "
            "or remove the strike-through to issue it") in run.stderr
    assert "Nothing was issued: 1 row is invalid. Correct it, or issue the valid rows with --skip-invalid." in run.stderr
    assert nothing_sent(sandbox_env)

    run = flexybulk("issue", src, "--yes", "--skip-invalid")
    assert run.code == 1  # the struck row was not issued
    assert issued(sandbox_env) == (4, 4, Decimal("1450"))
    assert issued_names(sandbox_env) == ["Bo Fiktiv", "Ida Testesen", "Julie Demo", "Lars Eksempel"]
    got = result_rows(tmp_path / f"sel-struck-libreoffice.result.xlsx")
    assert [(r["Row"], r["Status"]) for r in got] == [(2, "ISSUED"), (3, "ISSUED"), (4, "INVALID"), (5, "ISSUED"), (6, "ISSUED")]
    assert got[2]["Error"] == "row: row 4 is struck through — delete it, or remove the strike-through to issue it"


# --- a mailto link that is not the text ----------------------------------------------------------


@pytest.mark.parametrize("ext", ["xlsx", "ods", "xls"])
def test_a_mailto_link_that_differs_from_its_text_is_a_row_problem_showing_both(tmp_path, sandbox_env, ext):
    src = copy(f"sel-mailto-libreoffice.{ext}", tmp_path)
    run = flexybulk("issue", src, "--yes")
    assert run.code == 1
    assert (f"sel-mailto-libreoffice.{ext}, sheet 'Modtagere', row 3, column 'E-mail' (B): B3 shows 'anna@example.com' "
            "but its link goes to 'anna.hansen@example.com' — correct the cell or the link so that both are the "
            "address to use") in run.stderr
    assert nothing_sent(sandbox_env)


# --- a value from another workbook ---------------------------------------------------------------


@pytest.mark.parametrize("ext", ["xlsx", "ods", "xls"])
def test_an_amount_linked_from_another_workbook_is_a_row_problem_naming_cell_and_file(tmp_path, sandbox_env, ext):
    src = copy(f"sel-external-libreoffice.{ext}", tmp_path)
    run = flexybulk("issue", src, "--yes")
    assert run.code == 1
    assert (f"sel-external-libreoffice.{ext}, sheet 'Modtagere', row 2, column 'Beløb' (E): E2 takes its value from "
            "'Budget 2026.xlsx'; paste the values, then validate again") in run.stderr
    assert "the amount is missing" not in run.stderr
    assert nothing_sent(sandbox_env)
    run = flexybulk("issue", src, "--yes", "--skip-invalid")
    assert issued(sandbox_env) == (2, 3, Decimal("1300"))  # rows 3 and 4; row 2's amount was never used


# --- where the list ends ------------------------------------------------------------------------

SECOND_TABLE = [
    ["Navn", "E-mail", "Gavekorttype", "Afdeling", "Beløb", "Antal"],
    ["Ida Testesen", "ida@example.com", "Gavekort", "Webshop", 250, 1],
    ["Bo Fiktiv", "bo@example.org", "Gavekort", "Webshop", 300, 1],
    [],
    ["Åse Ørnebjerg", "aase@example.net", "Julegavekort", "Odense", 500, 2],
    ["I alt", None, None, None, 1550, 4],
    [],
    ["Venteliste – skal ikke have gavekort endnu"],
    ["Navn", "E-mail", "Gavekorttype", "Afdeling", "Beløb", "Antal"],
    ["Lars Eksempel", "lars@example.com", "Gavekort", "Aarhus", 150, 1],
]


def _second_table(tmp_path: Path, kind: str) -> Path:
    if kind == "csv":  # Danish Excel's "CSV (semikolonsepareret)": Windows-1252, CRLF
        path = tmp_path / "liste.csv"
        lines = [";".join("" if v is None else str(v) for v in row) for row in SECOND_TABLE]
        path.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1252"))
        return path
    import openpyxl

    path = tmp_path / "liste.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Modtagere"
    for r, row in enumerate(SECOND_TABLE, start=1):
        for c, value in enumerate(row, start=1):
            ws.cell(r, c, value)
    ws["E6"] = "=SUM(E2:E5)"  # a totals row as people write it: a formula
    wb.save(path)
    return path


@pytest.mark.parametrize("kind", ["xlsx", "csv"])
def test_the_list_ends_at_a_totals_row_and_a_second_table_is_never_issued(tmp_path, sandbox_env, kind):
    src = _second_table(tmp_path, kind)
    where = f"'{src.name}'" + (", sheet 'Modtagere'" if kind == "xlsx" else "")
    dry = flexybulk("validate", src)
    assert dry.code == 0, dry.output
    assert f"Warning: {where}: row 6 ('I alt') is a totals row, not a recipient: it is not read" in dry.stderr
    assert (f"Warning: {where}: the list ends at row 6 (row 7 is blank and row 8 does not look like a recipient); "
            "rows 8–10 below the list look like a second table and are not read; delete them or move them to "
            "their own sheet") in dry.stderr
    assert "Valid rows: 3 of 3" in dry.stdout
    assert "missing" not in dry.output  # the totals row is named, not reported as a recipient without fields

    run = flexybulk("issue", src, "--yes")
    assert run.code == 0, run.output
    assert issued(sandbox_env) == (3, 4, Decimal("1550"))
    assert issued_names(sandbox_env) == ["Bo Fiktiv", "Ida Testesen", "Åse Ørnebjerg"]
    got = result_rows(tmp_path / f"liste.result.{'csv' if kind == 'csv' else 'xlsx'}") if kind == "xlsx" else None
    if got is not None:
        assert [r["Row"] for r in got] == [2, 3, 5]


def test_a_repeated_header_ends_the_list(tmp_path, sandbox_env):
    src = tmp_path / "dobbelt.csv"
    src.write_text("Navn;E-mail;Gavekorttype;Afdeling;Beløb\n"
                   "Ida Testesen;ida@example.com;Gavekort;Webshop;250\n"
                   "Navn;E-mail;Gavekorttype;Afdeling;Beløb\n"
                   "Lars Eksempel;lars@example.com;Gavekort;Aarhus;150\n", encoding="utf-8")
    run = flexybulk("issue", src, "--yes")
    assert run.code == 0, run.output
    assert ("'dobbelt.csv': the list ends at row 2 (row 3 repeats the header); rows 3–4 below the list look like a "
            "second table and are not read; delete them or move them to their own sheet") in run.stderr
    assert issued(sandbox_env) == (1, 1, Decimal("250"))


# --- encodings -------------------------------------------------------------------------------------

DANISH = ("Navn;E-mail;Gavekorttype;Afdeling;Beløb;Antal\r"
          "Søren Kjær;soren@example.com;Gavekort;Webshop;250;1\r"
          "Åse Ørnebjerg;aase@example.net;Julegavekort;Odense;500;2\r")


def test_a_csv_saved_by_excel_for_mac_is_read_as_mac_roman_and_says_so(tmp_path, sandbox_env):
    src = tmp_path / "modtagere.csv"
    src.write_bytes(DANISH.encode("mac_roman"))  # "CSV (Macintosh)": Mac Roman, CR line ends
    run = flexybulk("issue", src, "--yes")
    assert run.code == 0, run.output
    assert "  Read as Mac Roman (the file is not UTF-8, and its line ends are a Mac's (CR only); --encoding overrides)" in run.stdout
    assert issued(sandbox_env) == (2, 3, Decimal("1250"))
    assert issued_names(sandbox_env) == ["Søren Kjær", "Åse Ørnebjerg"]


def test_a_wrong_decode_is_named_when_a_header_does_not_match_and_encoding_fixes_it(tmp_path, sandbox_env):
    src = tmp_path / "dos.csv"
    text = DANISH.split("\r")[:2] + ["Bo Fiktiv;bo@example.org;Gavekort;Webshop;300;1", ""]
    src.write_bytes("\r\n".join(text).encode("cp850"))  # an old DOS program's export
    run = flexybulk("issue", src, "--yes")
    assert run.code == 1  # a refused file
    assert "no column for the amount (Beløb/Amount). The header on row 1 has 'Navn', 'E-mail', 'Gavekorttype', " \
           "'Afdeling', 'Bel›b', 'Antal'." in run.stderr
    assert ("The text looks wrongly decoded ('Bel›b' on line 1, read as Windows-1252): give the file's encoding with "
            "--encoding, e.g. --encoding mac-roman for a CSV saved by Excel for Mac, or --encoding cp850 for an old "
            "DOS program's") in run.stderr
    assert nothing_sent(sandbox_env)

    run = flexybulk("issue", src, "--yes", "--encoding", "cp850")
    assert run.code == 0, run.output
    assert "  Read as cp850 (--encoding cp850)" in run.stdout
    assert issued_names(sandbox_env) == ["Bo Fiktiv", "Søren Kjær"]


def test_an_unknown_encoding_is_a_usage_error(tmp_path, sandbox_env):
    src = tmp_path / "modtagere.csv"
    src.write_bytes(DANISH.encode("mac_roman"))
    run = flexybulk("validate", src, "--encoding", "klingon")
    assert run.code == 2
    assert "--encoding klingon: not an encoding Python knows." in run.stderr


# --- XLSB ----------------------------------------------------------------------------------------------


def test_an_xlsb_workbook_is_read_through_calamine_with_its_marks(tmp_path, sandbox_env):
    src = copy("xlsb-modtagere.xlsb", tmp_path)
    run = flexybulk("issue", src, "--yes", "--skip-invalid")
    assert "Read xlsb-modtagere.xlsb, sheet 'Modtagere' (XLSB): 5 rows." in run.stdout
    assert "Row 4 is hidden and will not be issued (--include-hidden reads it)." in run.stdout
    assert ("xlsb-modtagere.xlsb, sheet 'Modtagere', row 5: row 5 is struck through — delete it, or remove the "
            "strike-through to issue it") in run.stderr
    assert run.code == 1  # the struck row is not issued
    assert issued(sandbox_env) == (3, 4, Decimal("1550.50"))
    assert issued_names(sandbox_env) == ["Bo Fiktiv", "Ida Testesen", "Åse Ørnebjerg"]


def test_an_xlsb_workbook_with_a_vba_project_is_refused_as_macro_enabled(tmp_path, sandbox_env):
    import zipfile

    src = tmp_path / "makro.xlsb"
    with zipfile.ZipFile(CORPUS / "xlsb-modtagere.xlsb") as original, zipfile.ZipFile(src, "w") as out:
        for info in original.infolist():
            out.writestr(info, original.read(info))
        out.writestr("xl/vbaProject.bin", b"\xd0\xcf\x11\xe0" + bytes(508))
    run = flexybulk("issue", src, "--yes")
    assert run.code == 1
    assert "Error: 'makro.xlsb' is a macro-enabled workbook — save it as a plain .xlsx (Excel Workbook) and try again" in run.stderr
    assert nothing_sent(sandbox_env)


def test_retrying_the_result_sheet_keeps_the_excluded_rows_out(tmp_path, sandbox_env, monkeypatch):
    """The result sheet shows every row (none hidden): its EXCLUDED rows are still not issued on retry."""
    from flexybulk.sandbox.state import Refusal

    src = copy("sel-filtered-libreoffice.ods", tmp_path)
    state = sandbox_env.state
    real_put_customer = state.put_customer

    def refusing(customer_id, body):
        if body.get("EmailAddress") == "niels@example.com":  # row 9: FAILED, to be retried
            raise Refusal(400, "EmailAddress is blocked", "EmailAddress")
        return real_put_customer(customer_id, body)

    monkeypatch.setattr(state, "put_customer", refusing)
    assert flexybulk("issue", src, "--yes").code == 1
    assert issued(sandbox_env) == (3, 6, Decimal("1850"))
    monkeypatch.setattr(state, "put_customer", real_put_customer)
    result = tmp_path / "sel-filtered-libreoffice.result.xlsx"
    run = flexybulk("retry", result, "--yes")
    assert run.code == 0, run.output
    assert "Rows 3, 5 and 6 are marked EXCLUDED and will not be issued" not in run.stdout
    assert "Rows 3, 5, 6 and 8 are marked EXCLUDED and will not be issued (--include-hidden reads them)." in run.stdout
    assert issued(sandbox_env) == (4, 7, Decimal("2250"))  # only row 9 was added
    got = result_rows(result)
    assert [(r["Row"], r["Status"]) for r in got] == [
        (2, "ISSUED"), (3, "EXCLUDED"), (4, "ISSUED"), (5, "EXCLUDED"), (6, "EXCLUDED"), (7, "ISSUED"),
        (8, "EXCLUDED"), (9, "ISSUED")]
