"""Issuing: the ledger and its lock, planning (prepare), the decision, the run and its result sheet."""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Callable, Iterator

from ..client import FlexyboxClient
from ..errors import ConfigError, InputFileError, SpendingLimit
from ..issue import BatchRunner
from ..journal import Journal, RowRecord
from ..model import Catalogue, RowStatus
from ..planning import plan_batch
from ..records import order_from_content
from ..refusals import RefusalWords
from ..result_input import check_moved_values, check_result_lines, existing_result
from ..results import default_output_path, numbered_path, write_result_sheet
from ..target import Target
from ..validate import Totals
from .decisions import Decision, Outcome, Prepared, RowOutcome
from .inputs import Input, ReadRequest, validate_input


_WRITTEN_IN_PLACE = (".xlsx", ".csv", ".tsv", ".txt")  # the formats a result sheet is written in


def ledger_of(target: Target, ledger: Path | str | None) -> tuple[Path, bool]:
    """The ledger a command uses (``ledger`` if given, else the target's default) and whether it was named."""
    if ledger:
        return Path(ledger).expanduser(), True
    return target.ledger_default, target.ledger_named


def open_ledger(target: Target, ledger: Path | str | None, *, new_ledger: bool = False) -> Journal:
    """Open the ledger a run issues with; only the default one, or one asked for with ``new_ledger``, may be created.

    Raises:
        LedgerMissing: a named ledger does not exist and ``new_ledger`` is false (issue #11: a
            mistyped path must not start an empty ledger that would issue everything again).
        JournalError: the ledger cannot be opened.
    """
    path, named = ledger_of(target, ledger)
    return Journal(path, create=new_ledger or not named)


@contextlib.contextmanager
def issuing(target: Target, ledger: Path | str | None, what: str, *, new_ledger: bool = False) -> Iterator["Issuing"]:
    """Open the ledger (:func:`open_ledger`), hold its issuing lock, and open a client.

    ``what`` (e.g. ``"issue kampagne.xlsx"``) is shown to another run that
    finds the lock taken. One process issues with a ledger at a time: two
    runs planning together could each issue the same rows.

    The live catalogue is fetched before the ledger is opened (and kept as
    ``Issuing.catalogue``), so a refused token leaves no new ledger behind.

    Raises:
        ApiError: the catalogue could not be fetched (``AuthError`` for a refused token).
        LedgerMissing: a named ledger does not exist and ``new_ledger`` is false.
        JournalError: the ledger cannot be opened.
        LedgerBusy: another process holds the issuing lock.
    """
    with FlexyboxClient(target.settings) as client:
        # The catalogue first: a refused token or an unreachable Flexybox must not leave a new, empty ledger behind.
        catalogue = client.get_catalogue()
        with open_ledger(target, ledger, new_ledger=new_ledger) as journal, journal.issuing_lock(what):
            yield Issuing(target, journal, client, catalogue)


