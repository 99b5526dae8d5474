"""The batch use cases: the one core that the command line and the web page both call.

Each use case takes plain values and returns plain data (dataclasses) that
a face renders; nothing here prints, prompts or exits, and no Click is
imported. The money rules live here (and in the modules this calls) once:

- :func:`read_input` reads a sheet; a result sheet given back is tied to its batch.
- :func:`check` is the dry run: the live catalogue, every row validated,
  and what the ledger already knows about the rows.
- :func:`issuing` holds the ledger's issuing lock and a client; in it,
  :meth:`Issuing.prepare` plans an issue or a retry (the rows to send, the
  totals, the rows already issued, the warnings, everything a confirmation
  must show) and :meth:`Issuing.run` runs it once the face passes back a
  :class:`Decision`, writing the result sheet whatever happens.
- :func:`batch_status`, :func:`list_batches` and :func:`make_template`.

Rules kept here (sources in brackets): an issued row is never sent again,
whatever was edited [issue #3]; a row issued by an earlier batch is skipped
unless a reissue is asked for *and* confirmed, and ``yes`` alone never
confirms a reissue [issue #3]; invalid rows stop the batch unless
``skip_invalid`` [issue #2]; a batch declined at the confirmation leaves
nothing behind when it was new and sent nothing; the result sheet is
written after every run, interrupted or not [issue #3].
"""

from __future__ import annotations

import contextlib
import os
import threading
from decimal import Decimal
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from .client import FlexyboxClient
from .errors import ConfigError, FlexybulkError, InputFileError, SpendingLimit
from .issue import BatchRunner
from .planning import Plan, PlannedRow, plan_batch
from .records import issued_totals, row_ranges, row_state_text, same_words
from .refusals import RefusalWords
from .journal import BatchRecord, Journal, RowRecord
from .model import Catalogue, Order, RowStatus, Sheet
from .result_input import check_moved_values, check_result_lines, existing_result, looks_like_own_sheet, result_sheet_batch, validation_sheet_identity
from .results import default_output_path, numbered_path, result_sheet, validation_sheet, write_output
from .settings import canonical_target
from .target import Target
from .validate import RowCheck, Totals, Validation

MIB = 1024 * 1024
_WRITTEN_IN_PLACE = (".xlsx", ".csv", ".tsv", ".txt")  # the formats a result sheet is written in


@dataclass(frozen=True)
class ReadRequest:
    """How to read an input sheet and which defaults its rows get.

    Attributes:
        sheet: the worksheet to read, or ``None`` for the one visible sheet with recipients.
        columns: field name -> header, for columns the reader does not recognise
            (``{"amount": "Værdi i kr"}``; field names as in ``model.Field``).
        department: the department (name or id) for rows without one.
        max_file_size: bytes; larger files are refused before they are read.
        max_rows: sheets with more data rows are refused.
        include_hidden: read rows hidden or filtered out as ordinary rows (issue #12: by
            default they are the person's selection, and are not issued).
        encoding: a CSV file's text encoding (Python codec name), or ``None`` to detect it.
    """

    sheet: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    department: str | None = None
    max_file_size: int = 50 * MIB
    max_rows: int = 100_000
    include_hidden: bool = False
    encoding: str | None = None


@dataclass
class Input:
    """A sheet as read, with the batch it names if it is a result sheet given back.

    ``lines`` maps input row numbers to this sheet's line numbers (a result
    sheet's rows are renumbered to the input rows its ``Row`` column names).
    """

    path: Path
    sheet: Sheet
    batch_id: str | None = None
    lines: dict[int, int] = field(default_factory=dict)
    made_from: tuple[str, str | None] | None = None

    @property
    def identity(self) -> tuple[str, str | None]:
        """``(SHA-256, sheet name)`` the input's batch is known by (issue #11).

        The file's own bytes and worksheet; for a validation sheet given to
        ``issue``, those of the file it was made from (``made_from``), so that
        it is the same batch with the same derived ids.
        """
        return self.made_from or (self.sheet.sha256, self.sheet.sheet_name)


