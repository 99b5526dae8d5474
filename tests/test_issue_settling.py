"""Once a commit may have reached Flexybox, only a success settles it (issue #11): the runner and the ledger."""

from __future__ import annotations

import dataclasses
from collections import Counter
from urllib.parse import urlsplit

import pytest

from builders import make_sheet, person
from flexybulk.client import FlexyboxClient
from flexybulk.errors import AuthError, ConflictError
from flexybulk.issue import BatchRunner
from flexybulk.planning import plan_batch
from flexybulk.journal import Journal, Step
from flexybulk.model import RowStatus
from flexybulk.sandbox import Faults
from flexybulk.sandbox.state import Refusal
from flexybulk.settings import Secret
from flexybulk.validate import validate
from test_issue import expected_certificates, run

COMMITS = r"^POST .*/commit$"


@pytest.fixture
def journal(tmp_path):
    with Journal(tmp_path / "ledger.sqlite3") as j:
        yield j


def _run_with(client, journal, sheet, catalogue=None, **plan_kw):
    validation = validate(sheet, catalogue or client.get_catalogue())
    plan = plan_batch(journal, validation, input_path=str(sheet.path), target="sandbox-test", options={}, **plan_kw)
    return plan, BatchRunner(client, journal, workers=2).run(plan)


def _lose_every_commit_answer(settings, journal, sandbox, rows):
    """A first run whose commits all happen and all lose their answer: every row UNKNOWN at COMMIT."""
    sheet = make_sheet(rows)
    plan, report = run(dataclasses.replace(settings, max_attempts=1), journal, sheet, sandbox=sandbox,
                       faults=Faults(drop_rate=1.0, only=COMMITS))
    assert set(report.outcomes.values()) == {RowStatus.UNKNOWN}
    assert sandbox.state.counts()["certificates"] == expected_certificates(rows)
    sandbox.faults = Faults()
    return sheet, plan


def test_a_refused_retry_of_a_commit_leaves_the_row_unknown_and_a_rerun_settles_it(settings, sandbox, journal):
    rows = [person(i) for i in range(3)]

    def sleep(seconds):  # after the first row's first commit attempt (done, answer lost), refuse every commit
        sandbox.faults = Faults(refuse_rate=1.0, only=COMMITS)

    with FlexyboxClient(settings, sleep=sleep) as client:
        validation = validate(make_sheet(rows), client.get_catalogue())
        plan = plan_batch(journal, validation, input_path="x", target="sandbox-test", options={})
        sandbox.faults = Faults(drop_rate=1.0, only=COMMITS)
        report = BatchRunner(client, journal, workers=1).run(plan)
    # Row 2's retry was refused after its first attempt went through; rows 3 and 4 were refused at once.
    assert report.outcomes == {2: RowStatus.UNKNOWN, 3: RowStatus.FAILED, 4: RowStatus.FAILED}
    recs = journal.rows(plan.batch.id)
    assert [r.step for r in recs] == [Step.COMMIT, Step.ORDER, Step.ORDER]
    # The refusal in words (issue #13), as for a FAILED row; the raw answer stays in the audit log.
    assert recs[0].error.startswith("The commit may have gone through, although a retry of it was refused (Flexybox "
                                    "refused the payment type of the commit: The external payment type is not accepted")
    assert "POST /api" not in recs[0].error and "Payments[0]" not in recs[0].error
    assert "cannot issue twice" in recs[0].error and "Nothing was issued" not in recs[0].error
    assert "Nothing was issued for this row" in recs[1].error
    assert sandbox.state.counts()["committed_orders"] == 1
    sandbox.faults = Faults()
    _, report = run(settings, journal, make_sheet(rows), batch_id=plan.batch.id)
    assert set(report.outcomes.values()) == {RowStatus.ISSUED}
    assert sandbox.state.counts()["certificates"] == expected_certificates(rows)
    per_order = Counter(c["SalesOrderId"] for c in sandbox.state.certificates)
    for rec in journal.rows(plan.batch.id):
        assert per_order[rec.sales_order_id] == rec.content["quantity"]
        assert sorted(rec.certificate_numbers) == sorted(
            c["Number"] for c in sandbox.state.certificates if c["SalesOrderId"] == rec.sales_order_id)


