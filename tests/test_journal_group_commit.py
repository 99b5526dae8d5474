"""The ledger under concurrent workers: group commit keeps every step on disk before set_step returns."""

from __future__ import annotations

import sqlite3
import threading
from collections import defaultdict

from flexybulk.journal import Journal, NewRow, Step, new_id
from flexybulk.model import RowStatus


def _batch(j: Journal, n: int):
    rows = [NewRow(i, RowStatus.PENDING, f"fp{i}", {"price": "10", "quantity": 1}, new_id(), new_id(), new_id()) for i in range(n)]
    return j.create_batch(input_path="x.xlsx", input_sha256="abc", target="sandbox", sheet_name=None, options={}, rows=rows)


def _other_connection_sees(path, batch_id: str, row: int) -> tuple:
    db = sqlite3.connect(path)  # what another process would read after a crash
    try:
        return db.execute("SELECT status, step, payment_amount FROM rows WHERE batch_id = ? AND row_number = ?", (batch_id, row)).fetchone()
    finally:
        db.close()


def test_step_is_committed_before_set_step_returns_and_outcome_after_flush(tmp_path):
    path = tmp_path / "l.sqlite3"
    with Journal(path) as j:
        b = _batch(j, 2)
        j.set_step(b.id, 0, Step.COMMIT, payment_amount="10.00")
        assert _other_connection_sees(path, b.id, 0) == ("PENDING", "COMMIT", "10.00")
        j.finish_row(b.id, 0, RowStatus.ISSUED, certificate_numbers=["A"], wait=False)
        j.flush()
        assert _other_connection_sees(path, b.id, 0) == ("ISSUED", "COMMITTED", "10.00")
        # A queued outcome goes to disk with the next step record, in order.
        j.finish_row(b.id, 1, RowStatus.FAILED, error="refused", wait=False)
        j.set_step(b.id, 0, Step.COMMIT)  # an ISSUED row never goes back; the write still commits the queue
        assert _other_connection_sees(path, b.id, 1)[0] == "FAILED"
        assert _other_connection_sees(path, b.id, 0)[0] == "ISSUED"


def test_queued_outcomes_are_written_on_close_and_seen_by_reads(tmp_path):
    path = tmp_path / "l.sqlite3"
    with Journal(path) as j:
        b = _batch(j, 1)
        j.finish_row(b.id, 0, RowStatus.UNKNOWN, error="lost", wait=False)
        assert j.row(b.id, 0).status == RowStatus.UNKNOWN  # reads see queued records
    assert _other_connection_sees(path, b.id, 0)[0] == "UNKNOWN"


def test_sixteen_workers_every_record_lands_in_order(tmp_path):
    path = tmp_path / "l.sqlite3"
    n = 160
    with Journal(path) as j:
        b = _batch(j, n)
        rows = iter(range(n))
        take = threading.Lock()
        seen_before_call: list[tuple] = []

        def worker() -> None:
            while True:
                with take:
                    i = next(rows, None)
                if i is None:
                    return
                j.set_step(b.id, i, Step.CUSTOMER, wait=False)  # as the runner: only the commit step waits
                j.set_step(b.id, i, Step.ORDER, wait=False)
                j.set_step(b.id, i, Step.COMMIT, payment_amount="10.00")
                if i % 40 == 0:  # the commit step is on disk before the commit call would go
                    seen_before_call.append(_other_connection_sees(path, b.id, i))
                j.finish_row(b.id, i, RowStatus.ISSUED, certificate_numbers=[f"N{i}"], wait=False)

        threads = [threading.Thread(target=worker) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        j.flush()
        assert seen_before_call and all(s[1] in ("COMMIT", "COMMITTED") and s[2] == "10.00" for s in seen_before_call)
        assert {(r.status, r.step) for r in j.rows(b.id)} == {(RowStatus.ISSUED, Step.COMMITTED)}
        per_row: dict[int, list[str]] = defaultdict(list)
        for row, step in j._db.execute("SELECT row_number, step FROM events WHERE batch_id = ? AND row_number IS NOT NULL ORDER BY id", (b.id,)):
            per_row[row].append(step)
        assert len(per_row) == n
        assert all(steps == ["CUSTOMER", "ORDER", "COMMIT", "ISSUED"] for steps in per_row.values())
