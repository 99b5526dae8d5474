"""``kill -9`` at random moments loses nothing: reruns finish the batch with exactly the expected certificates."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter

import openpyxl

from conftest import REPO
from flexybulk.sandbox import Faults

ROWS = 60


def _write_input(path):
    lines = ["Navn;E-mail;Gavekorttype;Beløb;Antal;Afdeling"]
    lines += [f"Person {i};p{i}@example.com;{'Gavekort' if i % 2 else 'Julegavekort'};{100 + i},50;{1 + i % 3};Webshop" for i in range(ROWS)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return sum(1 + i % 3 for i in range(ROWS))


def test_sigkill_at_random_points_then_rerun(tmp_path, sandbox):
    src = tmp_path / "liste.csv"
    expected = _write_input(src)
    env = {**os.environ, "FLEXYBOX_TOKEN": sandbox.token, "FLEXYBOX_CRM_URL": sandbox.url,
           "FLEXYBOX_POS_URL": sandbox.url, "FLEXYBOX_API_URL": sandbox.url,
           "FLEXYBULK_LEDGER": str(tmp_path / "ledger.sqlite3")}
    # Slow enough calls that a kill lands in the middle of the flow, including between commit and its record.
    sandbox.faults = Faults(latency=0.004, drop_rate=0.05, seed=3)
    cmd = [sys.executable, str(REPO / "batch_issue.py"), "issue", str(src), "--yes", "-q", "--workers", "4", "--new-ledger"]
    rng = random.Random(2026)
    kills = 0
    for _ in range(12):
        start = len(sandbox.state.requests)
        target = start + rng.randint(1, 12)  # kill after a random number of this run's calls
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
        deadline = time.monotonic() + 60
        while proc.poll() is None and len(sandbox.state.requests) < target and time.monotonic() < deadline:
            time.sleep(0.002)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait(timeout=60)
    assert kills >= 10, f"only {kills} runs were killed; aim the kills better"
    sandbox.faults = Faults()
    final = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert final.returncode == 0, final.stdout + final.stderr

    counts = sandbox.state.counts()
    assert counts["committed_orders"] == ROWS
    assert counts["certificates"] == expected  # none missing, none twice
    per_order = Counter(c["SalesOrderId"] for c in sandbox.state.certificates)
    result = openpyxl.load_workbook(tmp_path / "liste.result.xlsx")["Result"]
    rows = list(result.iter_rows(values_only=True))
    data = [dict(zip(rows[0], r)) for r in rows[1:]]
    assert len(data) == ROWS and {r["Status"] for r in data} == {"ISSUED"}
    for r in data:
        assert per_order[r["SalesOrderId"].lower()] == int(r["Antal"])
        assert len(r["GiftCertificateNumbers"].split(", ")) == int(r["Antal"])
