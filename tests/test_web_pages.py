"""What the web page's check and result pages say, in-process: the ledger's knowledge, the page's own words,
fixed cells, numbers written back, Danish numbers (the fresh tester's findings on issue #14)."""

from __future__ import annotations

import html
import re
import time
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from flexybulk.results import TO_DO_WEB
from flexybulk.wording import page_words
from builders import refuse_customer
from webtools import write_sheet
from webviews import _copy, _digest, _issue, _state, _upload, local  # noqa: F401

DA = {"Accept-Language": "da-DK,da;q=0.9"}


def _uploads(client) -> Path:
    return Path(client.config.data_dir) / "uploads"


# -- finding 3: the department list without a department column ----------------------------------------------


def test_a_sheet_without_a_department_column_offers_the_live_departments(local, sandbox, tmp_path):
    path = tmp_path / "uden-afdeling.csv"
    path.write_text("Navn;E-mail;Gavekorttype;Beløb\nAnna;anna@example.com;Gavekort;250\n", encoding="utf-8")
    uid = _upload(local, path)
    page = local.get(f"/u/{uid}")
    assert page.status_code == 422 and "or a department for all rows under Columns on this page" in page.text
    select = re.search(r'<select name="department">(.*?)</select>', page.text, re.S).group(1)
    assert re.findall(r'<option value="([^"]*)"', select) == ["", "Aarhus", "København", "Odense", "Webshop"]
    local.post(f"/u/{uid}/settings", data={"department": "Odense"})
    page = local.get(f"/u/{uid}").text
    assert 'data-testid="rows-invalid">0<' in page and 'data-testid="money">250.00 DKK<' in page
    assert "<th scope=\"row\">Odense</th>" in page


# -- finding 4: what the ledger knows, and totals of what an issue would send ------------------------------


def test_a_file_already_issued_says_so_and_its_totals_are_what_an_issue_would_send(local, sandbox, tmp_path):
    rows = [["Anna", "anna@example.com", "Gavekort", 250, 2, "Webshop"], ["Bo", "bo@example.com", "Gavekort", 300, 1, "Aarhus"]]
    sheet = write_sheet(tmp_path / "en.xlsx", rows)
    first = _upload(local, sheet)
    batch = _issue(local, first)["batch_id"]
    again = _upload(local, sheet)  # the same file once more (the same bytes: this file's batch)
    page = local.get(f"/u/{again}").text
    known = re.findall(r'data-testid="ledger-known">([^<]*)<', page)
    assert len(known) == 1 and re.fullmatch(rf"2 rows were already issued \(batch {batch}, \d{{4}}-\d\d-\d\d\): an issue "
                                            "sends nothing for them.", known[0]), known
    assert 'data-testid="check-verdict">An issue would send nothing: every valid row is issued already.' in page
    assert 'data-testid="rows-to-send">0<' in page and 'data-testid="certificates">0<' in page
    assert 'data-testid="money">0.00 DKK<' in page and "All rows are valid" not in page
    assert "--allow-reissue" not in page
    # The result sheet given back: its input's columns only in the grid, and the same words about the ledger.
    (tmp_path / "en.result.xlsx").write_bytes(local.get(f"/u/{first}/result.xlsx").content)
    back = local.get(f"/u/{_upload(local, tmp_path / 'en.result.xlsx')}").text
    grid = back.split('<table class="grid">')[1].split("</thead>")[0]
    assert re.findall(r'<th scope="col"[^>]*>([^<]+?) <span', grid) == ["Navn", "E-mail", "Gavekorttype", "Beløb", "Antal",
                                                                        "Afdeling"]
    assert 'data-testid="money">0.00 DKK<' in back and len(re.findall(r'data-testid="ledger-known"', back)) == 1

    # A corrected copy: one row as before, one new: only the new one is counted.
    copy = _upload(local, write_sheet(tmp_path / "to.xlsx", [rows[0], ["Carl", "carl@example.com", "Julegavekort", 400, 3, "Odense"]]))
    page = local.get(f"/u/{copy}").text
    assert re.search(rf'data-testid="ledger-known">1 row was issued by an earlier batch \({batch}, [0-9-]{{10}}\): it is not '
                     'sent again.<', page)
    assert 'data-testid="check-verdict">All rows are valid. An issue would send 1 row: 3 gift certificates for ' \
           '1,200.00 DKK. Nothing has been issued yet.<' in page
    assert 'data-testid="certificates">3<' in page and 'data-testid="money">1,200.00 DKK<' in page
    assert '<th scope="row">Julegavekort</th>' in page and '<th scope="row">Gavekort</th>' not in page
    _digest(local, copy)
    confirm = local.get(f"/u/{copy}/confirm").text
    assert 'data-testid="confirm-money">1,200.00 DKK<' in confirm  # the check said what the confirmation says