def read_input(path: Path | str, request: ReadRequest, *, command: str = "issue") -> Input:
    """Read ``path`` (XLSX, XLSM, ODS, XLS, CSV, TSV) as ``command`` (``"validate"``, ``"issue"``, ``"retry"``) needs it.

    Raises:
        InputFileError: the file cannot be read, is refused, or has no recipients.
        ConfigError: ``retry`` of a file that is not a flexybulk result sheet.
    """
    from .reading import ReadOptions, read_sheet

    path = Path(path)
    opts = ReadOptions(sheet=request.sheet, columns=dict(request.columns), max_file_size=request.max_file_size,
                       max_rows=request.max_rows, include_hidden=request.include_hidden, encoding=request.encoding)
    sheet = read_sheet(path, opts)
    if not sheet.rows:
        raise InputFileError(f"{sheet.where()}: there are no recipients below the header on row {sheet.header_row}. "
                             "Fill in at least one row.")
    if command == "validate":
        return Input(path, sheet)
    batch_id, lines = result_sheet_batch(sheet)
    if command == "retry" and batch_id is None:
        raise ConfigError(f"{path.name} is not a flexybulk result sheet (no BatchId and Row columns). "
                          f"To issue a new file, run: flexybulk issue {path}")
    made_from = None if batch_id else validation_sheet_identity(sheet, path)
    return Input(path, sheet, batch_id, lines, made_from)


def validate_input(sheet: Sheet, catalogue: Catalogue, request: ReadRequest,
                   progress: Callable[[int], None] | None = None) -> Validation:
    """Every row of ``sheet`` checked against ``catalogue``; ``progress(rows done)`` is called as it goes."""
    from .validate import validate

    return validate(sheet, catalogue, default_department=request.department, progress=progress)


# -- the dry run ------------------------------------------------------------------


@dataclass
class Checked:
    """What the dry run found: the catalogue used, every row's verdict, and what the ledger knows of the rows.

    Attributes:
        ledger: the ledger looked in; ``ledger_exists`` is false when it does not exist yet.
        known: input row -> what an ``issue`` would decide for a valid row other than simply
            sending it (:func:`flexybulk.planning.preview`): ``"done"`` or ``"skip"`` (already
            issued, with the batch and date), ``"near"`` (would ask), ``"send"`` with
            ``earlier`` (would finish an earlier batch's row with its ids).
    """

    input: Input
    catalogue: Catalogue
    validation: Validation
    ledger: Path | None = None
    ledger_exists: bool = False
    known: dict[int, PlannedRow] = field(default_factory=dict)
    ledger_named: bool = False

    @property
    def sheet(self) -> Sheet:
        return self.input.sheet

    def notes(self) -> dict[int, str]:
        """Input row -> what the ledger says of it, in words, for the validation sheet."""
        return {n: r.message or "" for n, r in self.known.items()}


def check(source: Input, target: Target, request: ReadRequest, progress: Callable[[int], None] | None = None,
          *, ledger: Path | str | None = None) -> Checked:
    """The dry run: fetch the live catalogue (two read-only GETs), validate every row, look in the ledger. Issues nothing.

    The ledger (``ledger``, else the target's default) is read if it
    exists and never created (issue #11: the dry run tells the truth about
    the rows an issue would skip or ask about).

    Raises:
        ApiError: the catalogue could not be fetched (``AuthError`` for a refused token).
        JournalError: the ledger exists but cannot be read.
    """
    from .planning import preview

    with FlexyboxClient(target.settings) as client:
        catalogue = client.get_catalogue()
    checked = Checked(source, catalogue, validate_input(source.sheet, catalogue, request, progress))
    path, named = ledger_of(target, ledger)
    checked.ledger, checked.ledger_exists, checked.ledger_named = path, path.exists(), named
    if checked.ledger_exists:
        with Journal(path, create=False) as journal:
            checked.known = preview(journal, checked.validation, target=target.name, identity=source.identity)
    return checked


def write_validation(validation: Validation, out: Path | None = None, *, notes: dict[int, str] | None = None) -> Path:
    """Write the validation sheet (``FILE.validation.xlsx`` beside the input by default); returns its path.

    ``notes`` (input row -> text, from :meth:`Checked.notes`) join the rows' warnings.

    Raises:
        ConfigError: ``out`` is the input itself, or an existing file that is not a validation sheet.
        InputFileError: the file cannot be written.
    """
    path = Path(out) if out else default_output_path(validation.sheet.path, "validation")
    if path.exists():
        if os.path.samefile(path, validation.sheet.path):
            raise ConfigError(f"{path} is the input file itself; the validation sheet is not written over it. "
                              "Choose another --output.")
        if not looks_like_own_sheet(path, "Validation"):
            raise ConfigError(f"{path} exists and is not a flexybulk validation sheet, so it is not overwritten. "
                              "Choose another --output, or move that file away.")
    return write_output(validation_sheet(validation, notes=notes), path)


