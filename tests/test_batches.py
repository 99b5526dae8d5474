"""The batch use cases through the library API alone (no Click, no subprocess), against the sandbox on 127.0.0.1."""

from __future__ import annotations

import ast
import shutil
import threading
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from conftest import REPO
from flexybulk import batches
from flexybulk.journal import Journal, Step
from flexybulk.model import RowStatus
from flexybulk.target import Target

SAMPLES = REPO / "samples"
KAMPAGNE_ROWS, KAMPAGNE_CERTIFICATES, KAMPAGNE_TOTAL = 6, 18, Decimal("10399.85")


@pytest.fixture
def target(settings, tmp_path) -> Target:
    return Target(settings, "sandbox", tmp_path / "ledger.sqlite3")


@pytest.fixture
def kampagne(tmp_path) -> Path:
    return Path(shutil.copy(SAMPLES / "kampagne.xlsx", tmp_path / "kampagne.xlsx"))


def _issued_money(sandbox) -> Decimal:
    return sum((c["Amount"] for c in sandbox.state.certificates), Decimal(0))


class _Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing on the way catches it."""


def test_issue_crash_then_retry_issues_every_certificate_once(target, kampagne, sandbox, monkeypatch):
    request = batches.ReadRequest()
    source = batches.read_input(kampagne, request)
    real_finish = Journal.finish_row
    finished = []

    def dies_after_the_third_commit(self, batch_id, row_number, status, **kw):
        # The commit of this row went through and was answered; the process dies before its outcome is recorded.
        if status == RowStatus.ISSUED and len(finished) == 2:
            raise _Crash()
        finished.append(row_number)
        return real_finish(self, batch_id, row_number, status, **kw)

    monkeypatch.setattr(Journal, "finish_row", dies_after_the_third_commit)
    with pytest.raises(_Crash):
        with batches.issuing(target, None, "issue kampagne.xlsx") as session:
            prepared = session.prepare(source, request, workers=1)
            assert prepared.needs_confirmation and len(prepared.orders) == KAMPAGNE_ROWS
            assert prepared.totals.certificates == KAMPAGNE_CERTIFICATES
            assert prepared.totals.amounts == {"DKK": KAMPAGNE_TOTAL}
            session.run(prepared, batches.Decision(confirmed=True))
    monkeypatch.setattr(Journal, "finish_row", real_finish)
    committed_before = sandbox.state.counts()["committed_orders"]
    assert committed_before == 3  # two recorded ISSUED, one committed but not recorded
    with Journal(target.ledger_default) as journal:
        batch = journal.batches()[0]
        steps = [(r.status, r.step) for r in journal.rows(batch.id)]
    assert steps[:2] == [(RowStatus.ISSUED, Step.COMMITTED)] * 2
    assert steps[2] == (RowStatus.PENDING, Step.COMMIT)  # may have happened: settle with the same payment id

    # Shown as UNKNOWN, not PENDING (none can exist yet), once no run holds the ledger (a fresh user's find).
    assert batches.batch_status(kampagne, target.ledger_default).counts == {"ISSUED": 2, "UNKNOWN": 1, "PENDING": 3}
    with Journal(target.ledger_default) as journal:
        with journal.issuing_lock("a run in progress"):
            assert batches.batch_progress(target.ledger_default, batch.id).counts["PENDING"] == 4  # in flight
    # A run killed with kill -9 leaves its .lock.info behind, but not the lock: the row is UNKNOWN all the same.
    import os

    info = Path(os.path.realpath(target.ledger_default) + ".lock.info")
    info.write_text("pid 1, issue kampagne.xlsx, since then", encoding="utf-8")
    assert batches.batch_progress(target.ledger_default, batch.id).counts["UNKNOWN"] == 1
    info.unlink()
    result = kampagne.with_name("kampagne.result.xlsx")
    assert result.exists()  # written on the way out, as after Ctrl-C
    import openpyxl

    sheet = openpyxl.load_workbook(result)["Result"]
    status_col = [c.value for c in sheet[1]].index("Status") + 1
    assert [sheet.cell(r, status_col).value for r in range(2, 2 + KAMPAGNE_ROWS)] == [
        "ISSUED", "ISSUED", "UNKNOWN", "PENDING", "PENDING", "PENDING"]
    again = batches.read_input(result, request, command="retry")
    assert again.batch_id == batch.id
    with batches.issuing(target, None, "retry kampagne.result.xlsx") as session:
        prepared = session.prepare(again, request, command="retry")
        assert prepared.already_issued == 2 and len(prepared.orders) == 4
        outcome = session.run(prepared, batches.Decision(confirmed=True))
    assert outcome.finished and outcome.counts == {RowStatus.ISSUED: KAMPAGNE_ROWS}
    counts = sandbox.state.counts()
    assert counts["committed_orders"] == KAMPAGNE_ROWS
    assert counts["certificates"] == KAMPAGNE_CERTIFICATES  # the third row's were not issued twice
    assert _issued_money(sandbox) == KAMPAGNE_TOTAL
    assert outcome.issued_in_all.certificates == KAMPAGNE_CERTIFICATES
    assert outcome.issued_in_all.amounts == {"DKK": KAMPAGNE_TOTAL}
    ws = openpyxl.load_workbook(result)["Result"]
    header = [c.value for c in ws[1]]
    statuses = [row[header.index("Status")] for row in ws.iter_rows(min_row=2, values_only=True)]
    assert statuses == ["ISSUED"] * KAMPAGNE_ROWS


def test_check_is_the_dry_run(target, sandbox):
    source = batches.read_input(SAMPLES / "fejl.xlsx", batches.ReadRequest(), command="validate")
    checked = batches.check(source, target, batches.ReadRequest())
    # fejl.xlsx: one valid row, one row per kind of mistake (rows 3-12), one more valid row.
    assert [c.row.number for c in checked.validation.invalid] == list(range(3, 13))
    assert [c.row.number for c in checked.validation.valid] == [2, 13]
    assert sandbox.state.counts()["customers"] == 0
    assert [m for m, *_ in sandbox.state.requests] == ["GET", "GET"]  # the catalogue, nothing else


def test_a_declined_batch_sends_nothing_and_leaves_no_batch(target, kampagne, sandbox):
    request = batches.ReadRequest()
    with batches.issuing(target, None, "issue") as session:
        prepared = session.prepare(batches.read_input(kampagne, request), request)
        outcome = session.run(prepared, batches.Decision(confirmed=False))
    assert outcome.declined and not outcome.finished
    assert batches.list_batches(target.ledger_default) == []
    assert sandbox.state.counts()["customers"] == 0


def test_a_reissue_needs_its_own_decision(target, kampagne, sandbox):
    request = batches.ReadRequest()
    with batches.issuing(target, None, "issue") as session:
        session.run(session.prepare(batches.read_input(kampagne, request), request), batches.Decision(confirmed=True))
    assert sandbox.state.counts()["certificates"] == KAMPAGNE_CERTIFICATES
    with batches.issuing(target, None, "issue") as session:
        prepared = session.prepare(batches.read_input(kampagne, request), request, allow_reissue=True)
        assert len(prepared.reissue) == KAMPAGNE_ROWS
        refused = session.run(prepared, batches.Decision(confirmed=True))  # "yes" alone is not enough
    assert refused.declined and sandbox.state.counts()["certificates"] == KAMPAGNE_CERTIFICATES
    with batches.issuing(target, None, "issue") as session:
        prepared = session.prepare(batches.read_input(kampagne, request), request, allow_reissue=True)
        outcome = session.run(prepared, batches.Decision(confirmed=True, reissue_confirmed=True))
    assert outcome.issued_now.certificates == KAMPAGNE_CERTIFICATES
    assert sandbox.state.counts()["certificates"] == 2 * KAMPAGNE_CERTIFICATES


def test_the_stop_event_leaves_the_rest_pending_and_a_retry_finishes(target, kampagne, sandbox):
    request = batches.ReadRequest()
    stop = threading.Event()
    seen: list[batches.RowOutcome] = []

    def progress(row: batches.RowOutcome) -> None:
        seen.append(row)
        stop.set()  # the web page's stop button, pressed after the first row

    with batches.issuing(target, None, "issue") as session:
        prepared = session.prepare(batches.read_input(kampagne, request), request, workers=1)
        outcome = session.run(prepared, batches.Decision(confirmed=True), progress=progress, stop=stop)
    assert outcome.interrupted
    assert [(r.row_number, r.status) for r in seen] == [(2, RowStatus.ISSUED)]
    assert outcome.counts == {RowStatus.ISSUED: 1, RowStatus.PENDING: KAMPAGNE_ROWS - 1}
    assert sandbox.state.counts()["committed_orders"] == 1

    status = batches.batch_status(kampagne, target.ledger_default)
    assert status.counts == {"ISSUED": 1, "PENDING": KAMPAGNE_ROWS - 1} and len(status.attention) == KAMPAGNE_ROWS - 1
    with batches.issuing(target, None, "issue") as session:
        prepared = session.prepare(batches.read_input(kampagne, request), request)
        assert prepared.plan.resumed and prepared.already_issued == 1
        outcome = session.run(prepared, batches.Decision(confirmed=True))
    assert outcome.finished
    assert sandbox.state.counts()["certificates"] == KAMPAGNE_CERTIFICATES
    history = batches.list_batches(target.ledger_default)
    assert len(history) == 1 and history[0].issued.amounts == {"DKK": KAMPAGNE_TOTAL}


def test_invalid_rows_block_the_batch_before_anything_is_recorded(target, sandbox, tmp_path):
    fejl = Path(shutil.copy(SAMPLES / "fejl.xlsx", tmp_path / "fejl.xlsx"))
    request = batches.ReadRequest()
    with batches.issuing(target, None, "issue") as session:
        prepared = session.prepare(batches.read_input(fejl, request), request)
    assert prepared.blocked and prepared.blocking
    assert prepared.output == tmp_path / "fejl.validation.xlsx"
    assert batches.list_batches(target.ledger_default) == []
    assert sandbox.state.counts()["customers"] == 0


# The faces translate; the money path is the library's (issue #10).
FORBIDDEN_IN_FACES = {"journal", "client", "issue", "results", "sheet", "reading", "audit", "result_input"}


@pytest.mark.parametrize("module", sorted([*(REPO / "flexybulk" / "cli").glob("*.py"), *(REPO / "flexybulk" / "web").glob("*.py")]),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_faces_reach_ledger_client_and_runner_only_through_the_library(module):
    imported = set()
    for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 2 and node.module:
            imported.add(node.module.split(".")[0])
        if isinstance(node, ast.ImportFrom) and node.level == 2 and not node.module:
            imported.update(a.name for a in node.names)
    assert imported & FORBIDDEN_IN_FACES == set()
