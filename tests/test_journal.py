"""The ledger: ids on disk before use, schema versioning, durability settings, steps."""

from __future__ import annotations

import sqlite3

import pytest

from flexybulk.errors import JournalError
from flexybulk.journal import SCHEMA_VERSION, Journal, NewRow, Step, default_ledger_path
from flexybulk.model import RowStatus


def _batch(j: Journal, sha: str = "abc", target: str = "sandbox"):
    rows = [NewRow(n, RowStatus.PENDING, f"fp{n}", {"email": f"p{n}@example.com", "price": "10", "quantity": 1},
                   f"c{n}", f"o{n}", f"p{n}") for n in (2, 3)]
    return j.create_batch(input_path="x.xlsx", input_sha256=sha, target=target, sheet_name="Ark1", options={"a": 1}, rows=rows)


def _sql(path, *statements: str) -> None:
    """Run statements on the file through a connection of its own, as another program would."""
    db = sqlite3.connect(path)
    try:
        for statement in statements:
            db.execute(statement)
        db.commit()
    finally:
        db.close()


def test_batch_and_ids_are_on_disk_before_any_call(tmp_path):
    path = tmp_path / "l.sqlite3"
    with Journal(path) as j:
        batch = _batch(j)
    # A second connection (another process after a crash) sees every id.
    db = sqlite3.connect(path)
    got = db.execute("SELECT row_number, status, step, customer_id, sales_order_id, payment_id FROM rows ORDER BY row_number").fetchall()
    assert got == [(2, "PENDING", "PLANNED", "c2", "o2", "p2"), (3, "PENDING", "PLANNED", "c3", "o3", "p3")]
    assert db.execute("SELECT input_sha256, target FROM batches WHERE id = ?", (batch.id,)).fetchone() == ("abc", "sandbox")


def test_durability_settings_and_schema_version(tmp_path):
    with Journal(tmp_path / "l.sqlite3") as j:
        assert j._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert j._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert j._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_unknown_schema_version_is_refused(tmp_path):
    path = tmp_path / "l.sqlite3"
    Journal(path).close()
    _sql(path, "PRAGMA user_version = 99")
    with pytest.raises(JournalError, match=f"schema version 99; this flexybulk knows version {SCHEMA_VERSION}"):
        Journal(path)


def test_a_version_1_ledger_is_upgraded_in_place_keeping_its_rows(tmp_path):
    path = tmp_path / "l.sqlite3"
    with Journal(path) as j:
        batch = _batch(j)
    _sql(path, "ALTER TABLE rows DROP COLUMN commit_content", "PRAGMA user_version = 1")  # what version 1 looked like
    with Journal(path) as j:
        assert j._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert [r.payment_id for r in j.rows(batch.id)] == ["p2", "p3"]
        assert j.rows(batch.id)[0].commit_content is None


def test_a_foreign_sqlite_file_or_junk_is_refused(tmp_path):
    foreign = tmp_path / "other.sqlite3"
    _sql(foreign, "CREATE TABLE t (a)")
    with pytest.raises(JournalError, match="did not create"):
        Journal(foreign)
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(JournalError, match="Cannot open the ledger"):
        Journal(junk)


def test_steps_and_outcomes_and_fingerprint_lookup_per_target(tmp_path):
    with Journal(tmp_path / "l.sqlite3") as j:
        b1 = _batch(j, "s1", "sandbox")
        _batch(j, "s2", "https://pos.flexybox.com")
        j.set_step(b1.id, 2, Step.COMMIT, payment_amount="10.00")
        rec = j.row(b1.id, 2)
        assert (rec.step, rec.payment_amount, rec.commit_may_have_happened) == (Step.COMMIT, "10.00", True)
        assert j.finish_row(b1.id, 2, RowStatus.ISSUED, certificate_numbers=["A", "B"])
        rec = j.row(b1.id, 2)
        assert (rec.status, rec.step, rec.certificate_numbers, rec.commit_may_have_happened) == (RowStatus.ISSUED, Step.COMMITTED, ["A", "B"], False)
        # An issued row never goes back.
        j.finish_row(b1.id, 2, RowStatus.FAILED, error="late")
        assert j.row(b1.id, 2).status == RowStatus.ISSUED
        with pytest.raises(JournalError, match="already issued"):
            j.update_plan(b1.id, 2, status=RowStatus.PENDING, fingerprint="x", content={})
        found = j.rows_by_fingerprint(["fp2", "fp3"], target="sandbox")
        assert {k: [r.batch_id for r in v] for k, v in found.items()} == {"fp2": [b1.id], "fp3": [b1.id]}
        assert j.rows_by_fingerprint(["fp2"], target="sandbox", exclude_batch=b1.id) == {}
        assert j.find_batch_by_sha256("s1", "https://pos.flexybox.com") is None
        assert j.find_batch_by_sha256("s1", "sandbox").id == b1.id
        events = j._db.execute("SELECT step FROM events WHERE batch_id = ? ORDER BY id", (b1.id,)).fetchall()
        assert [e[0] for e in events] == ["BATCH_CREATED", "COMMIT", "ISSUED", "FAILED"]


def test_default_ledger_path_honours_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("FLEXYBULK_LEDGER", str(tmp_path / "x.sqlite3"))
    assert default_ledger_path() == tmp_path / "x.sqlite3"
    monkeypatch.delenv("FLEXYBULK_LEDGER")
    assert default_ledger_path().name == "ledger.sqlite3" and "flexybulk" in str(default_ledger_path())