# -- finding 6: the page's own words ------------------------------------------------------------------------


def test_a_web_batchs_result_sheet_speaks_of_the_web_page_not_of_commands(local, sandbox, tmp_path, monkeypatch):
    """A coordinator on the web page runs no commands: the Summary, "Needs attention" and the library's messages
    name its buttons, and the input file by the name it was uploaded under (not the server's path)."""
    refuse_customer(monkeypatch, sandbox.state, "carl@example.com", "EmailAddress: this address is blocked (sandbox test)")
    rows = [["Anna", "anna@example.com", "Gavekort", 250, 2, "Webshop"], ["Bo", "bo@@example.com", "Gavekort", 300, 1, "Aarhus"],
            ["Carl", "carl@example.com", "Gavekort", 100, 1, "Aarhus"]]
    uid = _upload(local, write_sheet(tmp_path / "en.xlsx", rows))
    local.post(f"/u/{uid}/options", data={"skip_invalid": "1"}, follow_redirects=False)
    _issue(local, uid)
    result = tmp_path / "web.result.xlsx"
    result.write_bytes(local.get(f"/u/{uid}/result.xlsx").content)
    wb = openpyxl.load_workbook(result)
    summary = {r[0]: r[1:] for r in wb["Summary"].iter_rows(values_only=True) if r and r[0]}
    assert summary["Input file"][:2] == ("en.xlsx", "uploaded on the web page")
    assert summary["PENDING"][1] == ("Not finished (interrupted, or held back). Resume or Retry on the web page's "
                                     "result page finishes it.")
    attention = list(wb["Needs attention"].iter_rows(values_only=True))
    assert [(a[0], a[1], a[3]) for a in attention[1:]] == [
        (3, "INVALID", "Correct the cells named in Details on the web page's result page, then press Retry."),
        (4, "FAILED", TO_DO_WEB["FAILED"])]
    failed = [r for r in wb["Result"].iter_rows(values_only=True) if r[0] == "Carl"][0]
    assert failed[[c.value for c in wb["Result"][1]].index("Error")] == (  # the library's words, the page's way
        "Flexybox refused the customer: EmailAddress: this address is blocked (sandbox test). Nothing was issued for this "
        "row. Correct the row on the web page's result page and press Retry.")
    words = " ".join(str(v) for ws in wb for row in ws.iter_rows(values_only=True) for v in row if v)
    assert "flexybulk retry" not in words and "/uploads/" not in words and "--" not in words


def test_an_issued_line_edited_since_is_named_on_the_confirmation(local, sandbox, tmp_path):
    """As the command line says it before anything runs: what was really issued, and that the edits are not sent."""
    rows = [["Anna", "anna@example.com", "Gavekort", 250, 2, "Webshop"], ["Bo", "bo@example.com", "Gavekort", 300, 1, "Aarhus"]]
    first = _upload(local, write_sheet(tmp_path / "en.xlsx", rows))
    _issue(local, first)
    result = tmp_path / "en.result.xlsx"
    result.write_bytes(local.get(f"/u/{first}/result.xlsx").content)
    wb = openpyxl.load_workbook(result)
    ws = wb["Result"]
    ws.cell(3, [c.value for c in ws[1]].index("Beløb") + 1).value = 999  # Bo's amount, after the issue
    wb.save(result)
    back = _upload(local, result)
    check = html.unescape(local.get(f"/u/{back}").text)  # the check page says it of the row too
    assert "(this file) as: Bo, bo@example.com, 1 × 300.00 DKK Gavekort, Aarhus. The values on its line differ and " \
           "would not be applied: an issue skips it." in check
    assert "(this file): an issue would skip it." in check  # Anna's line, unchanged
    page = local.get(f"/u/{back}/confirm").text
    for _ in range(400):
        if 'data-testid="preparing"' not in page:
            break
        time.sleep(0.05)
        page = local.get(f"/u/{back}/confirm").text
    box = page.split('data-testid="issued-edited"')[1].split("</details>")[0]
    assert "Issued, but the line was edited since (the edits are not sent): 1" in box
    assert "Row 3: Already issued in this batch as: Bo, bo@example.com, 1 × 300.00 DKK Gavekort, Aarhus." in html.unescape(box)
    assert 'data-testid="confirm-rows">0<' in page and sandbox.state.counts()["committed_orders"] == 2  # nothing more to send