# -- issuing ----------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """What the person decided when shown a :class:`Prepared` batch.

    Attributes:
        confirmed: issue the rows to send.
        reissue_confirmed: issue again the rows an earlier batch already issued
            (asked separately; a general "yes" never implies it).
        near_confirmed: issue the near-duplicates too: rows whose email already received
            a gift certificate of the same type in an earlier batch, for another amount or
            quantity (asked separately, like a reissue; issue #11).
        user: who decided (the web user, or ``None`` for the OS user).
    """

    confirmed: bool
    reissue_confirmed: bool = False
    near_confirmed: bool = False
    user: str | None = None


@dataclass
class Prepared:
    """A batch planned and ready to run, or blocked by invalid rows.

    Attributes:
        command: ``"issue"`` or ``"retry"``.
        input: the sheet as read.
        validation: every row's verdict against the live catalogue.
        target: where it goes (``target.label`` says it in words).
        output: the result sheet the run will write.
        blocking: invalid rows (not issued before) that stop the batch; when
            not empty, ``plan`` is ``None`` and nothing was recorded.
        plan: the ledger batch and a decision per row.
        orders: the orders to send, in input order.
        totals: rows, certificates and money per currency of ``orders``.
        options: the run's options as recorded in the ledger and audit log.
        adopted: the ledger did not know the result sheet's batch, and it was rebuilt from the
            sheet (:mod:`flexybulk.adoption`) before planning.
    """

    command: str
    input: Input
    validation: Validation
    target: Target
    output: Path
    blocking: list[RowCheck] = field(default_factory=list)
    plan: Plan | None = None
    orders: list[Order] = field(default_factory=list)
    totals: Totals = field(default_factory=Totals)
    options: dict = field(default_factory=dict)
    adopted: bool = False

    @property
    def blocked(self) -> bool:
        """True when invalid rows stop the batch (nothing was planned)."""
        return self.plan is None

    @property
    def batch(self) -> BatchRecord:
        assert self.plan is not None
        return self.plan.batch

    @property
    def already_issued(self) -> int:
        """Rows this batch issued before (skipped now)."""
        return self.plan.count("done") if self.plan else 0

    @property
    def skipped(self) -> list[PlannedRow]:
        """Rows an earlier batch issued, not issued again."""
        return [r for r in self.plan.rows if r.action == "skip"] if self.plan else []

    @property
    def reissue(self) -> list[PlannedRow]:
        """Rows an earlier batch issued that will be issued again if the reissue is confirmed."""
        return [r for r in self.plan.rows if r.action == "reissue"] if self.plan else []

    @property
    def held(self) -> list[PlannedRow]:
        """Rows held back by ``first`` (a canary run): not sent now, PENDING for a retry."""
        return self.plan.held if self.plan else []

    @property
    def near(self) -> list[PlannedRow]:
        """Rows like a gift certificate an earlier batch issued to the same email (same type, other amount or quantity)."""
        return self.plan.near if self.plan else []

    @property
    def settling(self) -> list[PlannedRow]:
        """Rows that finish an earlier batch's unfinished row with its recorded ids."""
        return self.plan.settling if self.plan else []

    @property
    def needs_confirmation(self) -> bool:
        """True when something would be issued (a run with nothing to send needs no decision)."""
        return bool(self.orders)


@dataclass(frozen=True)
class RowOutcome:
    """One row finished by a run (passed to the progress callback from a worker thread)."""

    row_number: int
    status: RowStatus
    error: str | None = None


@dataclass
class Outcome:
    """What a run did and where the batch stands now.

    Attributes:
        prepared: the batch that ran.
        output: the result sheet written.
        records: input row number -> the ledger's row, for the whole batch.
        sent: row number -> status, for the rows this run sent.
        already: rows that Flexybox already held committed under their ids (another ledger or laptop
            issued this file): ISSUED, or SKIPPED when committed with other values; nothing new was issued.
        declined: the person did not confirm; nothing was sent.
        interrupted: stopped (Ctrl-C, SIGTERM, a stop button) before every row was sent.
        fatal: the error that stopped the run at once (a refused token, Flexybox unreachable).
    """

    prepared: Prepared
    output: Path | None
    records: dict[int, RowRecord] = field(default_factory=dict)
    sent: dict[int, RowStatus] = field(default_factory=dict)
    already: set[int] = field(default_factory=set)
    declined: bool = False
    interrupted: bool = False
    fatal: FlexybulkError | None = None

    def _mine(self) -> list[RowRecord]:
        checks = self.prepared.validation.checks
        return [self.records[c.row.number] for c in checks if c.row.number in self.records]

    @property
    def counts(self) -> Counter:
        """Status -> rows, over this sheet's rows."""
        return Counter(r.status for r in self._mine())

    @property
    def issued_now(self) -> Totals:
        """What this run issued (rows Flexybox already had are not counted: nothing new was issued for them)."""
        return issued_totals(self.records[n] for n, st in self.sent.items()
                             if st == RowStatus.ISSUED and n in self.records and n not in self.already)

    @property
    def issued_in_all(self) -> Totals:
        """What this batch has issued for this sheet's rows, this run and earlier ones."""
        return issued_totals(self._mine())

    @property
    def attention(self) -> list[RowRecord]:
        """This sheet's rows still FAILED, UNKNOWN or PENDING, in input order."""
        return [r for r in self._mine() if r.status in _UNFINISHED]

    @property
    def absent(self) -> list[RowRecord]:
        """Unfinished rows of the batch that this sheet no longer has (a line deleted from a result sheet)."""
        mine = {c.row.number for c in self.prepared.validation.checks}
        return [r for n, r in sorted(self.records.items()) if n not in mine and r.status in _UNFINISHED]

    @property
    def invalid(self) -> int:
        """This sheet's rows that are invalid and not issued."""
        return sum(1 for c in self.prepared.validation.checks if not c.valid and not c.excluded
                   and (c.row.number not in self.records or self.records[c.row.number].status != RowStatus.ISSUED))

    @property
    def finished(self) -> bool:
        """True when no row of the sheet needs attention (every valid row issued, none invalid)."""
        return not self.declined and not self.attention and not self.absent and not self.invalid


_UNFINISHED = (RowStatus.FAILED, RowStatus.UNKNOWN, RowStatus.PENDING)


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
                progress: Callable[[int], None] | None = None) -> Prepared:
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
            from .adoption import adopt_result_sheet

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
        prepared = Prepared(command, source, validation, self.target, out, adopted=adopted)

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
        prepared.orders = [checks[n].order for n in prepared.plan.to_send]
        for order in prepared.orders:
            prepared.totals.add(order)
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
        from .audit import AuditLog, audit_path

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
            outcome.already = report.already
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
    sheet = result_sheet(prepared.input.sheet, prepared.validation, prepared.batch, records, ledger_path)
    return write_output(sheet, prepared.output)


