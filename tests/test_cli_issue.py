"""``flexybulk issue`` / ``retry`` / ``status`` end to end against the sandbox on 127.0.0.1."""

from __future__ import annotations

import _thread
import shutil
import subprocess
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import openpyxl
import pytest

from builders import refuse_customer
from clirun import flexybulk
from conftest import REPO, shared_input
from flexybulk.model import RowStatus
from flexybulk.sandbox import Faults
from flexybulk.sandbox.state import Refusal

SAMPLES = REPO / "samples"


def result_rows(path: Path) -> list[dict]:
    wb = openpyxl.load_workbook(path)
    ws = wb["Result"]
    rows = [r for r in ws.iter_rows(values_only=True)]
    header_index = next(i for i, r in enumerate(rows) if r and "Status" in r)
    headers = rows[header_index]
    return [dict(zip(headers, r)) for r in rows[header_index + 1:] if any(v is not None for v in r)]


def assert_result_matches_sandbox(rows: list[dict], sandbox) -> None:
    """Every ISSUED row's ids and certificate numbers are what the sandbox recorded."""
    orders = sandbox.state.orders
    certs = sandbox.state.certificates
    for row in rows:
        if row["Status"] != "ISSUED":
            continue
        order = orders[row["SalesOrderId"].lower()]
        assert order["Status"] == "Committed"
        assert order["CustomerId"] == row["CustomerId"]
        assert [p["ExternalPayment"]["Id"] for p in order["Payments"]] == [row["ExternalPaymentId"]]
        mine = sorted(c["Number"] for c in certs if c["SalesOrderId"] == order["Id"])
        assert sorted(row["GiftCertificateNumbers"].split(", ")) == mine
        assert len(mine) == int(row["Antal"])


@pytest.mark.parametrize("name, rows, certificates, total", [
    ("kampagne-libreoffice.xlsx", 25, 54, Decimal("31500.00")),
    ("firmagaver-da.csv", 8, 34, Decimal("67249.40")),
])
def test_issue_shared_inputs(tmp_path, sandbox_env, name, rows, certificates, total):
    src = shutil.copy(shared_input(name), tmp_path / name)
    run = flexybulk("issue", src, "--yes")
    assert run.code == 0, run.output
    assert f"Issued now: {rows} rows, {certificates} gift certificates, {total:,.2f} DKK." in run.stdout
    counts = sandbox_env.state.counts()
    assert counts["committed_orders"] == rows
    assert counts["certificates"] == certificates
    assert sum(c["Amount"] for c in sandbox_env.state.certificates) == total
    result = tmp_path / (Path(name).stem + ".result.xlsx")
    got = result_rows(result)
    assert [r["Status"] for r in got] == ["ISSUED"] * rows
    assert [r["Row"] for r in got] == list(range(2, rows + 2))
    assert_result_matches_sandbox(got, sandbox_env)

    again = flexybulk("issue", src, "--yes")
    assert again.code == 0, again.output
    assert "Issued now: nothing." in again.stdout
    assert f"Already issued in this batch: {rows} rows (skipped)." in again.stdout
    assert sandbox_env.state.counts()["certificates"] == certificates  # nothing twice