@pytest.mark.parametrize("library, page", [
    ("The commit's outcome is unknown: x. It may or may not exist. Rerun (flexybulk retry on the result sheet): the same "
     "payment id is re-posted, so it cannot issue twice.",
     "The commit's outcome is unknown: x. It may or may not exist. Press Retry: the same payment id is re-posted, so it "
     "cannot issue twice."),
    ("Flexybox refused the email in E-mail (B): blocked. Nothing was issued for this row. Correct E-mail (B) in the result "
     "sheet and run flexybulk retry on it.",
     "Flexybox refused the email in E-mail (B): blocked. Nothing was issued for this row. Correct E-mail (B) below (click "
     "the cell) and press Retry."),
    ("Already issued on 2026-12-01 in batch b1 (row 2, sales order s1). Not issued again; use --allow-reissue to issue it "
     "anyway.", "Already issued on 2026-12-01 in batch b1 (row 2, sales order s1). Not issued again."),
    ("x.xlsx: The workbook has 2 possible sheets ('A', 'B') — choose one with --sheet",
     "x.xlsx: The workbook has 2 possible sheets ('A', 'B') — choose one under Columns on this page"),
    ("Name the columns as shown, or map one with --column, e.g. --column amount=\"Værdi i kr\".",
     "Name the columns as shown, or map one under Columns on this page."),
    ("the department (Afdeling/Department, or --department for all rows)",
     "the department (Afdeling/Department, or a department for all rows under Columns on this page)"),
    ("the department is missing. Fill in the department's name or id, or give one for all rows with --department.",
     "the department is missing. Fill in the department's name or id, or choose one for all rows under Columns on this "
     "page."),
    ("Not issued: the row is hidden in the sheet. Unhide it and run again, or use --include-hidden, to issue it.",
     "Not issued: the row is hidden in the sheet. Unhide it and upload the sheet again, or tick 'Issue hidden and "
     "filtered-out rows too' under Columns on this page, to issue it."),
    ("'S›ren' — read the file with --encoding cp850 (or --encoding cp1252 if 'S›ren' is right)",
     "'S›ren' — choose the text encoding cp850 under Columns on this page (or cp1252 if 'S›ren' is right)"),
    ("Another flexybulk is issuing with the ledger /home/x/ledger.sqlite3 right now (pid 4711, issue a.xlsx, since "
     "2026-12-01T10:00:00Z). Wait for it to finish, then run again: running both at once could issue the same rows twice.",
     "Another flexybulk is issuing with this page's ledger right now (issue a.xlsx, since 2026-12-01T10:00:00Z). This batch "
     "starts by itself as soon as that has finished: running both at once could issue the same rows twice."),
])
def test_the_librarys_command_line_phrases_in_the_pages_words(library, page):
    assert page_words(library) == page
    assert "--" not in page_words(library) and "flexybulk retry" not in page_words(library)
    # On a Danish page the page's controls have their Danish names.
    danish = page_words(library, "da")
    assert danish == page.replace("Retry", "Prøv igen").replace("under Columns", "under Kolonner").replace(
        "Issue hidden and filtered-out rows too", "Udsted også skjulte og bortfiltrerede rækker")


def test_pages_show_no_command_line_advice(local, sandbox, tmp_path, monkeypatch):
    wb = openpyxl.Workbook()
    for title in ("Januar", "Februar"):
        ws = wb.create_sheet(title)
        ws.append(["Navn", "E-mail", "Gavekorttype", "Beløb", "Afdeling"])
        ws.append([f"{title} Person", f"{title.lower()}@example.com", "Gavekort", 100, "Webshop"])
    del wb["Sheet"]
    wb.save(tmp_path / "to-ark.xlsx")
    page = local.get(f"/u/{_upload(local, tmp_path / 'to-ark.xlsx')}").text
    assert "choose one under Columns on this page" in page and "--sheet" not in page
    # A row Flexybox refuses: the result page says to press Retry.
    refuse_customer(monkeypatch, sandbox.state, "soeren@example.org", "EmailAddress: this address is blocked (sandbox test)")
    uid = _upload(local, _copy("kampagne.xlsx", tmp_path))
    _issue(local, uid)
    page = local.get(f"/u/{uid}/progress").text
    error = html.unescape(re.search(r'data-testid="attention-error">([^<]*)<', page).group(1))
    assert error == ("Flexybox refused the customer: EmailAddress: this address is blocked (sandbox test). Nothing was issued "
                     "for this row. Correct the row's cell below (click it) and press Retry.")


# -- findings 11 and 17: a fix shows it was taken, and the result sheet keeps numbers numbers ------------------


