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
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from .client import FlexyboxClient
from .errors import ConfigError, FlexybulkError, InputFileError
from .issue import BatchRunner, Plan, PlannedRow, issued_totals, plan_batch, row_state_text
from .journal import BatchRecord, Journal, RowRecord
from .model import Catalogue, Order, RowStatus, Sheet
from .result_input import check_result_lines, result_sheet_batch
from .results import default_output_path, result_sheet, validation_sheet, write_output
from .target import Target
from .validate import RowCheck, Totals, Validation

MIB = 1024 * 1024


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
    """

    sheet: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    department: str | None = None
    max_file_size: int = 50 * MIB
    max_rows: int = 100_000


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


def read_input(path: Path | str, request: ReadRequest, *, command: str = "issue") -> Input:
    """Read ``path`` (XLSX, XLSM, ODS, XLS, CSV, TSV) as ``command`` (``"validate"``, ``"issue"``, ``"retry"``) needs it.

    Raises:
        InputFileError: the file cannot be read, is refused, or has no recipients.
        ConfigError: ``retry`` of a file that is not a flexybulk result sheet.
    """
    from .sheet import ReadOptions, read_sheet

    path = Path(path)
    opts = ReadOptions(sheet=request.sheet, columns=dict(request.columns), max_file_size=request.max_file_size,
                       max_rows=request.max_rows)
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
    return Input(path, sheet, batch_id, lines)


def validate_input(sheet: Sheet, catalogue: Catalogue, request: ReadRequest,
                   progress: Callable[[int], None] | None = None) -> Validation:
    """Every row of ``sheet`` checked against ``catalogue``; ``progress(rows done)`` is called as it goes."""
    from .validate import validate

    return validate(sheet, catalogue, default_department=request.department, progress=progress)


# -- the dry run ------------------------------------------------------------------


@dataclass
class Checked:
    """What the dry run found: the catalogue used and every row's verdict."""

    input: Input
    catalogue: Catalogue
    validation: Validation

    @property
    def sheet(self) -> Sheet:
        return self.input.sheet


def check(source: Input, target: Target, request: ReadRequest,
          progress: Callable[[int], None] | None = None) -> Checked:
    """The dry run: fetch the live catalogue (two read-only GETs) and validate every row. Issues nothing.

    Raises:
        ApiError: the catalogue could not be fetched (``AuthError`` for a refused token).
    """
    with FlexyboxClient(target.settings) as client:
        catalogue = client.get_catalogue()
    return Checked(source, catalogue, validate_input(source.sheet, catalogue, request, progress))


def write_validation(validation: Validation, out: Path | None = None) -> Path:
    """Write the validation sheet (``FILE.validation.xlsx`` beside the input by default); returns its path.

    Raises:
        InputFileError: the file cannot be written.
    """
    path = Path(out) if out else default_output_path(validation.sheet.path, "validation")
    return write_output(validation_sheet(validation), path)


# -- issuing ----------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """What the person decided when shown a :class:`Prepared` batch.

    Attributes:
        confirmed: issue the rows to send.
        reissue_confirmed: issue again the rows an earlier batch already issued
            (asked separately; a general "yes" never implies it).
        user: who decided (the web user, or ``None`` for the OS user).
    """

    confirmed: bool
    reissue_confirmed: bool = False
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
        declined: the person did not confirm; nothing was sent.
        interrupted: stopped (Ctrl-C, SIGTERM, a stop button) before every row was sent.
        fatal: the error that stopped the run at once (a refused token, Flexybox unreachable).
    """

    prepared: Prepared
    output: Path | None
    records: dict[int, RowRecord] = field(default_factory=dict)
    sent: dict[int, RowStatus] = field(default_factory=dict)
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
        """What this run issued."""
        return issued_totals(self.records[n] for n, st in self.sent.items() if st == RowStatus.ISSUED and n in self.records)

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
        return sum(1 for c in self.prepared.validation.checks if not c.valid
                   and (c.row.number not in self.records or self.records[c.row.number].status != RowStatus.ISSUED))

    @property
    def finished(self) -> bool:
        """True when no row of the sheet needs attention (every valid row issued, none invalid)."""
        return not self.declined and not self.attention and not self.absent and not self.invalid


_UNFINISHED = (RowStatus.FAILED, RowStatus.UNKNOWN, RowStatus.PENDING)


@contextlib.contextmanager
def issuing(target: Target, ledger: Path | None, what: str) -> Iterator["Issuing"]:
    """Open the ledger (``ledger``, else the target's default), hold its issuing lock, and open a client.

    ``what`` (e.g. ``"issue kampagne.xlsx"``) is shown to another run that
    finds the lock taken. One process issues with a ledger at a time: two
    runs planning together could each issue the same rows.

    Raises:
        JournalError: the ledger cannot be opened.
        LedgerBusy: another process holds the issuing lock.
    """
    with Journal(Path(ledger).expanduser() if ledger else target.ledger_default) as journal, \
            journal.issuing_lock(what), FlexyboxClient(target.settings) as client:
        yield Issuing(target, journal, client)


