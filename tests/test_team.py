"""Exactly once for a team (issue #11): several ledgers, lost ledgers, URL spellings, old result sheets.

Every test asserts what the sandbox on 127.0.0.1 really holds.
"""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from clirun import flexybulk
from conftest import REPO
from flexybulk.planning import derived_id
from test_cli_issue import result_rows

SAMPLES = REPO / "samples"
ROWS, CERTIFICATES, TOTAL = 6, 18, Decimal("10399.85")


def _laptop(tmp_path: Path, name: str, monkeypatch=None) -> tuple[Path, Path]:
    """A colleague's laptop: their own copy of the file and their own (new) ledger."""
    home = tmp_path / name
    home.mkdir()
    return Path(shutil.copy(SAMPLES / "kampagne.xlsx", home / "kampagne.xlsx")), home / "ledger.sqlite3"


def _money(sandbox) -> Decimal:
    return sum((c["Amount"] for c in sandbox.state.certificates), Decimal(0))


def test_derived_ids_depend_on_target_file_row_and_salt():
    base = derived_id("sales-order", "https://pos.flexybox.com", "ab" * 32, "2")
    assert base == derived_id("sales-order", "https://pos.flexybox.com", "ab" * 32, "2")
    others = {derived_id("sales-order", "https://pos.flexybox.com", "ab" * 32, "3"),
              derived_id("sales-order", "https://other.example", "ab" * 32, "2"),
              derived_id("sales-order", "https://pos.flexybox.com", "cd" * 32, "2"),
              derived_id("external-payment", "https://pos.flexybox.com", "ab" * 32, "2"),
              derived_id("sales-order", "https://pos.flexybox.com", "ab" * 32, "2", salt="reissue")}
    assert base not in others and len(others) == 5
    assert base[14] == "5"  # RFC 9562 version 5


def test_two_ledgers_same_file_same_flexybox_issue_once(tmp_path, sandbox_env, monkeypatch):
    anna_file, anna_ledger = _laptop(tmp_path, "anna")
    bo_file, bo_ledger = _laptop(tmp_path, "bo")
    monkeypatch.setenv("FLEXYBULK_LEDGER", str(anna_ledger))
    first = flexybulk("issue", anna_file, "--yes", "--new-ledger")
    assert first.code == 0, first.output
    assert sandbox_env.state.counts()["certificates"] == CERTIFICATES

    monkeypatch.setenv("FLEXYBULK_LEDGER", str(bo_ledger))
    second = flexybulk("issue", bo_file, "--yes", "--new-ledger")
    assert second.code == 0, second.output
    counts = sandbox_env.state.counts()
    assert (counts["committed_orders"], counts["certificates"]) == (ROWS, CERTIFICATES)  # not twice
    assert _money(sandbox_env) == TOTAL
    assert "Issued now: nothing." in second.stdout
    assert f"Already issued in Flexybox by another ledger or laptop (same file, same ids): {ROWS} rows" in second.stdout
    anna = result_rows(anna_file.with_name("kampagne.result.xlsx"))
    bo = result_rows(bo_file.with_name("kampagne.result.xlsx"))
    ids = ("CustomerId", "SalesOrderId", "ExternalPaymentId", "GiftCertificateNumbers")
    assert [tuple(r[k] for k in ids) for r in bo] == [tuple(r[k] for k in ids) for r in anna]
    assert [r["Status"] for r in bo] == ["ISSUED"] * ROWS
    assert all("another ledger or laptop issued this file" in r["Error"] for r in bo)


def test_the_same_ledger_through_a_symlink_is_one_lock(tmp_path):
    import subprocess
    import sys

    from flexybulk.errors import LedgerBusy
    from flexybulk.journal import Journal

    real = tmp_path / "real" / "ledger.sqlite3"
    Journal(real).close()
    (tmp_path / "other").mkdir()
    link = tmp_path / "other" / "mine.sqlite3"
    link.symlink_to(real)
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys, time\nfrom flexybulk.journal import Journal\n"
                               f"j = Journal({str(real)!r})\n"
                               "with j.issuing_lock('issue kampagne.xlsx'):\n    print('held', flush=True)\n    time.sleep(60)\n"],
                              stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert holder.stdout.readline().strip() == "held"
        with Journal(link, create=False) as j:
            with pytest.raises(LedgerBusy, match=r"right now \(pid \d+, issue kampagne.xlsx, since"):
                with j.issuing_lock("issue other.xlsx"):
                    pass
    finally:
        holder.kill()
        holder.wait()
    with Journal(link, create=False) as j, j.issuing_lock("issue other.xlsx"):
        pass  # released when its holder died