def test_fixed_cells_are_marked_and_written_back_as_the_reader_would_keep_them(local, sandbox, tmp_path):
    rows = [["Anna", "anna@example.com", "4,51235E+09", "Gavekort", 250, 1, "Webshop"],
            ["Bo", "bo@example.com", None, "Gavekort", "ti kroner", 1, "Webshop"],
            ["Carl", "carl@example.com", None, "Gavekort", 100, 0, "Webshop"]]
    path = tmp_path / "tal.xlsx"
    wb = openpyxl.Workbook()
    wb.active.append(["Navn", "E-mail", "Telefon", "Gavekorttype", "Beløb", "Antal", "Afdeling"])
    for row in rows:
        wb.active.append(row)
    wb.save(path)
    uid = _upload(local, path)
    for row, column, text in [(2, "Telefon", "45123456"), (3, "Beløb", "1.234,50"), (4, "Antal", "2")]:
        local.post(f"/u/{uid}/fix", data={"row": str(row), "column": column, "text": text})
    page = local.get(f"/u/{uid}").text
    assert 'data-testid="rows-invalid">0<' in page and "3 cells fixed on this page" in page
    assert re.findall(r'data-testid="fixed-cell">([^<]*)<', page) == ["fixed here · was: 4,51235E+09",
                                                                     "fixed here · was: ti kroner", "fixed here · was: 0"]
    assert _issue(local, uid)["state"] == "done"
    result = openpyxl.load_workbook(_uploads(local) / uid / "tal.result.xlsx")["Result"]
    header = [c.value for c in result[1]]
    cells = {(r, h): result.cell(r, header.index(h) + 1) for r in (2, 3, 4) for h in ("Telefon", "Beløb", "Antal")}
    assert cells[2, "Telefon"].value == "+4545123456"  # as the reader normalises it
    assert (cells[3, "Beløb"].value, cells[3, "Beløb"].data_type) == (1234.5, "n")  # the number read, not '1.234,50'
    assert (cells[4, "Antal"].value, cells[4, "Antal"].data_type) == (2, "n")
    assert (cells[2, "Beløb"].value, cells[4, "Beløb"].value) == (250, 100)  # cells not fixed are as they were
    assert sorted(c["Amount"] for c in sandbox.state.certificates) == [Decimal("100"), Decimal("100"), Decimal("250"),
                                                                       Decimal("1234.50")]


def test_a_fix_for_the_retry_is_shown_on_the_result_page(local, sandbox, tmp_path, monkeypatch):
    refuse_customer(monkeypatch, sandbox.state, "soeren@example.org", "EmailAddress: this address is blocked (sandbox test)")
    uid = _upload(local, _copy("kampagne.xlsx", tmp_path))
    _issue(local, uid)
    local.post(f"/u/{uid}/fix", data={"row": "3", "column": "Beløb", "text": "300", "retry": "1"})
    page = local.get(f"/u/{uid}/progress").text
    headers = re.findall(r'<th scope="col"[^>]*>([^<]*)</th>', page.split('class="grid attention"')[1].split("</thead>")[0])
    assert "AmountRead" not in headers and "LineTotal" not in headers and headers[:3] == ["Row", "Status", "Error"]
    assert re.search(r'data-column="Beløb" data-value="300">.*?data-testid="fixed-cell">fixed here · was: 250<', page, re.S)
    assert "1 cell fixed for the retry." in page


# -- finding 18: words, plurals and numbers ------------------------------------------------------------------------


def test_counts_plurals_and_danish_numbers(local, sandbox, tmp_path):
    rows = [[f"P {i}", f"p{i}@example.com", "Gavekort", "1.234,50" if i == 0 else 100, 1, "Webshop"] for i in range(1200)]
    uid = _upload(local, write_sheet(tmp_path / "mange.xlsx", rows))
    page = local.get(f"/u/{uid}").text
    assert 'data-testid="rows-total">1,200<' in page and 'data-testid="money">121,134.50 DKK<' in page
    da = local.get(f"/u/{uid}", headers=DA).text
    assert 'data-testid="rows-total">1.200<' in da and 'data-testid="money">121.134,50 DKK<' in da
    assert '<th scope="col" class="num">Antal gavekort</th>' in da and "<dt>Antal gavekort</dt>" in da
    assert '<option value="">Automatic (detected)</option>' in page
    one = _upload(local, write_sheet(tmp_path / "en.xlsx", [["Eva", "eva@example.com", "Gavekort", 100, 1, "Webshop"]]))
    local.post(f"/u/{one}/fix", data={"row": "2", "column": "Navn", "text": "Eva Holm"})
    assert "1 cell fixed on this page" in local.get(f"/u/{one}").text
    _digest(local, one)
    assert "Issue 1 gift certificate for 100.00 DKK</button>" in local.get(f"/u/{one}/confirm").text
    _issue(local, one)
    result = local.get(f"/u/{one}/progress").text
    assert '<h1 id="progress-title" >Result: en.xlsx</h1>' in result and "Issued: <b data-testid=\"issued-money\">100.00 DKK</b> · 1 gift certificate<" in result

