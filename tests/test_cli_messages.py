"""What a coordinator reads (issue #13's messages), as a new user meets it: exact printed texts, against the sandbox.

One test per rough edge the issue lists: rows that cannot have reached the
commit are PENDING; plurals and currencies; a repeated connection error said
once; no note about the template's own hidden list sheet; ``--quiet``; the
confirmation naming where it issues. (The refusal in the sheet's words is in
test_cli_refusals.py and test_refusals.py.)
"""

from __future__ import annotations

import shutil
import socket
from urllib.parse import urlsplit

import openpyxl
import pytest

from clirun import flexybulk
from flexybulk.sandbox import Faults
from flexybulk.settings import DEFAULT_POS_URL, Secret, Settings
from flexybulk.target import Target
from test_cli_issue import SAMPLES, assert_result_matches_sandbox, result_rows

HEADER = ["Navn", "E-mail", "Gavekorttype", "Beløb", "Antal", "Afdeling"]


def _xlsx(path, rows, *, hidden: dict[str, list] | None = None):
    """A workbook with one recipients sheet (``rows`` below ``HEADER``) and hidden sheets ``{name: first row}``."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Liste"
    ws.append(HEADER)
    for row in rows:
        ws.append(list(row))
    for name, first in (hidden or {}).items():
        extra = wb.create_sheet(name)
        extra.append(first)
        extra.sheet_state = "hidden"
    wb.save(path)
    return path


def _people(n, quantity=lambda i: 1):
    return [(f"Person {i}", f"p{i}@example.com", "Gavekort", 100, quantity(i), "Webshop") for i in range(n)]


def _closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- PENDING, not UNKNOWN, where no commit was ever sent ----------------------------------------------


def test_lost_sales_order_answers_are_pending_and_a_retry_finishes_them_with_the_same_ids(tmp_path, sandbox_env):
    src = _xlsx(tmp_path / "tre.xlsx", _people(3, quantity=lambda i: 1 + i))
    sandbox_env.faults = Faults(drop_rate=1.0, only=r"^PUT /api/v1/salesorders$")  # saved, answer lost; no commit
    run = flexybulk("issue", src, "--yes", "--max-attempts", "2")
    assert run.code == 1
    result = tmp_path / "tre.result.xlsx"
    first = result_rows(result)
    assert [r["Status"] for r in first] == ["PENDING"] * 3
    text = ("Not finished: the call to save the sales order got no clear answer: the connection closed before an answer "
            "arrived (gave up after 2 attempts). Nothing can have been issued: no commit was sent for this row. Rerun "
            "(flexybulk retry on the result sheet) to finish it with the same ids.")
    assert [r["Error"] for r in first] == [text] * 3
    assert f"  3 rows: PENDING: {text} (rows 2-4)\n" in run.stderr
    assert "Not issued: PENDING: 3." in run.stdout
    assert sandbox_env.state.counts()["certificates"] == 0

    sandbox_env.faults = Faults()
    run = flexybulk("retry", result, "--yes")
    assert run.code == 0, run.output
    assert "Issued now: 3 rows, 6 gift certificates, 600.00 DKK." in run.stdout
    again = result_rows(result)
    assert [r["Status"] for r in again] == ["ISSUED"] * 3
    ids = ("CustomerId", "SalesOrderId", "ExternalPaymentId")
    assert [[r[k] for k in ids] for r in again] == [[r[k] for k in ids] for r in first]  # the same ids
    assert sandbox_env.state.counts() == {"customers": 3, "orders": 3, "committed_orders": 3, "certificates": 6}
    assert_result_matches_sandbox(again, sandbox_env)


# -- plurals and currencies ---------------------------------------------------------------------------


def test_one_row_one_certificate_and_no_money_read_right(tmp_path, sandbox_env):
    src = _xlsx(tmp_path / "en.xlsx", [("Anna Hansen", "anna@example.com", "Gavekort", 250, 1, "Webshop")])
    run = flexybulk("issue", src, "--yes")
    assert run.code == 0, run.output
    lines = run.stdout.splitlines()
    assert "Read en.xlsx, sheet 'Liste' (XLSX): 1 row." in lines
    assert "To issue now: 1 row, 1 gift certificate, 250.00 DKK." in lines
    assert "Issued now: 1 row, 1 gift certificate, 250.00 DKK." in lines
    status = flexybulk("status", tmp_path / "en.result.xlsx")
    assert "Issued: 1 gift certificate, 250.00 DKK." in status.stdout.splitlines()
    again = flexybulk("issue", src, "--yes")
    assert "Already issued in this batch: 1 row (skipped)." in again.stdout.splitlines()

    bad = _xlsx(tmp_path / "forkert.xlsx", [("Bo", "bo@@example.com", "Gavekort", 250, 1, "Webshop")])
    run = flexybulk("validate", bad)
    assert "Valid rows: 0 of 1 · gift certificates: 0 · total: 0.00 DKK" in run.stdout.splitlines()
    assert "1 invalid row, 1 problem:" in run.stderr.splitlines()
    run = flexybulk("issue", bad, "--yes")
    assert "Nothing was issued: 1 row is invalid. Correct it, or issue the valid rows with --skip-invalid." in run.stderr


# -- a repeated connection error, said once -----------------------------------------------------------


def test_a_connection_error_met_by_seven_rows_is_printed_once_with_its_rows(tmp_path, sandbox_env, monkeypatch):
    src = _xlsx(tmp_path / "syv.xlsx", _people(7))
    host = f"127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("FLEXYBOX_CRM_URL", f"http://{host}")  # the catalogue comes; the customers cannot be saved
    run = flexybulk("issue", src, "--yes", "--workers", "8", "--max-attempts", "1")
    assert run.code == 1
    text = (f"Not sent: could not connect to {host} to save the customer. Nothing was issued for this row; rerun "
            "(flexybulk retry on the result sheet) when Flexybox can be reached.")
    assert run.stderr == (f"  7 rows: PENDING: {text} (rows 2-8)\n"
                          f"To finish: flexybulk retry {tmp_path / 'syv.result.xlsx'}\n")
    status = flexybulk("status", tmp_path / "syv.result.xlsx")
    assert status.stdout.splitlines()[-3:] == ["Needing attention: 7 rows", f"  7 rows: PENDING: {text} (rows 2-8)",
                                               f"To finish: flexybulk retry {tmp_path / 'syv.result.xlsx'}"]
    assert sandbox_env.state.counts()["customers"] == 0


# -- the template's own hidden list sheet -------------------------------------------------------------


def test_the_templates_own_list_sheet_is_not_reported_but_a_persons_hidden_sheet_is(tmp_path, sandbox_env):
    for lang, name in (("da", "modtagere.xlsx"), ("en", "recipients.xlsx")):
        out = tmp_path / name
        assert flexybulk("template", out, "--lang", lang).code == 0
        wb = openpyxl.load_workbook(out)
        wb.worksheets[0].append(["Anna Hansen", "anna@example.com", "Gavekort", 250, 1, "Webshop"])
        wb.save(out)
        run = flexybulk("validate", out)
        assert run.code == 0, run.output
        assert "Hidden sheets" not in run.output
    # A hidden sheet of the person's own is still named, even one called Lister that holds something else.
    src = _xlsx(tmp_path / "egen.xlsx", _people(1), hidden={"Gammel": ["Navn"], "Lister": ["Priser", "2023"]})
    run = flexybulk("validate", src)
    assert "  Hidden sheets were ignored: Gammel, Lister" in run.stdout.splitlines()


# -- --quiet --------------------------------------------------------------------------------------------


def test_quiet_prints_only_the_problems_and_the_final_line(tmp_path, sandbox_env):
    src = shutil.copy(SAMPLES / "kampagne.xlsx", tmp_path / "kampagne.xlsx")
    run = flexybulk("validate", src, "-q")
    assert run.code == 0
    assert (run.stdout, run.stderr) == (
        f"All rows are valid. Nothing was issued (this was a dry run). Validation sheet: {tmp_path / 'kampagne.validation.xlsx'}\n", "")
    run = flexybulk("issue", src, "--yes", "--quiet")
    assert run.code == 0
    assert (run.stdout, run.stderr) == (
        f"Issued now: 6 rows, 18 gift certificates, 10,399.85 DKK. Result sheet: {tmp_path / 'kampagne.result.xlsx'}\n", "")

    src = _xlsx(tmp_path / "to.xlsx", [("Anna", "anna@example.com", "Gavekort", 100, 1, "Webshop"),
                                       ("Bo", "bo@@example.com", "Gavekort", 100, 1, "Webshop")])
    run = flexybulk("issue", src, "--yes", "-q")
    assert run.code == 1 and run.stdout == ""
    assert run.stderr.splitlines() == [
        "1 invalid row, 1 problem:",
        "  to.xlsx, sheet 'Liste', row 3, column 'E-mail' (B): 'bo@@example.com' has more than one @ — write one "
        "email address per row",
        f"Nothing was issued: 1 row is invalid. Correct it, or issue the valid rows with --skip-invalid. Validation sheet: "
        f"{tmp_path / 'to.validation.xlsx'}",
    ]
    sandbox_env.faults = Faults(refuse_rate=1.0, only=r"^POST .*/commit$")
    run = flexybulk("issue", src, "--yes", "-q", "--skip-invalid")
    assert run.code == 1
    assert run.stdout == f"Issued now: nothing. Result sheet: {tmp_path / 'to.result.xlsx'}\n"
    # The row --skip-invalid leaves out is still named (a fresh user's find: -q printed nothing of it).
    assert run.stderr.splitlines()[:2] == [
        "1 invalid row, 1 problem:",
        "  to.xlsx, sheet 'Liste', row 3, column 'E-mail' (B): 'bo@@example.com' has more than one @ — write one "
        "email address per row"]
    assert run.stderr.splitlines()[-2:] == [
        "  row 2: FAILED: Flexybox refused the payment type Mastercard of the commit: The external payment type is not "
        "accepted for this sales order; nothing was committed (a refusal injected by the sandbox's refuse_rate). Nothing "
        "was issued for this row. Nothing in the row needs correcting: run flexybulk retry on the result sheet with "
        "another payment type (--payment-type).",
        f"To finish: flexybulk retry {tmp_path / 'to.result.xlsx'}",
    ]


# -- the confirmation names the target ----------------------------------------------------------------


def test_the_confirmation_names_the_sandbox_or_the_flexybox_it_issues_on(tmp_path, sandbox_env):
    src = shutil.copy(SAMPLES / "kampagne.xlsx", tmp_path / "kampagne.xlsx")
    run = flexybulk("issue", src, "--sandbox", input="n\n")
    assert run.code == 1
    assert "Issue 18 gift certificates worth 10,399.85 DKK for 6 rows on the SANDBOX? [y/N]: " in run.stderr
    run = flexybulk("issue", src, input="n\n")
    assert (f"Issue 18 gift certificates worth 10,399.85 DKK for 6 rows on Flexybox at "
            f"{urlsplit(sandbox_env.url).netloc}? [y/N]: ") in run.stderr
    assert sandbox_env.state.counts()["customers"] == 0
    # The real Flexybox by its host, as the question names it (no call is made here).
    real = Target(Settings(token=Secret("x" * 20), pos_url=DEFAULT_POS_URL), "pos", ledger_default=tmp_path / "l")
    assert real.label == "Flexybox at pos.flexybox.com"


@pytest.mark.parametrize("numbers, shown", [
    ([2, 3, 4, 5, 6, 7, 8], "2-8"), ([5], "5"), ([2, 4, 5, 9, 10, 11, 20], "2, 4-5, 9-11, 20"),
    (list(range(2, 200, 2)), ", ".join(str(n) for n in range(2, 42, 2)) + ", and 79 more rows"),
])
def test_row_ranges(numbers, shown):
    from flexybulk.batches import row_ranges

    assert row_ranges(numbers) == shown
