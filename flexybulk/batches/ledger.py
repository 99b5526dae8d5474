"""What the ledger knows: a batch's status and progress, and every batch (the history). Reads nothing from Flexybox."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import FlexybulkError
from ..journal import BatchRecord, Journal, RowRecord
from ..records import issued_totals
from ..result_input import result_sheet_batch
from ..settings import canonical_target
from ..validate import Totals


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

    def finishing_file(self) -> tuple[str, Path] | None:
        """``("retry", result sheet)`` or ``("issue", input file)``: the command and file that finish the batch.

        The result sheet beside the input when it is this batch's; else the
        input itself (after ``kill -9`` no result sheet was written, and the
        same file resumes its batch with the same ids: a fresh user's find,
        "a rerun settles it" named no command). ``None`` without a batch.
        """
        if self.batch is None:
            return None
        from ..result_input import existing_result
        from ..results import default_output_path

        source = Path(self.batch.input_path)
        beside = existing_result(default_output_path(source, "result"))
        if beside is not None and beside.readable and beside.batch_id == self.batch.id:
            return "retry", beside.path
        return "issue", source


def batch_status(path: Path | str, ledger: Path, *, target: str | None = None) -> BatchStatus:
    """What ``ledger`` knows of the batch of ``path`` (an input file or a result sheet). Reads nothing from Flexybox.

    A ledger that does not exist is not created (``exists=False``).

    A result sheet names its batch; another file is matched by its SHA-256
    (the latest batch, of ``target`` if given).

    Raises:
        JournalError: the ledger cannot be opened.
    """
    import hashlib

    from ..reading import ReadOptions, read_sheet

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
        return BatchStatus(journal.path, batch, _as_known(journal, journal.rows(batch.id)) if batch else [])


def _as_known(journal: Journal, rows: list[RowRecord]) -> list[RowRecord]:
    """``rows``, those cut off while committing shown as UNKNOWN when no run is working on the ledger.

    (:attr:`~flexybulk.journal.RowRecord.known_status`: a process killed
    between sending a commit and recording its answer). While a run holds
    the ledger such a row is simply in flight and keeps its status. Planning and reruns go by
    the step (``commit_may_have_happened``), not by this.
    """
    if all(r.known_status is r.status for r in rows) or journal.issuing_now():
        return rows
    return [r if r.known_status is r.status else replace(r, status=r.known_status) for r in rows]


def list_batches(ledger: Path) -> list[BatchStatus]:
    """Every batch of ``ledger``, newest first, with its rows (none when the ledger does not exist; it is not created).

    Raises:
        JournalError: the ledger cannot be opened.
    """
    if not Path(ledger).exists():
        return []
    with Journal(ledger, create=False) as journal:
        return [BatchStatus(journal.path, b, _as_known(journal, journal.rows(b.id))) for b in reversed(journal.batches())]


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
        return BatchStatus(journal.path, batch, _as_known(journal, journal.rows(batch_id)) if batch else [])
