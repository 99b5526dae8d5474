"""The data a face and the library pass between prepare and run: a Prepared batch, a Decision, a run's Outcome."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import FlexybulkError
from ..journal import BatchRecord, RowRecord
from ..model import Order, RowStatus
from ..planning import Plan, PlannedRow
from ..records import issued_totals
from ..target import Target
from ..validate import RowCheck, Totals, Validation
from .inputs import Input


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
        orders: the orders to send, in input order, as they will be sent: a row whose commit may
            already have gone through is the order its commit was sent for, not the line's edits.
        totals: rows, certificates and money per currency of ``orders``.
        options: the run's options as recorded in the ledger and audit log.
        adopted: the ledger did not know the result sheet's batch, and it was rebuilt from the
            sheet (:mod:`flexybulk.adoption`) before planning.
        face: ``"cli"`` or ``"web"``: the result sheet's words on what to do follow it.
        in_doubt: rows among ``orders`` whose commit an earlier run sent and nothing settled: their
            certificates may exist already; re-posting the same payment id cannot issue them twice.
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
    face: str = "cli"
    in_doubt: list[int] = field(default_factory=list)

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
    def issued_edited(self) -> list[PlannedRow]:
        """Rows this batch issued whose lines were edited since (the edits are not applied; each message says
        what was really issued)."""
        return [r for r in self.plan.rows if r.edited] if self.plan else []

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
        earlier: rows settled now whose commit by an earlier run had gone through (Flexybox answered
            "already committed"): ISSUED, but by that run; nothing new was issued now.
        declined: the person did not confirm; nothing was sent.
        interrupted: stopped (Ctrl-C, SIGTERM, a stop button) before every row was sent.
        fatal: the error that stopped the run at once (a refused token, Flexybox unreachable).
    """

    prepared: Prepared
    output: Path | None
    records: dict[int, RowRecord] = field(default_factory=dict)
    sent: dict[int, RowStatus] = field(default_factory=dict)
    already: set[int] = field(default_factory=set)
    earlier: set[int] = field(default_factory=set)
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
        """What this run issued (rows Flexybox already had, from another ledger or an earlier run's commit, are
        not counted: nothing new was issued for them)."""
        return issued_totals(self.records[n] for n, st in self.sent.items() if st == RowStatus.ISSUED
                             and n in self.records and n not in self.already and n not in self.earlier)

    @property
    def settled_earlier(self) -> Totals:
        """What rows settled now had been issued by an earlier run's commit (Flexybox said so)."""
        return issued_totals(self.records[n] for n in sorted(self.earlier) if n in self.records)

    @property
    def issued_in_all(self) -> Totals:
        """What this batch has issued, this run and earlier ones, including rows whose lines were deleted from
        the result sheet given back (the ledger's word, as `flexybulk status` and the Summary give it)."""
        return issued_totals(self.records.values())

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
