"""Running a planned batch: each row through the vendor's flow, ``workers`` rows at a time.

The flow per row (vendor help article, ``shared/flexybox-api.md`` part A):
PUT the customer -> PUT the sales order -> POST the commit with one external
payment. Every id was chosen and recorded in the ledger at planning
(:mod:`.planning`), and each step is recorded (``Journal.set_step``): the
commit step, with the payment amount and the content committed, is on disk
before the commit is sent; the customer and sales order steps, whose PUTs are
idempotent by those ids, are not waited for.

- An unfinished row is resumed with its recorded ids: the two PUTs are
  idempotent by id, and the commit is re-posted with the *same* external
  payment id, which the vendor ignores if it already has it.
- A commit that may have reached Flexybox (in this run or an earlier one) is
  settled only by a success, or by Flexybox saying the order is already
  committed; a refusal of a retry leaves the row UNKNOWN at its COMMIT step
  (issue #11; the rules are in :mod:`.outcome`).
- A ledger record that cannot be written stops the run at once: no call goes
  out without its record.

The runner never prints: it reports through callbacks, and the faces draw.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable

from .answers import says_already_committed
from .client import FlexyboxClient, certificate_numbers
from .errors import ApiError, ConflictError, FlexybulkError, JournalError
from .journal import Journal, RowRecord, Step
from .model import RowStatus
from .outcome import DescribeRefusal, Outcome, after_failure
from .planning import Plan
from .records import content_fingerprint, content_total, describe_content


@dataclass
class RunReport:
    """What a run did.

    Attributes:
        outcomes: row number -> status after the run, for the rows the run sent.
        interrupted: Ctrl-C stopped the run before every row was sent.
        fatal: the error that stopped the run at once (a rejected token), if any.
    """

    outcomes: dict[int, RowStatus] = field(default_factory=dict)
    interrupted: bool = False
    fatal: FlexybulkError | None = None
    already: set[int] = field(default_factory=set)
    """Rows that Flexybox already held committed under their ids (issued by another ledger): nothing new was issued."""
    earlier: set[int] = field(default_factory=set)
    """Rows whose commit by an earlier run had gone through, as Flexybox answered: settled, nothing new was issued."""


class BatchRunner:
    """Runs a plan's rows through the vendor's flow, ``workers`` rows at a time.

    Each row's three calls run in order on one worker thread; rows run
    concurrently. The ledger records each step; the commit's record is on disk
    before the commit is sent (see the module docstring). A failure in
    one row is recorded and the run goes on; a rejected token
    (:class:`~flexybulk.errors.AuthError`) stops taking new rows at once.

    Args:
        client: the Flexybox client (thread-safe).
        journal: the ledger (thread-safe).
        payment_type: the external payment's ``Type`` (``"Mastercard"`` in the vendor's example).
        workers: rows in flight at once.
        progress: called from worker threads with each finished row's status.
        on_row: called from worker threads with each finished row's record (as planned), status and error text.
        stop: an event that, once set (a web page's stop button, SIGTERM), stops taking new rows like :meth:`stop`.
        describe_refusal: says a vendor's refusal in the input sheet's words
            (:class:`~flexybulk.refusals.RefusalWords`, built by the caller that knows the sheet);
            without it a refused field is named in words only.
    """

    def __init__(self, client: FlexyboxClient, journal: Journal, *, payment_type: str = "Mastercard",
                 workers: int = 4, progress: Callable[[RowStatus], None] | None = None,
                 on_row: Callable[[RowRecord, RowStatus, str | None], None] | None = None,
                 stop: threading.Event | None = None, describe_refusal: DescribeRefusal | None = None) -> None:
        self.client = client
        self.describe_refusal = describe_refusal
        self.journal = journal
        self.payment_type = payment_type
        self.workers = workers
        self.progress = progress or (lambda status: None)
        self.on_row = on_row or (lambda rec, status, error: None)
        self._stop = stop if stop is not None else threading.Event()
        self._fatal: FlexybulkError | None = None
        # Rows in a row whose calls could not even reach Flexybox: past a few, it is down, and
        # grinding through every remaining row's back-off would only waste the user's time.
        self._unreachable = 0
        self._unreachable_lock = threading.Lock()
        self._already: set[int] = set()
        self._earlier: set[int] = set()

    def stop(self) -> None:
        """Stop taking new rows; rows in flight finish."""
        self._stop.set()

    def run(self, plan: Plan) -> RunReport:
        """Send every row the plan says to send; return what happened.

        ``workers`` threads each take the next unsent row, in input order,
        until none is left: rows in flight = workers, with no hand-off
        through the calling thread between rows (issue #4).

        Ctrl-C (``KeyboardInterrupt`` in the calling thread) stops taking new
        rows, lets the calls in flight finish, and returns with
        ``interrupted=True``; unsent rows stay PENDING in the ledger. Every
        outcome is on disk when this returns (``Journal.flush``).
        """
        report = RunReport()
        records = {r.row_number: r for r in self.journal.rows(plan.batch.id)}
        queue = iter([records[n] for n in plan.to_send])
        take = threading.Lock()

        def next_row() -> RowRecord | None:
            with take:
                return None if self._stop.is_set() else next(queue, None)

        finished = threading.Event()  # wakes the calling thread after each row, so Ctrl-C is seen at once

        def work() -> None:
            try:
                while (rec := next_row()) is not None:
                    report.outcomes[rec.row_number] = self._issue_row(rec)
                    finished.set()
            except BaseException:
                self._stop.set()  # a surprise in the runner itself: take no more rows; run() re-raises it
                raise

        def wait_a_little(pending: set) -> set:
            finished.wait(0.5)
            finished.clear()
            return {f for f in pending if not f.done()}

        threads = max(1, min(self.workers, len(plan.to_send)))
        futures: list = []
        try:
            with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="flexybulk-row") as pool:
                futures = [pool.submit(work) for _ in range(threads)]
                for fut in futures:
                    fut.add_done_callback(lambda _: finished.set())
                pending = set(futures)
                try:
                    while pending:
                        pending = wait_a_little(pending)
                except KeyboardInterrupt:
                    report.interrupted = True
                    self._stop.set()
                    while pending:
                        try:
                            pending = wait_a_little(pending)
                        except KeyboardInterrupt:
                            continue  # a second Ctrl-C: the calls in flight still finish, so nothing is lost
        finally:
            try:
                self.journal.flush()
            except JournalError as exc:  # outcomes that could not be written: the run's end, said once
                if self._fatal is None:
                    self._fatal = exc
        for fut in futures:
            fut.result()  # re-raises a worker's surprise, after the rows in flight finished
        report.fatal = self._fatal
        report.already = set(self._already)
        report.earlier = set(self._earlier)
        if self._stop.is_set() and self._fatal is None:
            report.interrupted = True
        return report

    def _issue_row(self, rec: RowRecord) -> RowStatus:
        if self._stop.is_set():
            return RowStatus.PENDING
        try:
            outcome = self._flow(rec)
        except JournalError as exc:
            # A record that could not be written (disk full, read-only) means the next call would go out with
            # nothing on disk to settle it by: stop at once. This row's call waiting for the record was not sent.
            self._fatal = exc
            self._stop.set()
            self.progress(RowStatus.PENDING)
            self.on_row(rec, RowStatus.PENDING, str(exc))
            return RowStatus.PENDING
        except Exception as exc:  # one row's surprise must not stop the batch or lose its record
            outcome = self._after_surprise(rec, exc)
        status = outcome.status
        if outcome.already:
            self._already.add(rec.row_number)
        if outcome.earlier:
            self._earlier.add(rec.row_number)
        if outcome.fatal is not None:  # a rejected token: take no more rows
            self._fatal = outcome.fatal
            self._stop.set()
            self.journal.finish_row(rec.batch_id, rec.row_number, status, error=outcome.error, wait=False,
                                    commit_reached=outcome.commit_reached)
            self.progress(status)
            self.on_row(rec, status, outcome.error)
            return status
        with self._unreachable_lock:
            self._unreachable = self._unreachable + 1 if outcome.unreachable else 0
            if self._unreachable >= max(3, self.workers) and self._fatal is None:
                self._fatal = ApiError(
                    f"Stopped: Flexybox could not be reached for {self._unreachable} rows in a row. Check the network and "
                    "the base URLs. The rows not sent are PENDING in the result sheet; run flexybulk retry on it when "
                    "Flexybox can be reached again.")
                self._stop.set()
        # The outcome precedes no call, so the worker goes on at once; the record reaches the disk with this
        # worker's next step record (same transaction) or at the end of run() (Journal.flush).
        self.journal.finish_row(rec.batch_id, rec.row_number, status, error=outcome.error,
                                certificate_numbers=outcome.numbers, settles=rec.settles, wait=False,
                                content=outcome.content, commit_reached=outcome.commit_reached,
                                fingerprint=content_fingerprint(outcome.content) if outcome.content else None)
        self.progress(status)
        self.on_row(rec, status, outcome.error)
        return status

    def _after_surprise(self, rec: RowRecord, exc: Exception) -> Outcome:
        """A row's outcome after an unexpected error in its flow: UNKNOWN if a commit may have been sent, else PENDING.

        The ledger says which: the commit step is on disk before any commit
        is sent, so a row whose record has no commit step sent none, and no
        gift certificate can exist for it (issue #13: PENDING, not UNKNOWN).
        """
        what = f"Unexpected error ({type(exc).__name__}: {exc})"
        try:
            now = self.journal.row(rec.batch_id, rec.row_number)
            reached = rec.commit_may_have_happened or now is None or now.commit_may_have_happened
        except Exception:  # the ledger cannot say: assume the worst
            reached = True
        if reached:
            return Outcome(RowStatus.UNKNOWN, f"{what}. A rerun settles this row safely with the same ids.", commit_reached=True)
        return Outcome(RowStatus.PENDING, f"{what} before any commit was sent for this row: nothing can have been issued. "
                       "A rerun (flexybulk retry on the result sheet) finishes it with the same ids.")

    def _flow(self, rec: RowRecord) -> Outcome:
        c = rec.content
        note = None
        # A commit sent by an earlier run that nothing settled: only a success may settle it now, never a
        # refusal (outcome.after_failure), and the ledger keeps the row at COMMIT until then.
        sent_before = rec.commit_may_have_happened
        if sent_before and rec.commit_content is not None:
            # The commit may already have gone through with the content it was sent for. Settle exactly
            # that (same order body, same payment id and amount): sending edited values under these ids
            # could leave the ledger saying something other than what was issued.
            if rec.commit_content != rec.content:
                note = (f"Settled exactly as first sent ({describe_content(rec.commit_content)}), because its commit may "
                        "already have gone through when the row was changed; the changes were not applied. "
                        "If the changed version should be issued too, add it as a new row.")
            c = rec.commit_content
        total = content_total(c)
        step = "customer"
        already = False  # Flexybox held the order committed before this run (see below)
        try:
            # The customer and sales order PUTs are idempotent by ids that are on disk since planning, so
            # their step records need not be on disk before the call (one sync less per row each, issue #4):
            # lost in a crash, a rerun repeats the PUTs with the same ids. The commit's record must be.
            # A row whose commit may have happened keeps its COMMIT step meanwhile, so that a crash or a
            # failure here cannot make it look as if no commit had ever been sent.
            if not sent_before:
                self.journal.set_step(rec.batch_id, rec.row_number, Step.CUSTOMER, wait=False)
            self.client.put_customer(
                rec.customer_id, full_name=c["name"], email=c["email"], phone=c.get("phone"),
                street_address=c.get("address"), postal_code=c.get("postal_code"),
                postal_district=c.get("city"), country_code=c.get("country"),
            )
            step = "sales order"
            if not sent_before:
                self.journal.set_step(rec.batch_id, rec.row_number, Step.ORDER, wait=False)
            body = FlexyboxClient.sales_order_body(
                rec.sales_order_id, customer_id=rec.customer_id, department_id=c["department_id"],
                gift_certificate_type_id=c["type_id"], quantity=int(c["quantity"]), price=Decimal(c["price"]),
                currency=c["currency"],
            )
            try:
                answer = self.client.put_sales_order(body)
                # No commit of ours was ever recorded for this row, yet Flexybox holds the order committed: another run
                # of this very file (another ledger or laptop; the ids are derived from the file) committed it.
                already = rec.payment_amount is None and _is_committed(answer)
            except ConflictError as exc:
                if rec.payment_amount is None:
                    # The ids are this file's own (derived_id): only another run of the same file, from another
                    # ledger, can have committed an order under them, with other values (other options, another
                    # catalogue). Its gift certificates exist; sending anything else would be a second issue.
                    return Outcome(RowStatus.SKIPPED, (
                        f"Already committed in Flexybox under this row's ids (sales order {rec.sales_order_id}) by another "
                        f"run of this file, with other values ({exc.server_message or exc}); nothing was issued now. "
                        "Another ledger or laptop issued it: check that sales order in Flexybox."), already=True)
                if rec.commit_content is None:
                    raise
                # The order was committed by an earlier attempt of ours, with the content recorded then.
                # Re-post that commit (same payment id, same amount): the vendor ignores the repeat and
                # answers the committed order. Nothing new is issued.
                c, total = rec.commit_content, Decimal(rec.payment_amount)
                note = (f"This order had already been committed by an earlier run ({describe_content(c)}); "
                        "later changes to the row were not applied.")
            step = "commit"
            self.journal.set_step(rec.batch_id, rec.row_number, Step.COMMIT, payment_amount=str(total), commit_content=c)
            # Safe to retry, and to repeat on a rerun, only because payment_id was fixed and recorded
            # before the first attempt: the vendor ignores a second post with the same payment id.
            answer = self.client.commit_sales_order(rec.sales_order_id, payment_id=rec.payment_id, amount=total,
                                                    payment_type=self.payment_type)
            if already:
                note = ("Already committed in Flexybox before this run, under the same ids: another ledger or laptop issued "
                        "this file. Nothing new was issued; the certificate numbers are the existing ones.")
            return Outcome(RowStatus.ISSUED, note, certificate_numbers(answer), None if c == rec.content else c, already=already)
        except ApiError as exc:  # a rejected token too: after_failure marks it fatal
            outcome = after_failure(step, exc, sales_order_id=rec.sales_order_id, commit_sent_before=sent_before,
                                    note=note, content=None if c == rec.content else c, sent=c,
                                    describe_refusal=self.describe_refusal)
            outcome.already = already and outcome.status == RowStatus.ISSUED
            # Flexybox said an earlier commit of ours went through: the certificates are that run's, not this one's.
            outcome.earlier = sent_before and outcome.status == RowStatus.ISSUED and says_already_committed(exc)
            return outcome


def _is_committed(order: Any) -> bool:
    """True when a sales order answer says the order is committed (``"Status": "Committed"``, any case).

    The vendor's article does not say what the PUT answers; the sandbox answers
    the order with its status (``shared/flexybox-api.md`` part B). An answer
    without a status says nothing, and the row is then simply issued.
    """
    if not isinstance(order, dict):
        return False
    status = next((v for k, v in order.items() if str(k).lower() == "status"), None)
    return isinstance(status, str) and status.strip().lower() == "committed"
