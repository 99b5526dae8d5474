"""Two flexybulk processes at once: never the same rows twice, never a broken ledger."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO
from flexybulk.errors import LedgerBusy
from flexybulk.journal import SCHEMA_VERSION, Journal


def _env(sandbox, ledger):
    return {**os.environ, "PYTHONPATH": str(REPO), "FLEXYBOX_TOKEN": sandbox.token, "FLEXYBOX_CRM_URL": sandbox.url,
            "FLEXYBOX_POS_URL": sandbox.url, "FLEXYBOX_API_URL": sandbox.url, "FLEXYBULK_LEDGER": str(ledger)}


@pytest.mark.parametrize("same_file", [True, False])
def test_two_runs_started_together_issue_each_row_once(tmp_path, sandbox, same_file):
    rows = ["Navn;E-mail;Gavekorttype;Beløb;Antal;Afdeling"] + [f"P {i};p{i}@example.com;Gavekort;{100 + i};1;Webshop" for i in range(20)]
    first = tmp_path / "a.csv"
    first.write_text("\n".join(rows) + "\n", encoding="utf-8")
    second = first if same_file else tmp_path / "b.csv"
    if not same_file:
        second.write_text("\n".join(rows) + "\n\n", encoding="utf-8")  # other bytes, same rows
    env = _env(sandbox, tmp_path / "ledger.sqlite3")
    go = tmp_path / "go"
    # Both processes import everything, then wait for the same moment to start.
    starter = ("import os, sys, time\nfrom flexybulk.cli import main\n"
               f"while not os.path.exists({str(go)!r}): time.sleep(0.001)\n"
               "main(sys.argv[1:])\n")
    procs = [subprocess.Popen([sys.executable, "-c", starter, "issue", str(f), "--yes", "-q", "--new-ledger", "-o", str(tmp_path / f"out{i}.xlsx")],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
             for i, f in enumerate((first, second))]
    time.sleep(2.0)
    go.write_text("")
    results = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
    assert sandbox.state.counts()["certificates"] == 20, results
    codes = sorted(r[2] for r in results)
    busy = [r for r in results if "Another flexybulk is issuing with the ledger" in r[1]]
    # Either the second run found the lock taken (exit 1, nothing done), or it ran after the first and found all issued.
    assert codes[0] == 0 and (busy or codes == [0, 0]), results


def test_lock_is_exclusive_names_the_holder_and_dies_with_it(tmp_path):
    ledger = tmp_path / "l.sqlite3"
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys, time\nfrom flexybulk.journal import Journal\n"
                               f"j = Journal({str(ledger)!r})\n"
                               "with j.issuing_lock('issue kampagne.xlsx'):\n    print('held', flush=True)\n    time.sleep(60)\n"],
                              stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert holder.stdout.readline().strip() == "held"
    with Journal(ledger) as j:
        with pytest.raises(LedgerBusy) as err:
            with j.issuing_lock("issue other.xlsx"):
                pass
        assert f"pid {holder.pid}, issue kampagne.xlsx" in str(err.value)
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        with j.issuing_lock("issue other.xlsx"):  # the OS released it with the dead process
            pass


def test_processes_creating_a_new_ledger_at_once_all_succeed(tmp_path):
    ledger = tmp_path / "ny.sqlite3"
    go = tmp_path / "go"
    code = (f"import os, time\nfrom flexybulk.journal import Journal\n"
            f"while not os.path.exists({str(go)!r}): time.sleep(0.0005)\n"
            f"Journal({str(ledger)!r}).close()\n")
    procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True, cwd=REPO) for _ in range(6)]
    time.sleep(1.0)
    go.write_text("")
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, errors
    with Journal(ledger) as j:
        assert j._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