class Issuing:
    """Planning and running batches with one ledger, under its issuing lock (from :func:`issuing`)."""

    def __init__(self, target: Target, journal: Journal, client: FlexyboxClient, catalogue: Catalogue | None = None) -> None:
        self.target = target
        self.journal = journal
        self.client = client
        self.catalogue = catalogue

    @property
    def ledger(self) -> Path:
        """The ledger file in use."""
        return self.journal.path

    @property
    def ledger_created(self) -> bool:
        """True when this run created the ledger (it knew nothing before)."""
        return self.journal.created

    def prepare(self, source: Input, request: ReadRequest, *, command: str = "issue", output: Path | None = None,
                skip_invalid: bool = False, allow_reissue: bool = False, payment_type: str = "Mastercard",
                workers: int = 4, rate: float | None = None, first: int | None = None,
                max_total: dict[str | None, Decimal] | None = None, web_user: str | None = None,
                face: str = "cli", progress: Callable[[int], None] | None = None) -> Prepared:
        """Validate ``source`` against the live catalogue and plan its batch in the ledger.

        Spending guards (issue #11): ``first`` sends only the first N rows
        to send (a canary; the others stay PENDING for a retry), and
        ``max_total`` (currency -> the most this run may issue in it; the key
        ``None`` holds for every currency) refuses a run over it before any
        gift certificate call, leaving nothing planned behind.

        A result sheet (``source.batch_id``) continues its batch; another
        file resumes the latest batch made from the same bytes for this
        target, or starts a new one. Every id is in the ledger when this
        returns (unless blocked). ``output`` defaults to ``FILE.result.xlsx``
        (a result sheet given back is updated in place).

        Raises:
            ApiError: the catalogue could not be fetched.
            InputFileError: a result sheet's lines do not match its batch.
            JournalError: the ledger cannot be written, or names no such batch.
        """
        catalogue = self.catalogue or self.client.get_catalogue()
        validation = validate_input(source.sheet, catalogue, request, progress)
        journal, sheet = self.journal, source.sheet
        batch = (journal.get_batch(source.batch_id) if source.batch_id
                 else journal.find_batch_by_sha256(source.identity[0], self.target.name, source.identity[1]))
        adopted = False
        if source.batch_id and batch is None:
            # The ledger does not know this result sheet's batch: the sheet is its only record. Adopt it.
            from ..adoption import adopt_result_sheet

            batch = adopt_result_sheet(journal, source.path, validation, batch_id=source.batch_id, lines=source.lines,
                                       target=self.target.name)
            adopted = True
        known = {r.row_number: r for r in journal.rows(batch.id)} if batch else {}
        if source.batch_id and batch is not None:
            check_result_lines(sheet, source.lines, known)
            check_moved_values(validation, source.lines, known)
        if not source.batch_id:
            self._refuse_a_lost_batch(source)
        expected = None if allow_reissue else (batch.id if batch else None)
        out = self._result_path(source, Path(output) if output else None, expected)
        prepared = Prepared(command, source, validation, self.target, out, adopted=adopted, face=face)

        # Rows the ledger already issued are never re-sent, so edits to them cannot block a rerun.
        issued_rows = {n for n, r in known.items() if r.status == RowStatus.ISSUED}
        blocking = [c for c in validation.invalid if c.row.number not in issued_rows]
        if blocking and not skip_invalid:
            validation.checks = [c for c in validation.checks if c.row.number not in issued_rows or c.valid]
            prepared.blocking = blocking
            prepared.output = default_output_path(source.path, "validation")
            return prepared

        prepared.options = {"command": command, "payment_type": payment_type, "department": request.department,
                            "skip_invalid": skip_invalid, "allow_reissue": allow_reissue, "workers": workers,
                            "rate": rate, "sheet": sheet.sheet_name, "target": self.target.name}
        prepared.plan = plan_batch(journal, validation, input_path=str(source.path.resolve()), target=self.target.name,
                                   options=prepared.options, batch_id=source.batch_id, allow_reissue=allow_reissue,
                                   web_user=web_user, identity=source.identity)
        if first is not None:
            prepared.plan.hold_after(first)
        checks = {c.row.number: c for c in validation.checks}
        records = {r.row_number: r for r in journal.rows(prepared.plan.batch.id)}
        # What will really be sent: a row whose commit may already have gone through is settled exactly as
        # that commit was sent (issue #3), whatever the line says now, and is shown and counted so.
        prepared.orders = [order_from_content(rec.commit_content, n)
                           if (rec := records[n]).commit_may_have_happened and rec.commit_content is not None
                           else checks[n].order for n in prepared.plan.to_send]
        for order in prepared.orders:
            prepared.totals.add(order)
        prepared.in_doubt = [n for n in prepared.plan.to_send if records[n].commit_may_have_happened]
        over = over_limit(prepared.totals, max_total or {})
        if over:
            self.decline(prepared)
            raise SpendingLimit(
                f"Nothing was issued: this run would issue {over}, more than --max-total allows. "
                "Split the file, raise --max-total if the total is right, or use --first N to issue a first part.")
        return prepared

    def _refuse_a_lost_batch(self, source: Input) -> None:
        """Stop when ``FILE.result.xlsx`` beside the input records a batch for this Flexybox that the ledger does not know.

        That is what a lost ledger (a new laptop, a cleaned profile) or a
        colleague's ledger looks like (issue #11): the result sheet is then
        the only record of what was issued, and the way on is to adopt it.

        Raises:
            InputFileError: such a result sheet lies beside the input.
        """
        beside = existing_result(default_output_path(source.path, "result"))
        if beside is None or not beside.readable or self.journal.get_batch(beside.batch_id) is not None:
            return
        if beside.target not in (None, self.target.name):
            return  # another Flexybox's (e.g. the sandbox's) result sheet: it is kept, and this run writes beside it
        raise InputFileError(
            f"{beside.path.name} beside {source.path.name} records batch {beside.batch_id}, which the ledger "
            f"{self.journal.path} does not know: it was issued with another ledger (another laptop, or a ledger that was "
            f"lost). Nothing was issued now. To finish that batch with its own ids, run: flexybulk retry {beside.path} "
            "(it adopts the batch from the sheet). Or use the ledger that issued it (--ledger), or move the old result "
            "sheet away if it is obsolete.")

    def _result_path(self, source: Input, output: Path | None, batch_id: str | None) -> Path:
        """Where the result sheet goes: never over a result sheet of another batch, nor over a file that is not one.

        A result sheet given back is updated in place; ``--output`` is used as
        given unless it holds something else (then refused); the default
        ``FILE.result.xlsx`` steps aside to ``FILE (2).result.xlsx`` and so on
        when it holds another batch's result sheet or a file it cannot read.

        Raises:
            ConfigError: ``output`` exists and is not this batch's result sheet.
        """
        if source.batch_id and output is None:
            if source.path.suffix.lower() in _WRITTEN_IN_PLACE:
                return source.path
            # An .ods, .xls or .xlsm result sheet is not rewritten in a format it is not: an .xlsx beside it.
            path, n = source.path.with_suffix(".xlsx"), 2
            while (existing := existing_result(path)) is not None and existing.batch_id != source.batch_id:
                path, n = source.path.with_name(f"{source.path.stem} ({n}).xlsx"), n + 1
            return path
        if output is not None:
            existing = existing_result(output)
            if existing is not None and (batch_id is None or existing.batch_id != batch_id):
                what = (f"the result sheet of batch {existing.batch_id}" if existing.readable
                        else "a file that is not a result sheet of this batch")
                raise ConfigError(f"{output} exists and is {what}, so it is not overwritten and nothing was issued. "
                                  "Choose another --output, or move that file away.")
            return output
        default = default_output_path(source.path, "result")
        path, n = default, 2
        while (existing := existing_result(path)) is not None and (batch_id is None or existing.batch_id != batch_id):
            path, n = numbered_path(default, "result", n), n + 1
        return path

    def decline(self, prepared: Prepared) -> Outcome:
        """The person said no: a batch planned by this run leaves nothing behind (it sent nothing)."""
        if prepared.plan is not None and not prepared.plan.resumed:
            self.journal.discard_unsent_batch(prepared.batch.id)
        return Outcome(prepared, None, declined=True)

    def run(self, prepared: Prepared, decision: Decision, *, progress: Callable[[RowOutcome], None] | None = None,
            stop: threading.Event | None = None) -> Outcome:
        """Issue the prepared batch if ``decision`` allows it, then write its result sheet.

        Not confirmed (or a reissue or near-duplicates not confirmed
        separately): nothing is sent and the outcome says ``declined``. Otherwise rows run
        ``workers`` at a time; ``progress`` gets each finished row (from a
        worker thread); setting ``stop`` (or Ctrl-C in the calling thread)
        takes no new rows, lets the calls in flight finish and leaves the
        rest PENDING. The result sheet is written in every case, even when
        the run itself failed, so that nothing already issued goes unrecorded.

        Raises:
            InputFileError: the result sheet cannot be written (the ledger has every outcome).
            JournalError: the ledger cannot be written.
        """
        if prepared.blocked:
            raise ValueError("a blocked batch cannot run; correct its invalid rows first")
        if prepared.reissue and not decision.reissue_confirmed:
            return self.decline(prepared)
        if prepared.near and not decision.near_confirmed:
            return self.decline(prepared)
        if prepared.needs_confirmation and not decision.confirmed:
            return self.decline(prepared)
        from ..audit import AuditLog, audit_path

        plan, journal = prepared.plan, self.journal
        for r in plan.rows:
            if r.action == "skip":
                journal.finish_row(plan.batch.id, r.row_number, RowStatus.SKIPPED, error=r.message)
            elif r.action == "held":
                journal.finish_row(plan.batch.id, r.row_number, RowStatus.PENDING, error=r.message)
        audit = AuditLog(audit_path(journal.path, plan.batch.id), secrets=(self.client.settings.token.reveal(),))
        audit.run_started(command=prepared.command, input_path=str(prepared.input.path.resolve()),
                          sha256=prepared.input.sheet.sha256, batch_id=plan.batch.id,
                          options={**prepared.options, "web_user": decision.user} if decision.user else prepared.options)
        self.client.on_call = audit.call

        def on_row(rec: RowRecord, status: RowStatus, error: str | None) -> None:
            if progress is not None:
                progress(RowOutcome(rec.row_number, status, error))

        outcome = Outcome(prepared, prepared.output)
        # The runner knows no sheet: these words name the sheet's column when Flexybox refuses a value.
        words = RefusalWords.for_sheet(prepared.input.sheet, payment_type=prepared.options["payment_type"])
        runner = BatchRunner(self.client, journal, payment_type=prepared.options["payment_type"],
                             workers=prepared.options["workers"], on_row=on_row, stop=stop, describe_refusal=words)
        try:
            report = runner.run(plan)
            outcome.sent, outcome.interrupted, outcome.fatal = report.outcomes, report.interrupted, report.fatal
            outcome.already, outcome.earlier = report.already, report.earlier
        finally:
            self.client.on_call = None
            outcome.records = {r.row_number: r for r in journal.rows(plan.batch.id)}
            try:
                write_result(prepared, outcome.records, journal.path)
            finally:
                counts = Counter(r.status.value for r in outcome._mine())
                audit.close(**{k.lower(): v for k, v in counts.items()})
        return outcome