class Issuing:
    """Planning and running batches with one ledger, under its issuing lock (from :func:`issuing`)."""

    def __init__(self, target: Target, journal: Journal, client: FlexyboxClient) -> None:
        self.target = target
        self.journal = journal
        self.client = client

    def prepare(self, source: Input, request: ReadRequest, *, command: str = "issue", output: Path | None = None,
                skip_invalid: bool = False, allow_reissue: bool = False, payment_type: str = "Mastercard",
                workers: int = 4, rate: float | None = None,
                progress: Callable[[int], None] | None = None) -> Prepared:
        """Validate ``source`` against the live catalogue and plan its batch in the ledger.

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
        catalogue = self.client.get_catalogue()
        validation = validate_input(source.sheet, catalogue, request, progress)
        journal, sheet = self.journal, source.sheet
        batch = journal.get_batch(source.batch_id) if source.batch_id else journal.find_batch_by_sha256(sheet.sha256, self.target.name)
        known = {r.row_number: r for r in journal.rows(batch.id)} if batch else {}
        if source.batch_id and batch is not None:
            check_result_lines(sheet, source.lines, known)
        if output:
            out = Path(output)
        elif source.batch_id:
            out = source.path  # a result sheet, whatever its name, is updated in place
        else:
            out = default_output_path(source.path, "result")
        prepared = Prepared(command, source, validation, self.target, out)

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
                                   options=prepared.options, batch_id=source.batch_id, allow_reissue=allow_reissue)
        checks = {c.row.number: c for c in validation.checks}
        prepared.orders = [checks[n].order for n in prepared.plan.to_send]
        for order in prepared.orders:
            prepared.totals.add(order)
        return prepared

    def decline(self, prepared: Prepared) -> Outcome:
        """The person said no: a batch planned by this run leaves nothing behind (it sent nothing)."""
        if prepared.plan is not None and not prepared.plan.resumed:
            self.journal.discard_unsent_batch(prepared.batch.id)
        return Outcome(prepared, None, declined=True)

    def run(self, prepared: Prepared, decision: Decision, *, progress: Callable[[RowOutcome], None] | None = None,
            stop: threading.Event | None = None) -> Outcome:
        """Issue the prepared batch if ``decision`` allows it, then write its result sheet.

        Not confirmed (or a reissue not confirmed separately): nothing is
        sent and the outcome says ``declined``. Otherwise rows run
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
        if prepared.needs_confirmation and not decision.confirmed:
            return self.decline(prepared)
        from .audit import AuditLog, audit_path

        plan, journal = prepared.plan, self.journal
        for r in plan.rows:
            if r.action == "skip":
                journal.finish_row(plan.batch.id, r.row_number, RowStatus.SKIPPED, error=r.message)
        audit = AuditLog(audit_path(journal.path, plan.batch.id))
        audit.run_started(command=prepared.command, input_path=str(prepared.input.path.resolve()),
                          sha256=prepared.input.sheet.sha256, batch_id=plan.batch.id,
                          options={**prepared.options, "web_user": decision.user} if decision.user else prepared.options)
        self.client.on_call = audit.call

        def on_row(rec: RowRecord, status: RowStatus, error: str | None) -> None:
            if progress is not None:
                progress(RowOutcome(rec.row_number, status, error))

        outcome = Outcome(prepared, prepared.output)
        runner = BatchRunner(self.client, journal, payment_type=prepared.options["payment_type"],
                             workers=prepared.options["workers"], on_row=on_row, stop=stop)
        try:
            report = runner.run(plan)
            outcome.sent, outcome.interrupted, outcome.fatal = report.outcomes, report.interrupted, report.fatal
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


# -- what the ledger knows ----------------------------------------------------------


@dataclass
class BatchStatus:
    """A batch as the ledger knows it, or ``batch=None`` when the ledger has none for the file."""

    ledger: Path
    batch: BatchRecord | None
    rows: list[RowRecord] = field(default_factory=list)

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

    A result sheet names its batch; another file is matched by its SHA-256
    (the latest batch, of ``target`` if given).

    Raises:
        JournalError: the ledger cannot be opened.
    """
    import hashlib

    from .sheet import ReadOptions, read_sheet

    path = Path(path)
    with Journal(ledger) as journal:
        batch = None
        try:
            batch_id, _ = result_sheet_batch(read_sheet(path, ReadOptions()))
            if batch_id:
                batch = journal.get_batch(batch_id)
        except FlexybulkError:
            pass
        if batch is None:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            candidates = [b for b in journal.batches() if b.input_sha256 == digest and (target is None or b.target == target)]
            batch = candidates[-1] if candidates else None
        return BatchStatus(journal.path, batch, journal.rows(batch.id) if batch else [])


def list_batches(ledger: Path) -> list[BatchStatus]:
    """Every batch of ``ledger``, newest first, with its rows.

    Raises:
        JournalError: the ledger cannot be opened.
    """
    with Journal(ledger) as journal:
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
    nothing from Flexybox; ``batch`` is ``None`` when the ledger has no such batch.

    Raises:
        JournalError: the ledger cannot be opened.
    """
    with Journal(ledger) as journal:
        batch = journal.get_batch(batch_id)
        return BatchStatus(journal.path, batch, journal.rows(batch_id) if batch else [])


__all__ = [
    "BatchStatus", "Checked", "Decision", "Input", "Issuing", "Outcome", "Prepared", "ReadRequest", "RowOutcome",
    "TemplateWritten", "batch_status", "check", "issuing", "list_batches", "make_template", "read_input",
    "row_state_text", "validate_input", "write_result", "write_validation",
    "batch_progress",
]