def test_a_rerun_whose_customer_put_is_refused_keeps_the_unsettled_commit(settings, sandbox, journal, monkeypatch):
    rows = [person(i) for i in range(3)]
    sheet, plan = _lose_every_commit_answer(settings, journal, sandbox, rows)
    committed = sandbox.state.counts()["certificates"]

    def refusing(customer_id, body):  # the vendor now refuses the customers (a blocked domain, say)
        raise Refusal(400, "EmailAddress is blocked", "EmailAddress")

    monkeypatch.setattr(sandbox.state, "put_customer", refusing)
    _, report = run(settings, journal, sheet)
    assert set(report.outcomes.values()) == {RowStatus.UNKNOWN}
    recs = journal.rows(plan.batch.id)
    assert {r.step for r in recs} == {Step.COMMIT}  # never stepped back to CUSTOMER, not even while re-sending
    print("ERR2", recs[0].error)
    assert recs[0].error.startswith("The customer call failed while settling a commit sent by an earlier run: "
                                    "Flexybox refused the email address person.0@")
    assert "EmailAddress is blocked" in recs[0].error and "Nothing was issued" not in recs[0].error
    assert "PUT /api" not in recs[0].error
    monkeypatch.undo()

    # A corrected copy of the file (new bytes, same rows) finishes those rows with their ids: nothing twice.
    plan2, report2 = run(settings, journal, make_sheet(rows, name="kopi.xlsx"))
    assert all(r.earlier is not None and r.earlier.batch_id == plan.batch.id for r in plan2.rows)
    assert set(report2.outcomes.values()) == {RowStatus.ISSUED}
    assert sandbox.state.counts()["certificates"] == committed
    assert {r.status for r in journal.rows(plan.batch.id)} == {RowStatus.ISSUED}


def test_an_unsettled_commit_meeting_flexybox_down_stays_unknown(settings, journal):
    from flexybulk.sandbox import Sandbox

    rows = [person(i) for i in range(2)]
    sb = Sandbox(faults=Faults(drop_rate=1.0, only=COMMITS)).start()
    down = dataclasses.replace(settings, token=Secret(sb.token), crm_url=sb.url, pos_url=sb.url, api_url=sb.url,
                               max_attempts=1, connect_timeout=2)
    with FlexyboxClient(down) as client:
        catalogue = client.get_catalogue()
        plan, report = _run_with(client, journal, make_sheet(rows), catalogue=catalogue)
        assert set(report.outcomes.values()) == {RowStatus.UNKNOWN}
        sb.stop()
        _, report = _run_with(client, journal, make_sheet(rows), catalogue=catalogue)
    assert set(report.outcomes.values()) == {RowStatus.UNKNOWN}  # not PENDING "nothing was issued"
    rec = journal.rows(plan.batch.id)[0]
    assert rec.step == Step.COMMIT
    # Issue #13: no ids in the words, so that every row Flexybox could not be reached for reads alike.
    assert rec.error.startswith(f"Not sent: could not connect to {urlsplit(sb.url).netloc} to save the customer. ")
    assert "This row's commit was sent by an earlier run and may have gone through" in rec.error
    assert "Nothing was issued" not in rec.error
    assert sb.state.counts()["certificates"] == expected_certificates(rows)


def test_a_rejected_token_while_settling_an_unsettled_commit_is_unknown_and_stops(settings, sandbox, journal):
    rows = [person(i) for i in range(3)]
    sheet, plan = _lose_every_commit_answer(settings, journal, sandbox, rows)
    with FlexyboxClient(dataclasses.replace(settings, token=Secret("wrong"))) as client:
        validation = validate(sheet, FlexyboxClient(settings).get_catalogue())
        replan = plan_batch(journal, validation, input_path="x", target="sandbox-test", options={})
        report = BatchRunner(client, journal, workers=1).run(replan)
    assert isinstance(report.fatal, AuthError)
    assert list(report.outcomes.values()) == [RowStatus.UNKNOWN]  # one row taken, then the run stopped
    rec = journal.rows(plan.batch.id)[0]
    assert rec.step == Step.COMMIT and rec.status == RowStatus.UNKNOWN
    assert rec.error.startswith("Not finished: Flexybox refused the token while settling a commit that may have gone through")


def test_an_already_committed_answer_carrying_the_order_records_its_numbers(settings, sandbox, journal):
    class LostThenConflict(FlexyboxClient):
        """The commit happens (its answer lost), and the retry is refused 409 with the committed order."""

        def commit_sales_order(self, sales_order_id, **kw):
            answer = super().commit_sales_order(sales_order_id, **kw)
            raise ConflictError("POST .../commit answered 409 Conflict: This sales order has already been committed",
                                status=409, server_message="This sales order has already been committed",
                                outcome_unknown=True, earlier_outcome_unknown=True, response_body={"Order": answer})

    rows = [person(0, quantity=3), person(1, quantity=1)]
    with LostThenConflict(settings) as client:
        plan, report = _run_with(client, journal, make_sheet(rows))
    assert set(report.outcomes.values()) == {RowStatus.ISSUED}
    for rec in journal.rows(plan.batch.id):
        numbers = sorted(c["Number"] for c in sandbox.state.certificates if c["SalesOrderId"] == rec.sales_order_id)
        assert len(numbers) == rec.content["quantity"] and sorted(rec.certificate_numbers) == numbers
        assert rec.step == Step.COMMITTED
        # Issue #13: plurals right in row texts (one row of 3 certificates, one of 1).
        said = ("its gift certificates exist; their numbers are" if rec.content["quantity"] > 1
                else "its gift certificate exists; its number is")
        assert rec.error == (f"Flexybox answered that sales order {rec.sales_order_id} is already committed (409: This "
                             "sales order has already been committed): an earlier commit of this row went through, so "
                             f"{said} from that answer.")
    assert sandbox.state.counts()["certificates"] == 4