def over_limit(totals: Totals, limits: dict[str | None, Decimal]) -> str | None:
    """``"12,500.00 DKK (limit 10,000.00 DKK)"`` for every currency over its limit, or ``None``.

    ``limits`` maps a currency (or ``None``: every currency) to the most that
    may be issued in it, as ``Decimal``. Once any limit is given, a currency
    that none covers counts as over it: a guard meant for DKK but typed as
    EUR must not leave DKK unlimited.
    """
    from .validate import format_money

    over = []
    for currency, amount in sorted(totals.amounts.items()):
        limit = limits.get(currency, limits.get(None))
        if limits and limit is None:
            over.append(f"{format_money(amount)} {currency} (no --max-total for {currency})")
        elif limit is not None and amount > limit:
            over.append(f"{format_money(amount)} {currency} (limit {format_money(limit)} {currency})")
    return ", ".join(over) or None


# -- what the ledger knows ----------------------------------------------------------


@dataclass
class BatchStatus:
    """A batch as the ledger knows it, or ``batch=None`` when the ledger has none for the file."""

    ledger: Path
    batch: BatchRecord | None
    rows: list[RowRecord] = field(default_factory=list)
    exists: bool = True  # False: the ledger file does not exist (nothing was issued with it)

    @property
    def counts(self) -> Counter:
        """Status value -> rows."""
        return Counter(r.status.value for r in self.rows)

    @property
    def issued(self) -> Totals:
        """Rows, certificates and money issued in the batch."""
        return issued_totals(self.rows)

    @property
    def attention(self) -> list[RowRecord]:
        """Rows that a rerun or a person must still deal with."""
        return [r for r in self.rows if r.status.needs_attention]


