"""Safe by default: the token never leaks, outputs hold no formulas, the audit trail is complete and lean."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from pathlib import Path

import openpyxl
import pytest

from clirun import flexybulk
from conftest import REPO
from flexybulk.cli import read_token
from flexybulk.errors import ConfigError
from flexybulk.sandbox import Sandbox

SECRET = "tok-3f1c9a7e-very-secret-value"


@pytest.fixture
def secret_sandbox(monkeypatch):
    """A sandbox that accepts only SECRET, with the environment pointing at it."""
    with Sandbox(token=SECRET, port=0) as sb:
        monkeypatch.setenv("FLEXYBOX_TOKEN", SECRET)
        for var in ("FLEXYBOX_CRM_URL", "FLEXYBOX_POS_URL", "FLEXYBOX_API_URL"):
            monkeypatch.setenv(var, sb.url)
        yield sb


def _all_bytes_under(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_the_token_appears_nowhere_the_tool_writes(tmp_path, secret_sandbox, isolated_env):
    src = shutil.copy(REPO / "samples" / "fejl.xlsx", tmp_path / "fejl.xlsx")
    runs = [
        flexybulk("validate", src),
        flexybulk("issue", src, "--yes", "--skip-invalid", "--debug"),
        flexybulk("status", tmp_path / "fejl.result.xlsx"),
        flexybulk("issue", src, "--yes", "--token", "wrong-token-value", "--debug"),  # refused: a traceback in --debug
        flexybulk("issue", src, "--yes", "--debug", "--ledger", str(tmp_path / "fejl.xlsx")),  # not a ledger
    ]
    assert [r.code for r in runs] == [1, 1, 1, 2, 2]
    assert "Traceback" in runs[4].stderr  # --debug shows one...
    for run in runs:
        assert SECRET not in run.output  # ...redacted
    assert "wrong-token-value" not in runs[3].output
    assert "visible to other users" in runs[3].stderr
    files = _all_bytes_under(tmp_path) | _all_bytes_under(isolated_env.parent)
    assert any(p.suffix == ".jsonl" for p in files), "the audit log was written"
    assert any(p.name == "fejl.result.xlsx" for p in files)
    for path, data in files.items():
        assert SECRET.encode() not in data, f"the token leaked into {path}"


def test_debug_traceback_redacts_the_token(tmp_path, secret_sandbox):
    # A message that would quote the token (a URL holding it) and a --debug traceback: both redacted.
    run = flexybulk("validate", REPO / "samples" / "kampagne.xlsx", "--debug", "--pos-url", f"https://pos.example.com/?t={SECRET}")
    assert run.code == 2
    assert "Traceback" in run.stderr and "must not have a query" in run.stderr
    assert SECRET not in run.output and "t=***" in run.stderr


def test_result_sheet_from_hostile_values_contains_no_formula(tmp_path, sandbox_env):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Navn", "E-mail", "Gavekorttype", "Beløb", "Antal", "Afdeling", "Note", "Telefon"])
    hostile = ['=HYPERLINK("http://example.com","Klik")', "+SUM(1,2)", "-2+3", "@SUM(A1)", "\t=1+1", "\r=1+1"]
    for i, text in enumerate(hostile):
        ws.append([f"Person {i}", f"p{i}@example.com", "Gavekort", 100, 1, "Webshop", text, "+4512345678"])
    for row in ws.iter_rows(min_row=2, min_col=7, max_col=7):
        for cell in row:
            cell.data_type = "s"  # stored as text in the input, as a careful program would
    src = tmp_path / "farlig.xlsx"
    wb.save(src)
    run = flexybulk("issue", src, "--yes")
    assert run.code == 0, run.output
    for out in (tmp_path / "farlig.result.xlsx",):
        book = openpyxl.load_workbook(out)
        for sheet in book.worksheets:
            for row in sheet.iter_rows():
                for cell in row:
                    assert cell.data_type != "f", f"{sheet.title}!{cell.coordinate} is a formula: {cell.value!r}"
        notes = [r[6] for r in book["Result"].iter_rows(min_row=2, values_only=True)]
        # The text itself is kept, only made harmless (XML turns a bare CR into LF on reading).
        assert notes == [h.replace("\r", "\n") for h in hostile]
        assert all(c.quotePrefix for c in book["Result"]["G"][1:])

    csv_out = tmp_path / "farlig.result.csv"
    run = flexybulk("retry", tmp_path / "farlig.result.xlsx", "--yes", "-o", csv_out)
    assert run.code == 0, run.output
    text = csv_out.read_text(encoding="utf-8-sig")
    assert "'=HYPERLINK" in text and "'+SUM(1,2)" in text and "'@SUM(A1)" in text
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == 7
    for row in rows:
        for field in row:
            assert not field.startswith(("=", "+", "-", "@", "\t", "\r", "\n")), row


def test_audit_log_records_who_what_and_every_call_without_personal_data(tmp_path, sandbox_env, isolated_env):
    src = shutil.copy(REPO / "samples" / "kampagne.xlsx", tmp_path / "kampagne.xlsx")
    assert flexybulk("issue", src, "--yes").code == 0
    logs = list((isolated_env.parent / "audit").glob("*.jsonl"))
    assert len(logs) == 1
    assert oct(logs[0].stat().st_mode & 0o777) == "0o600"
    lines = [json.loads(line) for line in logs[0].read_text().splitlines()]
    run, calls, end = lines[0], [l for l in lines if l["event"] == "call"], lines[-1]
    assert run["event"] == "run" and run["os_user"] and len(run["sha256"]) == 64
    assert run["options"]["payment_type"] == "Mastercard" and run["batch_id"] == logs[0].stem
    assert len(calls) == 6 * 3  # customer, sales order, commit for each of the 6 rows
    assert {c["method"] for c in calls} == {"PUT", "POST"}
    assert all(c["status"] in (200, 201) and c["ms"] >= 0 for c in calls)
    assert end == {**end, "event": "end", "issued": 6}
    text = logs[0].read_text()
    assert "@example" not in text and "Prøvesen" not in text  # ids only, no personal data


def test_token_file_must_be_private_and_command_line_token_warns(tmp_path):
    f = tmp_path / "token"
    f.write_text("  abc123\n")
    os.chmod(f, 0o644)
    token, warnings = read_token(None, str(f))
    assert token == "abc123"
    assert warnings and "chmod 600" in warnings[0]
    os.chmod(f, 0o600)
    assert read_token(None, str(f)) == ("abc123", [])
    token, warnings = read_token("xyz", None)
    assert token == "xyz" and "visible to other users" in warnings[0]
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        read_token(None, str(empty))
    with pytest.raises(ConfigError, match="Cannot read the token file"):
        read_token(None, str(tmp_path / "missing"))


def test_redaction_leaves_ordinary_words_alone(monkeypatch):
    from flexybulk import cli

    monkeypatch.setattr(cli._STATE, "secrets", ["x", "abcdefgh-secret"])
    assert cli.redact("kampagne.xlsx with abcdefgh-secret") == "kampagne.xlsx with ***"


def test_a_base_url_with_a_user_part_is_refused_without_echoing_it():
    from flexybulk.settings import check_base_url

    for url in ("https://bob:hunter2-secret@pos.example.com", "https://bob@pos.example.com", "http://:pw-only@127.0.0.1:8080"):
        with pytest.raises(ConfigError, match="must not contain a user name or password") as err:
            check_base_url("pos", url)
        assert "hunter2" not in str(err.value) and "bob" not in str(err.value) and "pw-only" not in str(err.value)
    assert check_base_url("pos", "https://pos.example.com/") == "https://pos.example.com"


def test_every_text_cell_of_an_xlsx_output_is_text_with_the_right_prefix(tmp_path):
    """Plain values go to openpyxl as values (issue #4: far faster); text that openpyxl would read as a
    formula or an error value is still written as text, and formula-like text gets the quote prefix (issue #6)."""
    from decimal import Decimal

    from flexybulk.model import RowStatus
    from flexybulk.results import OutputRow, OutputSheet, write_output

    texts = ["plain", "=1+1", "=", "+45 1234", "-5", "@SUM(A1)", "#N/A", "#DIV/0!", "#n/a", "tab\there", "nul\x00x", " =x"]
    headers = ["Text", "Amount", "Status"]
    rows = [OutputRow(number=i + 2, input_values={"Text": t, "Amount": Decimal("12.50") if i % 2 else Decimal("3")},
                      extra={"Status": RowStatus.ISSUED}) for i, t in enumerate(texts)]
    path = write_output(OutputSheet(input_headers=["Text", "Amount"], own_columns=["Status"], rows=rows,
                                    summary=[("Rows", 12)]), tmp_path / "out.xlsx")
    ws = openpyxl.load_workbook(path)["Result"]
    assert [c.value for c in ws[1]] == headers and all(c.font.b for c in ws[1])
    got = [(c.value, c.data_type, bool(c.quotePrefix)) for c in ws["A"][1:]]
    dangerous = {"=1+1", "=", "+45 1234", "-5", "@SUM(A1)"}
    expected = [(t.replace("\x00", "\ufffd"), "s", t in dangerous) for t in texts]
    assert got == expected
    assert [c.value for c in ws["B"][1:]] == [3, 12.5] * 6 and all(c.data_type == "n" for c in ws["B"][1:])
    assert {c.value for c in ws["C"][1:]} == {"ISSUED"} and not any(c.font.b for c in ws["C"][1:])