def test_a_commit_refused_at_its_only_attempt_is_failed_and_takes_corrections(settings, sandbox, journal):
    rows = [person(0)]
    plan, report = run(settings, journal, make_sheet(rows), sandbox=sandbox, faults=Faults(refuse_rate=1.0, only=COMMITS))
    assert report.outcomes == {2: RowStatus.FAILED}
    rec = journal.rows(plan.batch.id)[0]
    assert rec.step == Step.ORDER and not rec.commit_may_have_happened  # a definite refusal: back to "order saved"
    # Issue #13: the refused field (the external payment's Type) in words, and what to do about it.
    assert rec.error == ("Flexybox refused the payment type of the commit: The external payment type is not accepted for "
                         "this sales order; nothing was committed (a refusal injected by the sandbox's refuse_rate). "
                         "Nothing was issued for this row. Nothing in the row needs correcting: run flexybulk retry on the "
                         "result sheet with another payment type (--payment-type).")
    assert sandbox.state.counts()["certificates"] == 0


def test_finish_row_keeps_the_commit_step_of_a_failed_row_whose_commit_may_have_reached_flexybox(journal):
    from flexybulk.journal import NewRow, new_id

    content = {"price": "100", "quantity": 1}
    rows = [NewRow(n, RowStatus.PENDING, f"fp{n}", content, new_id(), new_id(), new_id()) for n in (2, 3)]
    batch = journal.create_batch(input_path="x", input_sha256="s", target="t", sheet_name=None, options={}, rows=rows)
    for n in (2, 3):
        journal.set_step(batch.id, n, Step.COMMIT, payment_amount="100", commit_content=content)
    journal.finish_row(batch.id, 2, RowStatus.FAILED, error="refused after a lost answer", commit_reached=True)
    journal.finish_row(batch.id, 3, RowStatus.FAILED, error="refused at once")
    kept, reset = journal.row(batch.id, 2), journal.row(batch.id, 3)
    assert (kept.status, kept.step, kept.commit_may_have_happened) == (RowStatus.FAILED, Step.COMMIT, True)
    assert (reset.status, reset.step, reset.commit_may_have_happened) == (RowStatus.FAILED, Step.ORDER, False)
    # A corrected copy's row with the same fingerprint adopts the row that kept its step, never the other.
    found = journal.rows_by_fingerprint(["fp2", "fp3"], target="t")
    assert [r.commit_may_have_happened for r in found["fp2"] + found["fp3"]] == [True, False]


def test_a_surprise_before_the_commit_is_pending_and_after_it_unknown(settings, sandbox, journal):
    """Issue #13: an unexpected error leaves a row UNKNOWN only when the ledger shows a commit may have been sent."""

    class Surprising(FlexyboxClient):
        def put_sales_order(self, body):
            if body["CustomerId"] == first_customer:
                raise RuntimeError("a bug before the commit")
            return super().put_sales_order(body)

        def commit_sales_order(self, sales_order_id, **kw):
            super().commit_sales_order(sales_order_id, **kw)  # issued...
            raise RuntimeError("a bug after the commit")  # ...and then a surprise

    rows = [person(0), person(1)]
    with Surprising(settings) as client:
        validation = validate(make_sheet(rows), client.get_catalogue())
        plan = plan_batch(journal, validation, input_path="x", target="sandbox-test", options={})
        first_customer = journal.rows(plan.batch.id)[0].customer_id
        report = BatchRunner(client, journal, workers=1).run(plan)
    assert report.outcomes == {2: RowStatus.PENDING, 3: RowStatus.UNKNOWN}
    before, after = journal.rows(plan.batch.id)
    assert before.error == ("Unexpected error (RuntimeError: a bug before the commit) before any commit was sent for this "
                            "row: nothing can have been issued. A rerun (flexybulk retry on the result sheet) finishes it "
                            "with the same ids.")
    assert after.error == "Unexpected error (RuntimeError: a bug after the commit). A rerun settles this row safely with the same ids."
    assert after.step == Step.COMMIT and before.step != Step.COMMIT
    assert sandbox.state.counts()["certificates"] == rows[1]["quantity"]
    _, report = run(settings, journal, make_sheet(rows), batch_id=plan.batch.id)
    assert set(report.outcomes.values()) == {RowStatus.ISSUED}
    assert sandbox.state.counts()["certificates"] == expected_certificates(rows)  # nothing twice