def test_batch_issue_py_behaves_like_flexybulk(tmp_path, sandbox_env):
    src = shutil.copy(SAMPLES / "fejl.xlsx", tmp_path / "fejl.xlsx")
    script = subprocess.run([sys.executable, str(REPO / "batch_issue.py"), "validate", src, "-q"],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    inproc = flexybulk("validate", src, "-q")
    assert script.returncode == inproc.code == 1
    assert script.stdout == inproc.stdout
    assert script.stderr == inproc.stderr
    assert "row 12, column 'Telefon' (C)" in script.stderr


def test_no_token_exits_2_naming_the_variable(tmp_path):
    run = flexybulk("issue", SAMPLES / "kampagne.xlsx", "--yes")
    assert run.code == 2
    assert "FLEXYBOX_TOKEN" in run.stderr and "--sandbox" in run.stderr
    assert "Traceback" not in run.output


def test_plain_http_url_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("FLEXYBOX_TOKEN", "t0ken-value")
    run = flexybulk("validate", SAMPLES / "kampagne.xlsx", "--pos-url", "http://pos.example.com")
    assert run.code == 2
    assert "plain http" in run.stderr
    assert "t0ken-value" not in run.output


def test_sandbox_flag_runs_the_quick_start(tmp_path, monkeypatch):
    monkeypatch.delenv("FLEXYBULK_LEDGER")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    src = shutil.copy(SAMPLES / "kampagne.xlsx", tmp_path / "kampagne.xlsx")
    run = flexybulk("issue", src, "--sandbox", "--yes")
    assert run.code == 0, run.output
    assert "Issued now: 6 rows, 18 gift certificates, 10,399.85 DKK." in run.stdout
    assert [r["Status"] for r in result_rows(tmp_path / "kampagne.result.xlsx")] == ["ISSUED"] * 6
    data = tmp_path / ".local" / "share" / "flexybulk"
    assert (data / "sandbox-ledger.sqlite3").exists() and not (data / "ledger.sqlite3").exists()  # kept apart from real runs
    status = flexybulk("status", tmp_path / "kampagne.result.xlsx", "--sandbox")
    assert status.code == 0 and "Rows: ISSUED: 6 (of 6)." in status.stdout
    assert "no batch" in flexybulk("status", tmp_path / "kampagne.result.xlsx").stdout  # the real ledger knows nothing


def test_invalid_rows_stop_before_any_call_unless_skip_invalid(tmp_path, sandbox_env):
    src = shutil.copy(SAMPLES / "fejl.xlsx", tmp_path / "fejl.xlsx")
    run = flexybulk("issue", src, "--yes")
    assert run.code == 1
    assert "Nothing was issued: 10 rows are invalid." in run.stderr
    assert {m for m, _, _ in sandbox_env.state.requests} == {"GET"}  # only the catalogue was read
    assert (tmp_path / "fejl.validation.xlsx").exists()

    run = flexybulk("issue", src, "--yes", "--skip-invalid")
    assert run.code == 1  # some rows were not issued
    assert "Issued now: 2 rows, 3 gift certificates, 1,250.00 DKK." in run.stdout
    assert sandbox_env.state.counts()["certificates"] == 3
    got = result_rows(tmp_path / "fejl.result.xlsx")
    assert [r["Status"] for r in got] == ["ISSUED"] + ["INVALID"] * 10 + ["ISSUED"]
    assert got[2]["Error"].startswith("E-mail (B): 'forkert@@example' has more than one @")
    assert got[2]["SalesOrderId"] is None


def test_confirmation_is_asked_and_no_means_nothing_issued(tmp_path, sandbox_env):
    src = shutil.copy(SAMPLES / "kampagne.xlsx", tmp_path / "kampagne.xlsx")
    run = flexybulk("issue", src, input="n\n")
    assert run.code == 1
    # Issue #13: the confirmation names where it issues (here a Flexybox at the sandbox's address, not --sandbox).
    assert f"Issue 18 gift certificates worth 10,399.85 DKK for 6 rows on Flexybox at {urlsplit(sandbox_env.url).netloc}?" in run.stderr
    assert "Aborted" in run.stderr
    assert sandbox_env.state.counts()["customers"] == 0
    assert "no batch" in flexybulk("status", src).stdout  # a declined run leaves no batch behind
    run = flexybulk("issue", src, input="y\n")
    assert run.code == 0, run.output
    assert sandbox_env.state.counts()["certificates"] == 18


def test_same_file_twice_issues_nothing_twice_and_reissue_needs_confirmation(tmp_path, sandbox_env):
    src = shutil.copy(SAMPLES / "kampagne.xlsx", tmp_path / "kampagne.xlsx")
    assert flexybulk("issue", src, "--yes").code == 0
    again = flexybulk("issue", src, "--yes")  # the same file: the same batch, all done
    assert "Already issued in this batch: 6 rows (skipped)." in again.stdout
    # A re-saved copy (other bytes, same rows) is a new batch: its rows match the earlier issues.
    copy = tmp_path / "kampagne-kopi.xlsx"
    wb = openpyxl.load_workbook(src)
    wb.properties.title = "kopi"
    wb.save(copy)
    run = flexybulk("issue", copy, "--yes")
    assert run.code == 0, run.output
    assert "Issued by an earlier batch: 6 rows (skipped)." in run.stdout
    assert sandbox_env.state.counts()["certificates"] == 18
    # --allow-reissue asks even with --yes; "no" issues nothing.
    run = flexybulk("issue", copy, "--yes", "--allow-reissue", input="n\n")
    assert run.code == 1
    assert "6 rows were already issued by an earlier batch. Issue them AGAIN?" in run.stderr
    assert sandbox_env.state.counts()["certificates"] == 18
    run = flexybulk("issue", copy, "--yes", "--allow-reissue", input="y\n")
    assert run.code == 0, run.output
    assert sandbox_env.state.counts()["certificates"] == 36


def _issue_with_lars_refused(tmp_path, sandbox_env, monkeypatch) -> Path:
    """The kampagne sample issued with Lars's address refused by the vendor (sheet row 5 FAILED, the other five
    ISSUED); returns the result sheet."""
    src = shutil.copy(SAMPLES / "kampagne.xlsx", tmp_path / "kampagne.xlsx")
    # The vendor refuses this address (say, a blocked domain) although its syntax is fine.
    refuse_customer(monkeypatch, sandbox_env.state, "lars@example.com", "EmailAddress is blocked", "EmailAddress")
    assert flexybulk("issue", src, "--yes").code == 1
    return tmp_path / "kampagne.result.xlsx"


def test_retry_reissues_a_corrected_failed_row_and_never_an_issued_one(tmp_path, sandbox_env, monkeypatch):
    state = sandbox_env.state
    result = _issue_with_lars_refused(tmp_path, sandbox_env, monkeypatch)
    got = result_rows(result)
    assert [r["Status"] for r in got] == ["ISSUED", "ISSUED", "ISSUED", "FAILED", "ISSUED", "ISSUED"]
    assert "EmailAddress is blocked" in got[3]["Error"]
    before = Counter(c["SalesOrderId"] for c in state.certificates)
    assert sum(before.values()) == 18 - 3

    # The user fixes the failed row's email, and also edits an ISSUED row (which must not be re-sent).
    wb = openpyxl.load_workbook(result)
    ws = wb["Result"]
    ws["B5"] = "lars.ny@example.com"
    ws["I2"] = 9999
    wb.save(result)
    run = flexybulk("retry", result, "--yes")
    assert run.code == 0, run.output
    assert "Issued now: 1 row, 3 gift certificates, 599.85 DKK." in run.stdout
    after = Counter(c["SalesOrderId"] for c in state.certificates)
    assert sum(after.values()) == 18
    assert {k: v for k, v in after.items() if k in before} == before  # the issued rows were not touched
    got = result_rows(result)
    assert [r["Status"] for r in got] == ["ISSUED"] * 6
    assert got[3]["E-mail"] == "lars.ny@example.com"
    assert got[3]["SalesOrderId"] == result_rows(result)[3]["SalesOrderId"]
    assert_result_matches_sandbox([got[3]], sandbox_env)
    customer = state.customers[got[3]["CustomerId"]]
    assert customer["EmailAddress"] == "lars.ny@example.com"

    status = flexybulk("status", result)
    assert status.code == 0
    assert "Rows: ISSUED: 6 (of 6)." in status.stdout
    assert "Issued: 18 gift certificates, 10,399.85 DKK." in status.stdout


def test_unknown_commit_outcome_is_reported_and_settled_by_retry(tmp_path, sandbox_env):
    src = shutil.copy(SAMPLES / "kampagne.xlsx", tmp_path / "kampagne.xlsx")
    sandbox_env.faults = Faults(drop_rate=1.0, only=r"^POST .*/commit$")
    run = flexybulk("issue", src, "--yes", "--max-attempts", "2")
    assert run.code == 1
    got = result_rows(tmp_path / "kampagne.result.xlsx")
    assert [r["Status"] for r in got] == ["UNKNOWN"] * 6
    assert "cannot issue twice" in got[0]["Error"]
    assert sandbox_env.state.counts()["certificates"] == 18  # the commits really happened
    status = flexybulk("status", tmp_path / "kampagne.result.xlsx")
    assert status.code == 1 and "Needing attention: 6 rows" in status.stdout
    sandbox_env.faults = Faults()
    run = flexybulk("retry", tmp_path / "kampagne.result.xlsx", "--yes")
    assert run.code == 0, run.output
    assert sandbox_env.state.counts()["certificates"] == 18
    got = result_rows(tmp_path / "kampagne.result.xlsx")
    assert [r["Status"] for r in got] == ["ISSUED"] * 6
    assert_result_matches_sandbox(got, sandbox_env)


def test_ctrl_c_finishes_calls_in_flight_and_leaves_pending_rows(tmp_path, sandbox_env, monkeypatch):
    from flexybulk import issue as issue_module

    rows = ["Navn;E-mail;Gavekorttype;Beløb;Antal;Afdeling"] + [f"P {i};p{i}@example.com;Gavekort;100;1;Webshop" for i in range(40)]
    src = tmp_path / "mange.csv"
    src.write_text("\n".join(rows) + "\n", encoding="utf-8")
    sandbox_env.faults = Faults(latency=0.01)
    done = Counter()
    real = issue_module.BatchRunner._issue_row

    def counting(self, rec):
        status = real(self, rec)
        done[status] += 1
        if done[RowStatus.ISSUED] == 5:
            _thread.interrupt_main()  # what Ctrl-C does
        return status

    monkeypatch.setattr(issue_module.BatchRunner, "_issue_row", counting)
    run = flexybulk("issue", src, "--yes", "--workers", "2")
    assert run.code == 130
    assert "Interrupted" in run.stderr and "retry" in run.stderr
    got = result_rows(tmp_path / "mange.result.xlsx")
    statuses = Counter(r["Status"] for r in got)
    assert statuses["ISSUED"] >= 5 and statuses["PENDING"] >= 20
    assert set(statuses) == {"ISSUED", "PENDING"}  # calls in flight finished: nothing half-done
    assert sandbox_env.state.counts()["certificates"] == statuses["ISSUED"]
    monkeypatch.setattr(issue_module.BatchRunner, "_issue_row", real)
    run = flexybulk("retry", tmp_path / "mange.result.xlsx", "--yes")
    assert run.code == 0, run.output
    assert sandbox_env.state.counts()["certificates"] == 40


def _edit_result(path: Path, edit) -> None:
    """Open a result sheet as a user would (openpyxl), let ``edit(ws, col)`` change it, save it."""
    wb = openpyxl.load_workbook(path)
    ws = wb["Result"]
    col = {cell.value: cell.column_letter for cell in ws[1]}
    edit(ws, col)
    wb.save(path)


def _issue_with_unfinished_rows(tmp_path, sandbox_env):
    """The kampagne sample with rows 2-4 PENDING at the customer step (nothing committed) and 5-7 ISSUED.

    Their customer PUTs were answered 503 (maybe saved, maybe not); no commit was sent, so issue #13 makes
    them PENDING, not UNKNOWN.
    """
    src = shutil.copy(SAMPLES / "kampagne.xlsx", tmp_path / "kampagne.xlsx")
    state = sandbox_env.state
    real = state.put_customer
    lost = {"mette@example.com", "soeren@example.org", "aase@example.net"}

    def refusing(customer_id, body):
        if body.get("EmailAddress") in lost:
            raise Refusal(503, "busy")
        return real(customer_id, body)

    sandbox_env.state.put_customer = refusing
    try:
        run = flexybulk("issue", src, "--yes", "--max-attempts", "1")
    finally:
        del sandbox_env.state.put_customer
    assert run.code == 1
    result = tmp_path / "kampagne.result.xlsx"
    assert [r["Status"] for r in result_rows(result)] == ["PENDING"] * 3 + ["ISSUED"] * 3
    return result


def test_a_swapped_row_number_is_refused_and_nothing_is_sent(tmp_path, sandbox_env):
    result = _issue_with_unfinished_rows(tmp_path, sandbox_env)
    before = sandbox_env.state.counts()

    def swap(ws, col):
        r = col["Row"]
        ws[f"{r}2"], ws[f"{r}6"] = 6, 2  # the PENDING line of row 2 and the ISSUED line of row 6 trade places

    _edit_result(result, swap)
    run = flexybulk("retry", result, "--yes")
    assert run.code == 1
    assert "kampagne.result.xlsx, sheet 'Result', row 2: column 'Row' says input row 6, but its SalesOrderId" in run.stderr
    assert "belongs to input row 2" in run.stderr
    assert sandbox_env.state.counts() == before


def test_an_edited_issued_line_says_what_was_really_issued(tmp_path, sandbox_env):
    result = _issue_with_unfinished_rows(tmp_path, sandbox_env)
    _edit_result(result, lambda ws, col: ws.__setitem__(f"{col['Beløb']}5", 999))
    run = flexybulk("retry", result, "--yes")
    assert run.code == 0, run.output
    # Said before anything runs, not only in the sheet (a fresh user's find: the console gave the edited total).
    assert ("  row 5: Already issued in this batch as: Lars Eksempel, lars@example.com, 3 × 199.95 DKK Gavekort, "
            "Webshop. The values on its line differ and are not applied: an issued row is never sent again.\n") in run.stdout
    assert run.stdout.count("Already issued in this batch as:") == 1
    got = result_rows(result)
    assert got[3]["Status"] == "ISSUED" and got[3]["Beløb"] == 999
    assert got[3]["Error"].startswith("Issued as: Lars Eksempel, lars@example.com, 3 × 199.95 DKK Gavekort, Webshop.")
    status = flexybulk("status", result)
    assert "Issued: 18 gift certificates, 10,399.85 DKK." in status.stdout  # the ledger keeps the real amount


def test_a_deleted_unfinished_line_is_reported_and_exits_1(tmp_path, sandbox_env):
    result = _issue_with_unfinished_rows(tmp_path, sandbox_env)
    _edit_result(result, lambda ws, col: ws.delete_rows(3))  # the PENDING line of input row 3
    run = flexybulk("retry", result, "--yes")
    assert run.code == 1
    assert "input row 3: PENDING in the ledger, but not in this sheet, so it was not retried." in run.stderr
    assert "To finish it, run flexybulk issue " in run.stderr and "kampagne.xlsx (correct the row there" in run.stderr
    assert "row 3: PENDING" not in run.stderr.replace("input row 3: PENDING", "")  # said once, not twice
    assert "To finish: flexybulk retry" not in run.stderr  # the sheet just written lacks the row too
    assert sandbox_env.state.counts()["committed_orders"] == 5
    # What the message says works: the input file finishes the row with its recorded ids, nothing twice.
    again = flexybulk("issue", tmp_path / "kampagne.xlsx", "--yes")
    assert again.code == 0, again.output
    assert "Issued now: 1 row, 2 gift certificates, 500.00 DKK." in again.stdout
    assert sandbox_env.state.counts()["committed_orders"] == 6


def test_a_line_added_to_a_result_sheet_is_refused(tmp_path, sandbox_env):
    result = _issue_with_unfinished_rows(tmp_path, sandbox_env)
    _edit_result(result, lambda ws, col: ws.append(["Ny Person", "ny@example.com"]))
    run = flexybulk("retry", result, "--yes")
    assert run.code == 1
    assert "row 8: this line has no Row and no BatchId" in run.stderr
    assert sandbox_env.state.counts()["committed_orders"] == 3


def test_a_csv_result_sheet_of_any_name_is_retried_and_updated_in_place(tmp_path, sandbox_env):
    src = shutil.copy(SAMPLES / "firmagaver.csv", tmp_path / "firmagaver.csv")
    out = tmp_path / "svar.csv"
    assert flexybulk("issue", src, "--yes", "-o", out).code == 0
    first = out.read_text(encoding="utf-8-sig")
    assert first.splitlines()[2].startswith("Lærke Ødegaard;laerke@example.org;Firmagavekort;1.250,50;1;Webshop;DK;ISSUED;")
    run = flexybulk("retry", out, "--yes")
    assert run.code == 0, run.output
    assert f"Result sheet: {out}" in run.stdout and not list(tmp_path.glob("svar.result.*"))
    assert [l.split(";")[7] for l in out.read_text(encoding="utf-8-sig").splitlines()[1:]] == ["ISSUED"] * 4
    assert sandbox_env.state.counts()["certificates"] == 8


def test_a_retry_of_a_result_sheet_with_issued_lines_deleted_still_counts_them(tmp_path, sandbox_env, monkeypatch):
    """A fresh user's find: the retry's Summary and its last line counted only the lines left on the sheet."""
    state = sandbox_env.state
    result = _issue_with_lars_refused(tmp_path, sandbox_env, monkeypatch)
    wb = openpyxl.load_workbook(result)
    ws = wb["Result"]
    assert [ws.cell(r, 1).value for r in (2, 3)] and ws["B5"].value == "lars@example.com"
    ws.delete_rows(2, 2)  # two ISSUED lines (sheet rows 2 and 3) gone; the FAILED line moves up to row 3
    ws["B3"] = "lars.ny@example.com"
    wb.save(result)
    run = flexybulk("retry", result, "--yes")
    assert run.code == 0, run.output
    assert "Issued now: 1 row, 3 gift certificates, 599.85 DKK." in run.stdout
    assert "Issued in this batch in all: 6 rows, 18 gift certificates, 10,399.85 DKK." in run.stdout
    money = sum(Decimal(str(c["Amount"])) for c in state.certificates)
    assert (len(state.certificates), money) == (18, Decimal("10399.85"))
    summary = openpyxl.load_workbook(result)["Summary"]
    lines = {r[0].value: [c.value for c in r[1:]] for r in summary.iter_rows() if r[0].value}
    assert lines["Issued rows not on this sheet"][0] == 2
    assert lines["Issued rows not on this sheet"][1].startswith("rows 2-3 of the batch were issued")
    assert lines["ISSUED"][0] == 6
    assert lines["DKK"][:3] == [6, 18, 10399.85]


def test_a_sorted_result_sheets_needs_attention_says_on_which_line_each_row_now_stands(tmp_path, sandbox_env,
                                                                                      monkeypatch):
    """A fresh user's find: after sorting, 'Needs attention' gave the batch's row numbers only, which were other
    people's lines in the sorted Result sheet."""
    state = sandbox_env.state
    result = _issue_with_lars_refused(tmp_path, sandbox_env, monkeypatch)
    wb = openpyxl.load_workbook(result)
    ws = wb["Result"]
    lines = [[c.value for c in r] for r in ws.iter_rows(min_row=2)]
    lines.reverse()  # sorted the other way round, as a sort on the name column might
    for i, values in enumerate(lines, start=2):
        for j, v in enumerate(values, start=1):
            ws.cell(i, j).value = v  # ws.cell(i, j, None) would leave the old value
    wb.save(result)
    assert flexybulk("retry", result, "--yes").code == 1  # lars is still refused
    book = openpyxl.load_workbook(result)
    attention = [[c.value for c in r] for r in book["Needs attention"].iter_rows()]
    assert attention[0][:3] == ["Row", "Line", "Status"], attention
    assert [a[:3] for a in attention[1:]] == [[5, 4, "FAILED"]]  # input row 5, now on line 4 of 7
    assert book["Result"]["B4"].value == "lars@example.com" and book["Result"].cell(4, 1).value == lines[2][0]


def test_problems_on_a_sorted_result_sheet_name_the_line_and_the_input_row(tmp_path, sandbox_env):
    """A fresh user's find: on a result sheet with lines swapped and one deleted, a problem found while reading a
    cell named the sheet's line and one found by the checks named the Row column: two rows called 'row 9'."""
    src = Path(shutil.copy(SAMPLES / "fejl.xlsx", tmp_path / "fejl.xlsx"))
    assert flexybulk("issue", src, "--yes", "--skip-invalid").code == 1
    result = tmp_path / "fejl.result.xlsx"
    wb = openpyxl.load_workbook(result)
    ws = wb["Result"]
    lines = [[c.value for c in r] for r in ws.iter_rows(min_row=2)]
    lines[0], lines[11] = lines[11], lines[0]  # the first and last lines swapped
    del lines[3]  # input row 5 deleted
    ws.delete_rows(2, ws.max_row)
    for values in lines:
        ws.append(values)
    wb.save(result)
    run = flexybulk("retry", result, "--yes")
    assert run.code == 1
    where = "fejl.result.xlsx, sheet 'Result', "
    said = [line.strip() for line in run.output.splitlines() if line.strip().startswith(where)]
    assert [s[len(where):].split(":")[0] for s in said] == [
        "row 3, column 'Navn' (A)", "row 4, column 'E-mail' (B)", "row 5 (input row 6), column 'Afdeling' (H)",
        "row 6 (input row 7), column 'Beløb' (I)", "row 7 (input row 8), column 'Beløb' (I)",
        "row 8 (input row 9), column 'Antal' (J)", "row 9 (input row 10), column 'Antal' (J)",
        "row 10 (input row 11), column 'Beløb' (I)", "row 11 (input row 12), column 'Telefon' (C)"]
    assert "'2,5' is not a whole number" in said[6] and "0 is not a positive whole number" in said[5]


def test_an_edited_skipped_line_is_not_issued_from_its_result_sheet(tmp_path, sandbox_env):
    """A fresh user's find: a line SKIPPED as issued by an earlier batch, its amount then edited on the result
    sheet, became a row to issue (only the near-duplicate question stopped a second card)."""
    state = sandbox_env.state
    first = Path(shutil.copy(SAMPLES / "kampagne.xlsx", tmp_path / "kampagne.xlsx"))
    assert flexybulk("issue", first, "--yes").code == 0
    wb = openpyxl.load_workbook(first)
    wb.active.append(["Ny Modtager", "ny@example.com", None, None, None, None, "Gavekort", "Webshop", 100, 1])
    second = tmp_path / "kampagne2.xlsx"
    wb.save(second)
    run = flexybulk("issue", second, "--yes")
    assert run.code == 0 and "Issued by an earlier batch: 6 rows (skipped)" in run.output
    before = state.counts()
    result = tmp_path / "kampagne2.result.xlsx"
    book = openpyxl.load_workbook(result)
    ws = book["Result"]
    header = [c.value for c in ws[1]]
    assert ws.cell(2, header.index("Status") + 1).value == "SKIPPED"
    ws.cell(2, header.index("Beløb") + 1).value = 9999  # Mette's 500 edited
    book.save(result)
    run = flexybulk("retry", result, "--yes")
    assert state.counts() == before  # nothing sent
    assert run.code == 0, run.output
    assert ("row 2: Issued by an earlier batch as: Mette Frederiksen-Test, mette@example.com, 1 × 500.00 DKK "
            "Julegavekort, København, so this line was skipped.") in run.output
    again = openpyxl.load_workbook(result)["Result"]
    assert again.cell(2, header.index("Status") + 1).value == "SKIPPED"
    assert "are not applied" in again.cell(2, header.index("Error") + 1).value


def test_status_names_the_command_that_finishes_the_batch(tmp_path, sandbox_env, monkeypatch):
    """A fresh user's find: after kill -9 no result sheet exists, and status said only "a rerun settles it"."""
    result = _issue_with_lars_refused(tmp_path, sandbox_env, monkeypatch)
    src = tmp_path / "kampagne.xlsx"
    run = flexybulk("status", src)
    assert run.code == 1 and f"To finish: flexybulk retry {result}" in run.output
    result.unlink()  # as after kill -9: the ledger has the batch, no result sheet was written
    run = flexybulk("status", src)
    assert run.code == 1 and f"To finish: flexybulk issue {src}" in run.output
    assert flexybulk("issue", src, "--yes").code == 1  # the command said resumes the batch: Lars is still refused
    assert sandbox_env.state.counts()["committed_orders"] == 5