def batch_status(path: Path | str, ledger: Path, *, target: str | None = None) -> BatchStatus:
    """What ``ledger`` knows of the batch of ``path`` (an input file or a result sheet). Reads nothing from Flexybox.

    A ledger that does not exist is not created (``exists=False``).

    A result sheet names its batch; another file is matched by its SHA-256
    (the latest batch, of ``target`` if given).

    Raises:
        JournalError: the ledger cannot be opened.
    """
    import hashlib

    from .reading import ReadOptions, read_sheet

    path = Path(path)
    if not Path(ledger).exists():
        return BatchStatus(Path(ledger), None, exists=False)  # status never creates a ledger (issue #11)
    with Journal(ledger, create=False) as journal:
        batch = None
        try:
            batch_id, _ = result_sheet_batch(read_sheet(path, ReadOptions()))
            if batch_id:
                batch = journal.get_batch(batch_id)
        except FlexybulkError:
            pass
        if batch is None:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            wanted = canonical_target(target) if target else None
            candidates = [b for b in journal.batches() if b.input_sha256 == digest and (wanted is None or b.target == wanted)]
            batch = candidates[-1] if candidates else None
        return BatchStatus(journal.path, batch, journal.rows(batch.id) if batch else [])


def list_batches(ledger: Path) -> list[BatchStatus]:
    """Every batch of ``ledger``, newest first, with its rows (none when the ledger does not exist; it is not created).

    Raises:
        JournalError: the ledger cannot be opened.
    """
    if not Path(ledger).exists():
        return []
    with Journal(ledger, create=False) as journal:
        return [BatchStatus(journal.path, b, journal.rows(b.id)) for b in reversed(journal.batches())]


# -- the template -------------------------------------------------------------------


@dataclass
class TemplateWritten:
    """A template written: its path and the dropdowns' names (empty when the catalogue lists no active ones)."""

    path: Path
    types: list[str]
    departments: list[str]
    target: str


def make_template(out: Path | str, target: Target, *, lang: str = "da", force: bool = False) -> TemplateWritten:
    """Write an empty recipient sheet with dropdowns from the live catalogue (see :mod:`flexybulk.template`).

    Raises:
        ConfigError: ``out`` is not ``.xlsx``, or exists and ``force`` is false.
        ApiError: the catalogue could not be fetched.
        InputFileError: the file cannot be written.
    """
    from .template import dropdown_names, write_template

    path = Path(out)
    if path.suffix.lower() != ".xlsx":
        raise ConfigError(f"{path.name}: the template is an Excel workbook; give it a name ending in .xlsx.")
    if path.exists() and not force:
        raise ConfigError(f"{path} exists already. Choose another name, or add --force to overwrite it.")
    with FlexyboxClient(target.settings) as client:
        catalogue = client.get_catalogue()
    write_template(path, catalogue, lang=lang.lower())
    return TemplateWritten(path, dropdown_names(catalogue.types), dropdown_names(catalogue.departments), target.name)


# -- for the web page (issue #14): progress of a batch by its id --------------------------------------------


def batch_progress(ledger: Path, batch_id: str) -> BatchStatus:
    """The batch ``batch_id`` as ``ledger`` knows it now (counts per status, money issued, rows needing attention).

    Read from the ledger alone, so any process (a page refreshed, a server
    restarted) sees the same figures while another runs the batch. Reads
    nothing from Flexybox and never creates a ledger; ``batch`` is ``None``
    when the ledger has no such batch.

    Raises:
        LedgerMissing: there is no such ledger.
        JournalError: the ledger cannot be opened.
    """
    with Journal(ledger, create=False) as journal:
        batch = journal.get_batch(batch_id)
        return BatchStatus(journal.path, batch, journal.rows(batch_id) if batch else [])


__all__ = [
    "BatchStatus", "Checked", "Decision", "Input", "Issuing", "Outcome", "Prepared", "ReadRequest", "RowOutcome",
    "TemplateWritten", "batch_status", "check", "issuing", "list_batches", "make_template", "read_input",
    "row_ranges", "row_state_text", "same_words", "validate_input", "write_result", "write_validation",
    "batch_progress",
]