def write_result(prepared: Prepared, records: dict[int, RowRecord], ledger_path: Path) -> Path:
    """Write ``prepared``'s result sheet from the ledger's ``records``; returns its path.

    Raises:
        InputFileError: the file cannot be written.
    """
    return write_result_sheet(prepared.output, prepared.input.sheet, prepared.validation, prepared.batch, records,
                              ledger_path, face=prepared.face)


def over_limit(totals: Totals, limits: dict[str | None, Decimal]) -> str | None:
    """``"12,500.00 DKK (limit 10,000.00 DKK)"`` for every currency over its limit, or ``None``.

    ``limits`` maps a currency (or ``None``: every currency) to the most that
    may be issued in it, as ``Decimal``. Once any limit is given, a currency
    that none covers counts as over it: a guard meant for DKK but typed as
    EUR must not leave DKK unlimited.
    """
    from ..validate import format_money

    over = []
    for currency, amount in sorted(totals.amounts.items()):
        limit = limits.get(currency, limits.get(None))
        if limits and limit is None:
            over.append(f"{format_money(amount)} {currency} (no --max-total for {currency})")
        elif limit is not None and amount > limit:
            over.append(f"{format_money(amount)} {currency} (limit {format_money(limit)} {currency})")
    return ", ".join(over) or None