def test_two_runs_through_two_paths_to_one_ledger_issue_once(tmp_path, sandbox):
    import os
    import subprocess
    import sys
    import time

    lines = ["Navn;E-mail;Gavekorttype;Beløb;Antal;Afdeling"] + [f"P {i};p{i}@example.com;Gavekort;{100 + i};1;Webshop" for i in range(30)]
    src = tmp_path / "a.csv"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    real = tmp_path / "real" / "ledger.sqlite3"
    from flexybulk.journal import Journal

    Journal(real).close()
    link = tmp_path / "link.sqlite3"
    link.symlink_to(real)
    sandbox.faults = __import__("flexybulk.sandbox", fromlist=["Faults"]).Faults(latency=0.01)
    go = tmp_path / "go"
    starter = ("import os, sys, time\nfrom flexybulk.cli import main\n"
               f"while not os.path.exists({str(go)!r}): time.sleep(0.001)\n"
               "sys.exit(main(sys.argv[1:]))\n")
    procs = []
    for i, ledger in enumerate((real, link)):
        env = {**os.environ, "PYTHONPATH": str(REPO), "FLEXYBOX_TOKEN": sandbox.token, "FLEXYBOX_CRM_URL": sandbox.url,
               "FLEXYBOX_POS_URL": sandbox.url, "FLEXYBOX_API_URL": sandbox.url, "FLEXYBULK_LEDGER": str(ledger)}
        # Other bytes for each (a blank line), so the second cannot simply resume the first one's batch.
        f = tmp_path / f"copy{i}.csv"
        f.write_text(src.read_text(encoding="utf-8") + "\n" * i, encoding="utf-8")
        procs.append(subprocess.Popen([sys.executable, "-c", starter, "issue", str(f), "--yes", "-q"],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path))
    time.sleep(2.0)
    go.write_text("")
    results = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
    assert sandbox.state.counts()["certificates"] == 30, results  # not 60
    busy = [r for r in results if "Another flexybulk is issuing with the ledger" in r[1]]
    assert len(busy) == 1 and sorted(r[2] for r in results) == [0, 1], results


def test_a_ledger_that_cannot_be_written_stops_the_run_exit_2_and_sends_nothing_after(tmp_path, sandbox_env, monkeypatch):
    from flexybulk.issue import BatchRunner

    src = Path(shutil.copy(SAMPLES / "kampagne.xlsx", tmp_path / "kampagne.xlsx"))
    real_run = BatchRunner.run

    def run_on_a_read_only_ledger(self, plan):
        # From here on SQLite refuses every write, as it does for a read-only file or folder.
        self.journal._db.execute("PRAGMA query_only = ON")
        return real_run(self, plan)

    monkeypatch.setattr(BatchRunner, "run", run_on_a_read_only_ledger)
    run = flexybulk("issue", src, "--yes", "--workers", "1")
    assert run.code == 2, run.output
    assert "could not be written: the file or its folder is read-only (attempt to write a readonly database)" in run.stderr
    assert "unexpected" not in run.output
    # Row 2's customer and sales order PUTs went (their records need not wait); its commit waits for its record,
    # which failed, so it was never sent, and no other row was started.
    calls = [(m, p.split("/")[3]) for m, p, _ in sandbox_env.state.requests]
    assert calls == [("GET", "odata"), ("GET", "departments"), ("PUT", "customers"), ("PUT", "salesorders")]
    assert sandbox_env.state.counts()["certificates"] == 0
    assert [r["Status"] for r in result_rows(tmp_path / "kampagne.result.xlsx")] == ["PENDING"] * ROWS


def test_a_full_disk_is_named_as_such(tmp_path):
    from flexybulk.errors import JournalError
    from flexybulk.journal import Journal, NewRow, RowStatus

    with Journal(tmp_path / "l.sqlite3") as j:
        pages = j._db.execute("PRAGMA page_count").fetchone()[0]
        j._db.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "database or disk is full"
        rows = [NewRow(n, RowStatus.PENDING, None, {"name": "x" * 500}, "c", f"o{n}", f"p{n}") for n in range(200)]
        with pytest.raises(JournalError, match=r"could not be written: the disk is full \(database or disk is full\)"):
            j.create_batch(input_path="x", input_sha256="s", target="sandbox", sheet_name=None, options={}, rows=rows)


def test_sigterm_mid_run_writes_the_result_sheet_and_retry_finishes_exactly(tmp_path, sandbox):
    import os
    import signal
    import subprocess
    import sys
    import time

    from flexybulk.sandbox import Faults

    n = 40
    lines = ["Navn;E-mail;Gavekorttype;Beløb;Antal;Afdeling"] + [f"P {i};p{i}@example.com;Gavekort;{100 + i},50;{1 + i % 2};Webshop" for i in range(n)]
    src = tmp_path / "liste.csv"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    expected = sum(1 + i % 2 for i in range(n))
    env = {**os.environ, "FLEXYBOX_TOKEN": sandbox.token, "FLEXYBOX_CRM_URL": sandbox.url, "FLEXYBOX_POS_URL": sandbox.url,
           "FLEXYBOX_API_URL": sandbox.url, "FLEXYBULK_LEDGER": str(tmp_path / "ledger.sqlite3")}
    sandbox.faults = Faults(latency=0.01)
    cmd = [sys.executable, str(REPO / "batch_issue.py"), "issue", str(src), "--yes", "-q", "--workers", "2", "--new-ledger"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    deadline = time.monotonic() + 60
    while len(sandbox.state.requests) < 20 and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, out + err
    assert "Interrupted. The rows not yet sent are PENDING" in err and "retry" in err
    statuses = [r["Status"] for r in result_rows(tmp_path / "liste.result.xlsx")]
    done = statuses.count("ISSUED")
    assert 0 < done < n and set(statuses) == {"ISSUED", "PENDING"}, statuses
    assert sandbox.state.counts()["committed_orders"] == done  # calls in flight finished; the sheet says what happened

    sandbox.faults = Faults()
    again = subprocess.run([sys.executable, str(REPO / "batch_issue.py"), "retry", str(tmp_path / "liste.result.xlsx"),
                            "--yes", "-q"], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    counts = sandbox.state.counts()
    assert (counts["committed_orders"], counts["certificates"]) == (n, expected)
    assert [r["Status"] for r in result_rows(tmp_path / "liste.result.xlsx")] == ["ISSUED"] * n


def test_a_corrected_copy_with_a_changed_amount_needs_its_own_confirmation(tmp_path, sandbox_env):
    import openpyxl

    src = Path(shutil.copy(SAMPLES / "kampagne.xlsx", tmp_path / "kampagne.xlsx"))
    assert flexybulk("issue", src, "--yes").code == 0
    wb = openpyxl.load_workbook(src)
    ws = wb.active
    header = [c.value for c in ws[1]]
    amount = header.index("Beløb") + 1
    old = ws.cell(row=4, column=amount).value
    ws.cell(row=4, column=amount).value = old + 50  # 300 -> 350 style correction of row 4
    copy = tmp_path / "kampagne-rettet.xlsx"
    wb.save(copy)
    before = sandbox_env.state.counts()

    stopped = flexybulk("issue", copy, "--yes")  # --yes alone is not enough: it stops and says why
    assert stopped.code == 1, stopped.output
    assert "row 4: " in stopped.stdout and "already received a" in stopped.stdout
    assert "--yes does not answer this question" in stopped.stderr and "Aborted: nothing was issued now." in stopped.stderr
    assert sandbox_env.state.counts() == before

    declined = flexybulk("issue", copy, "--yes", input="n\n")
    assert declined.code == 1 and sandbox_env.state.counts() == before

    confirmed = flexybulk("issue", copy, "--yes", input="y\n")
    assert confirmed.code == 0, confirmed.output
    after = sandbox_env.state.counts()
    quantity = ws.cell(row=4, column=header.index("Antal") + 1).value
    assert after["committed_orders"] == before["committed_orders"] + 1  # only the corrected row, once
    assert after["certificates"] == before["certificates"] + quantity
    assert "Issued now: 1 row" in confirmed.stdout


def test_max_total_refuses_before_any_gift_certificate_call(tmp_path, sandbox_env):
    src = Path(shutil.copy(SAMPLES / "kampagne.xlsx", tmp_path / "kampagne.xlsx"))
    run = flexybulk("issue", src, "--yes", "--max-total", "10000")
    assert run.code == 1, run.output
    assert "this run would issue 10,399.85 DKK (limit 10,000.00 DKK), more than --max-total allows" in run.stderr
    assert [m for m, *_ in sandbox_env.state.requests] == ["GET", "GET"]  # the catalogue only
    from flexybulk import batches

    assert batches.list_batches(Path(__import__("os").environ["FLEXYBULK_LEDGER"])) == []  # nothing planned left behind
    bad = flexybulk("issue", src, "--yes", "--max-total", "lots")
    assert bad.code == 2 and "--max-total 'lots' must be an amount" in bad.stderr
    ok = flexybulk("issue", src, "--yes", "--max-total", "EUR=1", "--max-total", "DKK=10399.85")
    assert ok.code == 0, ok.output
    assert sandbox_env.state.counts()["certificates"] == CERTIFICATES


def test_first_n_is_a_canary_and_retry_sends_the_rest(tmp_path, sandbox_env):
    src = Path(shutil.copy(SAMPLES / "kampagne.xlsx", tmp_path / "kampagne.xlsx"))
    run = flexybulk("issue", src, "--yes", "--first", "2")
    assert run.code == 1, run.output  # the rest needs a retry
    assert "Held back by --first: 4 rows" in run.stdout
    counts = sandbox_env.state.counts()
    assert (counts["customers"], counts["committed_orders"]) == (2, 2)
    rows = result_rows(tmp_path / "kampagne.result.xlsx")
    assert [r["Status"] for r in rows] == ["ISSUED", "ISSUED", "PENDING", "PENDING", "PENDING", "PENDING"]
    assert "Held back by --first" in rows[2]["Error"]
    issued_first = sum(int(r["Antal"]) for r in rows[:2])
    assert counts["certificates"] == issued_first

    again = flexybulk("retry", tmp_path / "kampagne.result.xlsx", "--yes")
    assert again.code == 0, again.output
    counts = sandbox_env.state.counts()
    assert (counts["committed_orders"], counts["certificates"]) == (ROWS, CERTIFICATES)
    assert _money(sandbox_env) == TOTAL


def test_a_lost_ledger_stops_at_the_old_result_sheet_and_adopting_it_finishes_with_its_own_ids(tmp_path, sandbox_env, isolated_env):
    from flexybulk.sandbox import Faults

    src = Path(shutil.copy(SAMPLES / "kampagne.xlsx", tmp_path / "kampagne.xlsx"))
    # An interrupted batch: some commit answers are lost (the work done), so those rows end UNKNOWN.
    sandbox_env.faults = Faults(drop_rate=0.5, only=r"^POST .*/commit$", seed=7)
    first = flexybulk("issue", src, "--yes", "--max-attempts", "1", "--workers", "1")
    assert first.code == 1, first.output
    result = tmp_path / "kampagne.result.xlsx"
    before_rows = result_rows(result)
    statuses = [r["Status"] for r in before_rows]
    assert "UNKNOWN" in statuses and "ISSUED" in statuses, statuses
    committed = sandbox_env.state.counts()["committed_orders"]
    assert committed == ROWS  # every commit was done; some answers were lost
    sandbox_env.faults = Faults()
    sheet_bytes = result.read_bytes()

    isolated_env.unlink()  # the ledger is lost (a new laptop)
    for extra in (isolated_env.with_name(isolated_env.name + "-wal"), isolated_env.with_name(isolated_env.name + "-shm")):
        extra.unlink(missing_ok=True)
    again = flexybulk("issue", src, "--yes", "--new-ledger")
    assert again.code == 1, again.output
    assert "kampagne.result.xlsx beside kampagne.xlsx records batch" in again.stderr and "flexybulk retry" in again.stderr
    assert result.read_bytes() == sheet_bytes  # the old result sheet is intact
    assert sandbox_env.state.counts()["committed_orders"] == ROWS and sandbox_env.state.counts()["certificates"] == CERTIFICATES

    adopted = flexybulk("retry", result, "--yes")
    assert adopted.code == 0, adopted.output
    assert "Adopted batch" in adopted.stdout
    after_rows = result_rows(result)
    assert [r["Status"] for r in after_rows] == ["ISSUED"] * ROWS
    ids = ("BatchId", "CustomerId", "SalesOrderId", "ExternalPaymentId")
    assert [tuple(r[k] for k in ids) for r in after_rows] == [tuple(r[k] for k in ids) for r in before_rows]
    counts = sandbox_env.state.counts()
    assert (counts["committed_orders"], counts["certificates"]) == (ROWS, CERTIFICATES)  # nothing twice
    assert _money(sandbox_env) == TOTAL
    # The rows that had been UNKNOWN now carry the certificate numbers Flexybox issued for them.
    for r in after_rows:
        mine = sorted(c["Number"] for c in sandbox_env.state.certificates if c["SalesOrderId"] == r["SalesOrderId"])
        assert sorted(r["GiftCertificateNumbers"].split(", ")) == mine


def test_url_spellings_are_one_target(tmp_path, sandbox, monkeypatch):
    from flexybulk.settings import TOKEN_ENV, URL_ENVS

    src = Path(shutil.copy(SAMPLES / "kampagne.xlsx", tmp_path / "kampagne.xlsx"))
    port = sandbox.url.rsplit(":", 1)[1]
    monkeypatch.setenv(TOKEN_ENV, sandbox.token)
    for i, url in enumerate((f"http://127.0.0.1:{port}", f"http://localhost:{port}/", f"HTTP://LOCALHOST:{port}")):
        for var in URL_ENVS.values():
            monkeypatch.setenv(var, url)
        run = flexybulk("issue", src, "--yes")
        assert run.code == 0, run.output
        assert ("Issued now: 6 rows" if i == 0 else "Issued now: nothing.") in run.stdout
    from flexybulk import batches

    history = batches.list_batches(Path(__import__("os").environ["FLEXYBULK_LEDGER"]))
    assert [b.batch.target for b in history] == [f"http://127.0.0.1:{port}"]  # one batch
    assert sandbox.state.counts()["certificates"] == CERTIFICATES


def test_a_late_row_added_keeps_the_first_result_sheet_and_issues_the_new_row_once(tmp_path, sandbox_env):
    import openpyxl

    src = Path(shutil.copy(SAMPLES / "kampagne.xlsx", tmp_path / "kampagne.xlsx"))
    assert flexybulk("issue", src, "--yes").code == 0
    first = tmp_path / "kampagne.result.xlsx"
    first_bytes = first.read_bytes()
    wb = openpyxl.load_workbook(src)
    ws = wb.active
    header = [c.value for c in ws[1]]
    late = dict(zip(header, [c.value for c in ws[2]]))
    late.update({"Navn": "Sen Tilføjelse", "E-mail": "sen@example.com", "Antal": 2})
    ws.append([late[h] for h in header])
    wb.save(src)
    before = sandbox_env.state.counts()

    run = flexybulk("issue", src, "--yes")
    assert run.code == 0, run.output
    assert first.read_bytes() == first_bytes  # the first result sheet is intact
    second = tmp_path / "kampagne (2).result.xlsx"
    assert f"Result sheet: {second}" in run.stdout
    rows = result_rows(second)
    assert [r["Status"] for r in rows] == ["SKIPPED"] * ROWS + ["ISSUED"]
    after = sandbox_env.state.counts()
    assert after["committed_orders"] == before["committed_orders"] + 1
    assert after["certificates"] == before["certificates"] + 2


def test_issue_on_a_validation_sheet_writes_the_result_sheet_beside_it(tmp_path, sandbox_env):
    src = Path(shutil.copy(SAMPLES / "kampagne.xlsx", tmp_path / "kampagne.xlsx"))
    assert flexybulk("validate", src).code == 0
    checked = tmp_path / "kampagne.validation.xlsx"
    before = checked.read_bytes()
    run = flexybulk("issue", checked, "--yes")
    assert run.code == 0, run.output
    assert checked.read_bytes() == before
    assert [r["Status"] for r in result_rows(tmp_path / "kampagne.result.xlsx")] == ["ISSUED"] * ROWS
    assert sandbox_env.state.counts()["certificates"] == CERTIFICATES


def test_the_dry_run_reports_what_the_ledger_knows(tmp_path, sandbox_env):
    import openpyxl

    src = Path(shutil.copy(SAMPLES / "kampagne.xlsx", tmp_path / "kampagne.xlsx"))
    fresh = flexybulk("validate", src)
    assert "Ledger: " in fresh.stdout and "The ledger knows" not in fresh.stdout
    assert flexybulk("issue", src, "--yes").code == 0
    run = flexybulk("validate", src)
    assert run.code == 0
    assert "The ledger knows 6 rows already issued (an issue would skip them):" in run.stdout
    assert "  row 2: Already issued on " in run.stdout and "(this file): an issue would skip it." in run.stdout
    assert "An issue would send now: 0 rows, 0 gift certificates, 0.00 DKK." in run.stdout
    ws = openpyxl.load_workbook(tmp_path / "kampagne.validation.xlsx")["Validation"]
    header = [c.value for c in ws[1]]
    warnings = [row[header.index("Warning")] for row in ws.iter_rows(min_row=2, values_only=True)]
    assert all(w and "an issue would skip it" in w for w in warnings)
    assert sandbox_env.state.counts()["certificates"] == CERTIFICATES  # the dry run issued nothing


def test_a_version_2_ledger_upgrades_and_resumes_its_half_done_batch_with_its_old_ids(tmp_path, sandbox, monkeypatch):
    """tests/corpus/ledger-v2 was written by flexybulk as it was before schema 3 (commit 6a4a33b): rows 2-4 ISSUED,
    rows 5-7 FAILED (their commits refused: nothing issued), random ids, target http://127.0.0.1:<port>."""
    import sqlite3

    from flexybulk.journal import SCHEMA_VERSION
    from flexybulk.settings import TOKEN_ENV, URL_ENVS

    corpus = REPO / "tests" / "corpus" / "ledger-v2"
    ledger = Path(shutil.copy(corpus / "ledger.sqlite3", tmp_path / "ledger.sqlite3"))
    src = Path(shutil.copy(corpus / "kampagne.xlsx", tmp_path / "kampagne.xlsx"))
    port = sandbox.url.rsplit(":", 1)[1]
    db = sqlite3.connect(ledger)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 2
    # The old ledger spelt the target another way: the upgrade must find it one target with 127.0.0.1.
    db.execute("UPDATE batches SET target = ?", (f"HTTP://LOCALHOST:{port}/",))
    db.commit()
    old = dict(db.execute("SELECT row_number, sales_order_id || ' ' || payment_id || ' ' || customer_id FROM rows"))
    db.close()
    monkeypatch.setenv("FLEXYBULK_LEDGER", str(ledger))
    monkeypatch.setenv(TOKEN_ENV, sandbox.token)
    for var in URL_ENVS.values():
        monkeypatch.setenv(var, sandbox.url)

    run = flexybulk("issue", src, "--yes")
    assert run.code == 0, run.output
    assert "(resumed)" in run.stdout and "Already issued in this batch: 3 rows (skipped)." in run.stdout
    db = sqlite3.connect(ledger)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("SELECT DISTINCT target FROM batches").fetchall() == [(f"http://127.0.0.1:{port}",)]
    now = dict(db.execute("SELECT row_number, sales_order_id || ' ' || payment_id || ' ' || customer_id FROM rows"))
    assert now == old  # the old ids, not derived ones
    orders = sandbox.state.orders
    assert sorted(orders) == sorted(old[n].split()[0] for n in (5, 6, 7))  # only the unfinished rows were sent
    assert all(o["Status"] == "Committed" for o in orders.values())
    rows = result_rows(tmp_path / "kampagne.result.xlsx")
    assert [r["Status"] for r in rows] == ["ISSUED"] * ROWS
    assert sandbox.state.counts()["certificates"] == sum(int(r["Antal"]) for r in rows[3:])


def test_a_retry_s_summary_records_both_files_hashes(tmp_path, sandbox_env):
    import hashlib

    from flexybulk.result_input import read_summary

    src = Path(shutil.copy(SAMPLES / "kampagne.xlsx", tmp_path / "kampagne.xlsx"))
    assert flexybulk("issue", src, "--yes", "--first", "1").code == 1
    result = tmp_path / "kampagne.result.xlsx"
    given = hashlib.sha256(result.read_bytes()).hexdigest()
    assert flexybulk("retry", result, "--yes").code == 0
    summary = read_summary(result)
    assert summary["SHA-256 of the input file"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert summary["SHA-256 of the file written from"] == given
    assert summary["Written from"] == str(result.resolve())


BIND_CHECK = """
import subprocess, sys
from flexybulk.errors import LedgerBusy
from flexybulk.journal import Journal
real, bound = sys.argv[1], sys.argv[2]
holder = subprocess.Popen([sys.executable, "-c",
    "import sys, time\\nfrom flexybulk.journal import Journal\\nj = Journal(sys.argv[1])\\n"
    "with j.issuing_lock('issue kampagne.xlsx'):\\n    print('held', flush=True)\\n    time.sleep(60)\\n", real],
    stdout=subprocess.PIPE, text=True)
assert holder.stdout.readline().strip() == "held"
try:
    with Journal(bound, create=False) as j, j.issuing_lock("issue other.xlsx"):
        print("NOT REFUSED")
except LedgerBusy:
    print("REFUSED")
finally:
    holder.kill()
"""


def test_the_same_ledger_through_a_bind_mount_is_one_lock(tmp_path):
    """A bind mount of the ledger file onto another path (in a mount namespace of its own) reaches the same lock."""
    import os
    import subprocess
    import sys

    from flexybulk.journal import Journal

    real = tmp_path / "real.sqlite3"
    Journal(real).close()
    bound = tmp_path / "other" / "mounted.sqlite3"
    bound.parent.mkdir()
    bound.touch()
    script = tmp_path / "check.py"
    script.write_text(BIND_CHECK, encoding="utf-8")
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("this machine does not allow a mount namespace (unshare -m)")
    run = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                          f'mount --bind "{real}" "{bound}" && exec "{sys.executable}" "{script}" "{real}" "{bound}"'],
                         capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert run.stdout.strip() == "REFUSED", run.stdout + run.stderr


def test_a_validation_sheet_on_another_laptop_issues_nothing_twice(tmp_path, sandbox_env, monkeypatch):
    """Laptop A validates and issues; the colleague on laptop B gets the validation sheet ("the checked file")."""
    anna_file, anna_ledger = _laptop(tmp_path, "anna")
    monkeypatch.setenv("FLEXYBULK_LEDGER", str(anna_ledger))
    assert flexybulk("validate", anna_file).code == 0
    assert flexybulk("issue", anna_file, "--yes", "--new-ledger").code == 0
    checked = tmp_path / "bo" / "kampagne.validation.xlsx"
    checked.parent.mkdir()
    shutil.copy(anna_file.with_name("kampagne.validation.xlsx"), checked)
    monkeypatch.setenv("FLEXYBULK_LEDGER", str(tmp_path / "bo" / "ledger.sqlite3"))
    run = flexybulk("issue", checked, "--yes", "--new-ledger")
    assert run.code == 0, run.output
    counts = sandbox_env.state.counts()
    assert (counts["committed_orders"], counts["certificates"]) == (ROWS, CERTIFICATES)  # not 36
    assert f"Already issued in Flexybox by another ledger or laptop (same file, same ids): {ROWS} rows" in run.stdout
    anna = result_rows(anna_file.with_name("kampagne.result.xlsx"))
    bo = result_rows(checked.with_name("kampagne.result.xlsx"))
    assert [r["SalesOrderId"] for r in bo] == [r["SalesOrderId"] for r in anna]


def test_two_sheets_of_one_workbook_are_two_batches(tmp_path, sandbox_env, monkeypatch):
    import openpyxl

    wb = openpyxl.Workbook()
    first = wb.active
    first.title = "Modtagere"
    second = wb.create_sheet("Ark2")
    for ws, people in ((first, [("Anna A", "anna@example.com", 100), ("Bo B", "bo@example.com", 200)]),
                       (second, [("Carl C", "carl@example.com", 300), ("Dora D", "dora@example.com", 400)])):
        ws.append(["Navn", "E-mail", "Gavekorttype", "Beløb", "Afdeling"])
        for name, email, amount in people:
            ws.append([name, email, "Gavekort", amount, "Webshop"])
    path = tmp_path / "to.xlsx"
    wb.save(path)
    one = flexybulk("issue", path, "--sheet", "Modtagere", "--yes", "-o", tmp_path / "one.result.xlsx")
    assert one.code == 0, one.output
    two = flexybulk("issue", path, "--sheet", "Ark2", "--yes", "-o", tmp_path / "two.result.xlsx")
    assert two.code == 0, two.output
    assert "Issued now: 2 rows, 2 gift certificates, 700.00 DKK." in two.stdout
    emails = sorted(c["EmailAddress"] for c in sandbox_env.state.customers.values())
    assert emails == ["anna@example.com", "bo@example.com", "carl@example.com", "dora@example.com"]
    assert _money(sandbox_env) == Decimal("1000")


def test_adoption_refuses_a_line_whose_ids_were_edited(tmp_path, sandbox_env, isolated_env):
    import uuid

    import openpyxl

    src = Path(shutil.copy(SAMPLES / "kampagne.xlsx", tmp_path / "kampagne.xlsx"))
    assert flexybulk("issue", src, "--yes").code == 0
    result = tmp_path / "kampagne.result.xlsx"
    wb = openpyxl.load_workbook(result)
    ws = wb["Result"]
    header = [c.value for c in ws[1]]
    for column in ("CustomerId", "SalesOrderId", "ExternalPaymentId"):
        ws.cell(row=2, column=header.index(column) + 1).value = str(uuid.uuid4())
    ws.cell(row=2, column=header.index("Status") + 1).value = "FAILED"
    wb.save(result)
    isolated_env.unlink()
    before = sandbox_env.state.counts()
    run = flexybulk("retry", result, "--yes", "--new-ledger")
    assert run.code == 1, run.output
    assert "row 2: its SalesOrderId and ExternalPaymentId are not the ids its batch gave input row 2" in run.stderr
    assert sandbox_env.state.counts() == before


@pytest.fixture
def strict_sandbox(monkeypatch):
    """A sandbox of its own whose catalogue refuses Firmagavekort above 600 (the session's sandbox stays as it is)."""
    from flexybulk.sandbox import Sandbox
    from flexybulk.sandbox.catalogue import with_rules
    from flexybulk.settings import TOKEN_ENV, URL_ENVS

    with Sandbox(port=0, catalogue=with_rules(None, max_prices={"Firmagavekort": Decimal("600")})) as sb:
        monkeypatch.setenv(TOKEN_ENV, sb.token)
        for var in URL_ENVS.values():
            monkeypatch.setenv(var, sb.url)
        yield sb


def test_a_result_sheet_sorted_on_some_columns_only_is_refused(tmp_path, strict_sandbox):
    """The tester's case: row 6 FAILED (above a maximum price); only the input columns are sorted by name."""
    import openpyxl

    sandbox_env = strict_sandbox
    src = Path(shutil.copy(SAMPLES / "kampagne.xlsx", tmp_path / "kampagne.xlsx"))
    first = flexybulk("issue", src, "--yes")
    assert first.code == 1
    result = tmp_path / "kampagne.result.xlsx"
    rows = result_rows(result)
    assert [r["Status"] for r in rows].count("FAILED") == 1
    wb = openpyxl.load_workbook(result)
    ws = wb["Result"]
    header = [c.value for c in ws[1]]
    inputs = min(header.index(h) for h in ("AmountRead", "Status") if h in header)  # the input's own columns come first
    values = [[ws.cell(row=r, column=c + 1).value for c in range(inputs)] for r in range(2, 2 + ROWS)]
    for r, line in enumerate(sorted(values, key=lambda v: str(v[0])), 2):  # Excel: "sort the selection only"
        for c, value in enumerate(line):
            ws.cell(row=r, column=c + 1).value = value
    wb.save(result)
    before = sandbox_env.state.counts()
    run = flexybulk("retry", result, "--yes")
    assert run.code == 1, run.output
    assert "The sheet looks sorted on some columns only" in run.stderr and "has the values of input row" in run.stderr
    assert sandbox_env.state.counts() == before


# -- what a fresh user found (attack of the CLI from the README) ---------------------------


def test_max_total_for_one_currency_does_not_leave_the_others_unlimited(tmp_path, sandbox_env):
    src = Path(shutil.copy(SAMPLES / "kampagne.xlsx", tmp_path / "kampagne.xlsx"))
    run = flexybulk("issue", src, "--yes", "--max-total", "EUR=10")
    assert run.code == 1, run.output
    assert "this run would issue 10,399.85 DKK (no --max-total for DKK)" in run.stderr
    assert sandbox_env.state.counts()["customers"] == 0


def test_status_target_takes_any_spelling(tmp_path, sandbox, monkeypatch):
    from flexybulk.settings import TOKEN_ENV, URL_ENVS

    src = Path(shutil.copy(SAMPLES / "kampagne.xlsx", tmp_path / "kampagne.xlsx"))
    monkeypatch.setenv(TOKEN_ENV, sandbox.token)
    for var in URL_ENVS.values():
        monkeypatch.setenv(var, sandbox.url)
    assert flexybulk("issue", src, "--yes").code == 0
    port = sandbox.url.rsplit(":", 1)[1]
    for spelling in (f"http://127.0.0.1:{port}/", f"http://localhost:{port}", f"HTTP://127.0.0.1:{port}"):
        run = flexybulk("status", src, "--target", spelling)
        assert "Rows: ISSUED: 6 (of 6)." in run.stdout, (spelling, run.output)


def test_validate_never_writes_over_its_input_or_a_foreign_file(tmp_path, sandbox_env):
    src = Path(shutil.copy(SAMPLES / "kampagne.xlsx", tmp_path / "kampagne.xlsx"))
    before = src.read_bytes()
    run = flexybulk("validate", src, "-o", src)
    assert run.code == 2 and "is the input file itself; the validation sheet is not written over it" in run.stderr
    assert src.read_bytes() == before
    other = tmp_path / "andet.csv"
    other.write_text("a;b\n1;2\n", encoding="utf-8")
    run = flexybulk("validate", src, "-o", other)
    assert run.code == 2 and "exists and is not a flexybulk validation sheet, so it is not overwritten" in run.stderr
    assert other.read_text(encoding="utf-8") == "a;b\n1;2\n"
    assert flexybulk("validate", src).code == 0 and flexybulk("validate", src).code == 0  # its own sheet: rewritten


def test_rows_issued_without_certificate_numbers_are_said_on_screen(tmp_path, sandbox_env):
    from flexybulk.sandbox import Faults

    src = Path(shutil.copy(SAMPLES / "kampagne.xlsx", tmp_path / "kampagne.xlsx"))
    # Some commit answers are lost, and their safe repeat is answered 409 "already committed": issued, no numbers known.
    sandbox_env.faults = Faults(drop_rate=0.5, only=r"^POST .*/commit$", commit_409_on_repeat=True, seed=4)
    run = flexybulk("issue", src, "--yes", "--max-attempts", "8")
    assert run.code == 0, run.output
    rows = result_rows(tmp_path / "kampagne.result.xlsx")
    unnumbered = [r for r in rows if r["Status"] == "ISSUED" and not r["GiftCertificateNumbers"]]
    assert 0 < len(unnumbered) < ROWS
    assert (f"Issued without certificate numbers: {len(unnumbered)} row{'s' if len(unnumbered) != 1 else ''} (Flexybox's "
            "answer listed none); look them up in Flexybox under the sales order ids in the result sheet.") in run.stdout
    assert sandbox_env.state.counts()["certificates"] == CERTIFICATES


def test_a_result_sheet_saved_as_ods_is_not_rewritten_as_xlsx_under_its_name(tmp_path, sandbox_env):
    import subprocess

    src = Path(shutil.copy(SAMPLES / "kampagne.xlsx", tmp_path / "kampagne.xlsx"))
    assert flexybulk("issue", src, "--yes", "--first", "2").code == 1
    if shutil.which("soffice") is None:
        pytest.skip("LibreOffice (soffice) is not installed")
    subprocess.run(["soffice", "--headless", "--convert-to", "ods", "--outdir", str(tmp_path),
                    str(tmp_path / "kampagne.result.xlsx")], capture_output=True, timeout=120, check=True)
    ods = tmp_path / "kampagne.result.ods"
    ods_bytes = ods.read_bytes()
    run = flexybulk("retry", ods, "--yes")
    assert run.code == 0, run.output
    assert ods.read_bytes() == ods_bytes  # untouched
    assert f"Result sheet: {tmp_path / 'kampagne.result.xlsx'}" in run.stdout  # the same batch's own sheet beside it
    assert sandbox_env.state.counts()["certificates"] == CERTIFICATES


def test_a_refused_token_leaves_no_new_ledger_behind(tmp_path, sandbox_env, monkeypatch):
    from flexybulk.settings import TOKEN_ENV

    src = Path(shutil.copy(SAMPLES / "kampagne.xlsx", tmp_path / "kampagne.xlsx"))
    ledger = tmp_path / "ny" / "ledger.sqlite3"
    monkeypatch.setenv("FLEXYBULK_LEDGER", str(ledger))
    monkeypatch.setenv(TOKEN_ENV, "not-the-sandbox-token")
    run = flexybulk("issue", src, "--yes", "--new-ledger")
    assert run.code == 2 and "refused the token" in run.stderr
    assert not ledger.exists()


def test_a_mistyped_ledger_is_named_by_the_dry_run_too(tmp_path, sandbox_env, monkeypatch):
    src = Path(shutil.copy(SAMPLES / "kampagne.xlsx", tmp_path / "kampagne.xlsx"))
    monkeypatch.setenv("FLEXYBULK_LEDGER", str(tmp_path / "ledgr.sqlite3"))
    run = flexybulk("validate", src)
    assert "(named by --ledger or FLEXYBULK_LEDGER) does not exist" in run.stderr
    assert not (tmp_path / "ledgr.sqlite3").exists()


def test_a_column_mapped_twice_is_a_usage_error(tmp_path, sandbox_env):
    src = Path(shutil.copy(SAMPLES / "kampagne.xlsx", tmp_path / "kampagne.xlsx"))
    run = flexybulk("validate", src, "--column", "amount=Beløb", "--column", "amount=Navn")
    assert run.code == 2 and '--column amount is given twice ("Beløb" and "Navn"); give it once.' in run.stderr


def test_the_confirmation_counts_an_in_doubt_row_as_it_will_really_be_sent(tmp_path, sandbox_env):
    """A web tester's finding: an UNKNOWN row edited before a retry is settled exactly as first sent, so the
    confirmation must state that amount, not the edited one."""
    import openpyxl

    from flexybulk.sandbox import Faults

    src = Path(shutil.copy(SAMPLES / "kampagne.xlsx", tmp_path / "kampagne.xlsx"))
    sandbox_env.faults = Faults(drop_rate=1.0, only=r"^POST .*/commit$")  # every commit done, its answer lost
    assert flexybulk("issue", src, "--yes", "--max-attempts", "1").code == 1
    sandbox_env.faults = Faults()
    result = tmp_path / "kampagne.result.xlsx"
    assert {r["Status"] for r in result_rows(result)} == {"UNKNOWN"}
    wb = openpyxl.load_workbook(result)
    ws = wb["Result"]
    header = [c.value for c in ws[1]]
    ws.cell(row=2, column=header.index("Beløb") + 1).value = 999  # an edit of a row whose commit may have gone through
    wb.save(result)
    run = flexybulk("retry", result, input="y\n")
    assert "Issue 18 gift certificates worth 10,399.85 DKK for 6 rows on Flexybox at" in run.stderr, run.output
    assert sandbox_env.state.counts()["certificates"] == CERTIFICATES and _money(sandbox_env) == TOTAL


def test_the_dry_run_of_a_result_sheet_counts_an_in_doubt_row_as_it_will_be_sent(tmp_path, sandbox_env):
    import openpyxl

    from flexybulk import batches
    from flexybulk.sandbox import Faults
    from flexybulk.target import Target

    src = Path(shutil.copy(SAMPLES / "kampagne.xlsx", tmp_path / "kampagne.xlsx"))
    sandbox_env.faults = Faults(drop_rate=1.0, only=r"^POST .*/commit$")
    assert flexybulk("issue", src, "--yes", "--max-attempts", "1").code == 1
    sandbox_env.faults = Faults()
    result = tmp_path / "kampagne.result.xlsx"
    wb = openpyxl.load_workbook(result)
    ws = wb["Result"]
    header = [c.value for c in ws[1]]
    ws.cell(row=2, column=header.index("Beløb") + 1).value = 999
    wb.save(result)
    run = flexybulk("validate", result)
    assert "An issue would send now: 6 rows, 18 gift certificates, 10,399.85 DKK." in run.stdout, run.output
    assert "row 2: Its commit may already have gone through: an issue settles it exactly as first sent" in run.stdout


def test_status_and_history_of_a_named_ledger_that_does_not_exist_are_a_usage_error(tmp_path, sandbox_env):
    # The README's exit codes: 2 for a named ledger that does not exist (a fresh user's find: status said 0).
    src = Path(shutil.copy(SAMPLES / "kampagne.xlsx", tmp_path / "kampagne.xlsx"))
    missing = tmp_path / "nope.sqlite3"
    for args in (("status", src, "--ledger", missing), ("history", "--ledger", missing)):
        run = flexybulk(*args)
        assert run.code == 2, run.output
        assert f"The ledger {missing} (named by --ledger or FLEXYBULK_LEDGER) does not exist" in run.stderr
        assert "Traceback" not in run.output
    assert not missing.exists()
