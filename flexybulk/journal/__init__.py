"""The ledger: one SQLite database recording every batch and row this installation issues.

Why it exists (issue #3): a gift certificate is money, and the vendor gives
us exactly-once only if we keep our promises about identifiers. The client
chooses the customer id, the sales order GUID and the external payment id;
the ledger records them **before** the first call that uses them (at
planning), and records the commit step, with the payment amount and the
content being committed, on disk before the commit is sent, so that after a
crash, a lost response or a ``kill -9`` the next run repeats the same calls
with the same ids and never commits different content under them. The
customer and sales order PUTs are idempotent by id, so their step records are
written but not waited for (lost in a crash, a rerun repeats those PUTs); a
repeated commit with the same payment id is ignored by the vendor (the help
article: "duplicate posts with the same Id will be ignored").

Durability: WAL journal mode with ``synchronous=FULL``, so a committed step
survives a process kill and a power loss. Concurrency: one connection guarded
by a lock; every write is a short transaction, so worker threads never hold it
across a network call.

Group commit (issue #4): the per-row writes of concurrent workers
(:meth:`Journal.set_step`, :meth:`Journal.finish_row`) queue up while a
transaction is being written; the next worker to find no transaction in
progress writes everything queued in one transaction, with one sync, and
every worker whose record was in it then goes on. A commit step record is
still on disk (``synchronous=FULL``) before the commit is sent; a worker only
waits less, because one sync serves several workers. A row's *outcome* record
(``finish_row(..., wait=False)``) precedes no call, so the runner does not
wait for it: it goes to disk in the same transaction as that worker's next
step record, or at :meth:`Journal.flush` at the end of the run. Losing it in
a crash is what losing the answer is: the row still shows its COMMIT step,
and a rerun re-posts the same payment id, which the vendor ignores.

Schema versioning: ``PRAGMA user_version``; an unknown (newer) version is
refused rather than misread.
"""

from __future__ import annotations

import getpass
import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any, Iterable

from ..errors import JournalError, LedgerMissing
from ..model import RowStatus
from .groupcommit import _GroupCommit, _Write
from .lock import _IssuingLock
from .paths import LEDGER_ENV, default_ledger_path, ledger_choice, ledger_write_error
from .records import _ROW_COLUMNS, BatchRecord, NewRow, RowRecord, Step, _row, near_key, new_id, utcnow
from .schema import SCHEMA_VERSION, _Schema

__all__ = [
    "LEDGER_ENV", "SCHEMA_VERSION", "BatchRecord", "Journal", "NewRow", "RowRecord", "Step", "default_ledger_path",
    "ledger_choice", "ledger_write_error", "near_key", "new_id", "utcnow",
]


class Journal(_Schema, _IssuingLock, _GroupCommit):
    """The ledger database. Thread-safe; one instance per process.

    The schema (:mod:`.schema`), the issuing lock (:mod:`.lock`) and the
    group-committed transactions (:mod:`.groupcommit`) are its mixins; the
    records it reads and writes are in :mod:`.records`.

    Args:
        path: the SQLite file; its folder is created if missing (unless ``create`` is false).
        create: false to refuse a file that does not exist yet (``LedgerMissing``).

    Raises:
        JournalError: the file is not a ledger, is corrupt, is locked for
            too long, or has a schema version this flexybulk does not know.
    """

    def __init__(self, path: Path | str, *, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise LedgerMissing(
                f"The ledger {self.path} does not exist. If the path is mistyped, correct --ledger (or {LEDGER_ENV}): "
                "a new, empty ledger knows nothing of what was issued and could issue it all again. "
                "If you really mean to start a new ledger there, add --new-ledger.")
        self.created = not self.path.exists()
        self._lock = threading.RLock()  # the connection: one transaction or query at a time
        # Group commit (see the module docstring): writes waiting for the next transaction, whether a
        # thread is writing one now, and the error of a transaction that held writes nobody waited for.
        self._queue: list[_Write] = []
        self._queue_cond = threading.Condition(threading.Lock())
        self._writing = False
        self._deferred_error: JournalError | None = None
        self._lock_fd: int | None = None  # the issuing lock's descriptor of the database file (see _flock)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():
                # Owner-only: the ledger holds every recipient's name, email and phone number.
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
            self._db = sqlite3.connect(str(self.path), timeout=30, isolation_level=None, check_same_thread=False)
            self._open_schema()
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"Cannot open the ledger {self.path}: {exc}. Point --ledger (or {LEDGER_ENV}) at a writable file; do not delete a ledger that recorded issued certificates.") from None
        except OSError as exc:
            raise JournalError(f"Cannot create the ledger {self.path}: {exc.strerror}. Point --ledger (or {LEDGER_ENV}) at a writable place.") from None

    def close(self) -> None:
        """Write any queued records (:meth:`flush`), then close the database."""
        try:
            self.flush()
        finally:
            with self._lock:
                self._db.close()
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # only now: see _flock
                self._lock_fd = None

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def create_batch(self, *, input_path: str, input_sha256: str, target: str, sheet_name: str | None, options: dict,
                     rows: Iterable[NewRow], batch_id: str | None = None, id_salt: str | None = None,
                     web_user: str | None = None) -> BatchRecord:
        """Record a new batch and all its rows with their ids, in one transaction.

        This happens before any call for the batch, so every id the client
        will use is on disk first. ``batch_id`` defaults to a fresh GUID (an
        adopted result sheet brings its own); ``id_salt`` and ``web_user`` as
        in :class:`BatchRecord`.
        """
        batch_id = batch_id or new_id()
        now = utcnow()
        user = _os_user()
        with self._tx() as db:
            db.execute(
                "INSERT INTO batches (id, input_path, input_sha256, target, sheet_name, os_user, options, created_at, updated_at, "
                "id_salt, web_user) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (batch_id, input_path, input_sha256, target, sheet_name, user, json.dumps(options, sort_keys=True, default=str), now, now,
                 id_salt, web_user),
            )
            _insert_rows(db, batch_id, rows, now)
            db.execute("INSERT INTO events (batch_id, row_number, at, step, detail) VALUES (?,?,?,?,?)",
                       (batch_id, None, now, "BATCH_CREATED", json.dumps({"input": input_path, "sha256": input_sha256})))
        return self.get_batch(batch_id)

    def add_rows(self, batch_id: str, rows: Iterable[NewRow]) -> None:
        """Record rows that a batch did not have yet (a result sheet with extra rows)."""
        now = utcnow()
        with self._tx() as db:
            _insert_rows(db, batch_id, rows, now)

    def discard_unsent_batch(self, batch_id: str) -> bool:
        """Delete a batch none of whose rows was ever sent (declined at the prompt). Returns whether it was deleted.

        A batch with any row past PLANNED (sent, or adopted from an earlier
        batch) is kept: its ids may be in use.
        """
        with self._tx() as db:
            sent = db.execute("SELECT count(*) FROM rows WHERE batch_id = ? AND (step != ? OR status = ?)",
                              (batch_id, Step.PLANNED.value, RowStatus.ISSUED.value)).fetchone()[0]
            if sent:
                return False
            for table, column in (("events", "batch_id"), ("rows", "batch_id"), ("batches", "id")):
                db.execute(f"DELETE FROM {table} WHERE {column} = ?", (batch_id,))
            return True

    def get_batch(self, batch_id: str) -> BatchRecord | None:
        """The batch with this id, or ``None``."""
        rows = self._query("SELECT id, input_path, input_sha256, target, sheet_name, os_user, options, created_at, updated_at, "
                           "id_salt, web_user FROM batches WHERE id = ?", (batch_id,))
        if not rows:
            return None
        r = rows[0]
        return BatchRecord(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6] or "{}"), r[7], r[8], r[9], r[10])

    def find_batch_by_sha256(self, sha256: str, target: str, sheet_name: Any = ...) -> BatchRecord | None:
        """The most recent batch for ``target`` made from a file with exactly these bytes, or ``None``.

        With ``sheet_name`` (``None`` for a CSV), only a batch of that
        worksheet: two sheets of one workbook are two batches (issue #11).
        """
        sql, args = "SELECT id FROM batches WHERE input_sha256 = ? AND target = ?", [sha256, target]
        if sheet_name is not ...:
            sql += " AND sheet_name IS ?"
            args.append(sheet_name)
        rows = self._query(sql + " ORDER BY created_at DESC, rowid DESC LIMIT 1", args)
        return self.get_batch(rows[0][0]) if rows else None

    def batches(self) -> list[BatchRecord]:
        """Every batch, oldest first."""
        return [b for (bid,) in self._query("SELECT id FROM batches ORDER BY created_at, rowid") if (b := self.get_batch(bid))]

    def rows(self, batch_id: str) -> list[RowRecord]:
        """Every recorded row of the batch, by row number."""
        return [_row(r) for r in self._query(f"SELECT {_ROW_COLUMNS} FROM rows WHERE batch_id = ? ORDER BY row_number", (batch_id,))]

    def row(self, batch_id: str, row_number: int) -> RowRecord | None:
        """One recorded row, or ``None``."""
        found = self._query(f"SELECT {_ROW_COLUMNS} FROM rows WHERE batch_id = ? AND row_number = ?", (batch_id, row_number))
        return _row(found[0]) if found else None

    def rows_by_fingerprint(self, fingerprints: Iterable[str], *, target: str, exclude_batch: str | None = None) -> dict[str, list[RowRecord]]:
        """Recorded rows of ``target``'s other batches with these fingerprints, oldest first, grouped by fingerprint."""
        wanted = sorted(set(fingerprints))
        found: dict[str, list[RowRecord]] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            marks = ",".join("?" * len(chunk))
            sql = (f"SELECT {_ROW_COLUMNS} FROM rows WHERE fingerprint IN ({marks}) "
                   "AND batch_id IN (SELECT id FROM batches WHERE target = ?)")
            args: list[Any] = [*chunk, target]
            if exclude_batch is not None:
                sql += " AND batch_id != ?"
                args.append(exclude_batch)
            for rec in self._query(sql + " ORDER BY created_at, rowid", args):
                r = _row(rec)
                found.setdefault(r.fingerprint, []).append(r)
        return found

    def issued_near(self, keys: Iterable[str], *, target: str, exclude_batch: str | None = None) -> dict[str, list[RowRecord]]:
        """ISSUED rows of ``target``'s other batches with these :func:`near_key` values, oldest first, grouped by key."""
        wanted = sorted(set(k for k in keys if k))
        found: dict[str, list[RowRecord]] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            sql = (f"SELECT {_ROW_COLUMNS}, near_key FROM rows WHERE near_key IN ({','.join('?' * len(chunk))}) AND status = ? "
                   "AND batch_id IN (SELECT id FROM batches WHERE target = ?)")
            args: list[Any] = [*chunk, RowStatus.ISSUED.value, target]
            if exclude_batch is not None:
                sql += " AND batch_id != ?"
                args.append(exclude_batch)
            for rec in self._query(sql + " ORDER BY issued_at, rowid", args):
                found.setdefault(rec[-1], []).append(_row(rec[:-1]))
        return found

    def update_plan(self, batch_id: str, row_number: int, *, status: RowStatus, fingerprint: str | None,
                    content: dict | None, customer_id: str | None = None, error: str | None = None,
                    adopt: RowRecord | None = None) -> None:
        """Change a not-yet-issued row's content (a corrected value, a rerun's new options).

        With ``adopt``, the row takes over the ids of an unfinished row of an
        earlier batch whose commit may have happened, so that finishing it
        cannot create a second certificate (issue #3: "settled with that
        batch's recorded ids, never new ones").

        Raises:
            JournalError: the row is already ISSUED (an issued row is never re-planned).
        """
        now = utcnow()
        with self._tx() as db:
            cur = db.execute("SELECT status FROM rows WHERE batch_id = ? AND row_number = ?", (batch_id, row_number)).fetchone()
            if cur is None:
                raise JournalError(f"Row {row_number} of batch {batch_id} is not in the ledger {self.path}.")
            if cur[0] == RowStatus.ISSUED.value:
                raise JournalError(f"Row {row_number} of batch {batch_id} is already issued; it is never sent again.")
            sets = ["status = ?", "fingerprint = ?", "content = ?", "near_key = ?", "error = ?", "updated_at = ?"]
            args: list[Any] = [status.value, fingerprint, json.dumps(content, sort_keys=True) if content is not None else None,
                               near_key(content), error, now]
            if customer_id is not None:
                sets.append("customer_id = ?")
                args.append(customer_id)
            detail: dict[str, Any] = {"status": status.value}
            if adopt is not None:
                sets += ["customer_id = ?", "sales_order_id = ?", "payment_id = ?", "payment_amount = ?", "commit_content = ?",
                         "step = ?", "settles = ?"]
                args += [adopt.customer_id, adopt.sales_order_id, adopt.payment_id, adopt.payment_amount,
                         json.dumps(adopt.commit_content, sort_keys=True) if adopt.commit_content is not None else None,
                         adopt.step.value,
                         f"{adopt.batch_id}:{adopt.row_number}"]
                detail["adopted"] = f"{adopt.batch_id}:{adopt.row_number}"
            db.execute(f"UPDATE rows SET {', '.join(sets)} WHERE batch_id = ? AND row_number = ?", (*args, batch_id, row_number))
            db.execute("INSERT INTO events (batch_id, row_number, at, step, detail) VALUES (?,?,?,?,?)",
                       (batch_id, row_number, now, "PLAN", json.dumps(detail)))

    def set_step(self, batch_id: str, row_number: int, step: Step, *, payment_amount: str | None = None,
                 commit_content: dict | None = None, wait: bool = True) -> None:
        """Record that ``step``'s call is about to be sent; returns once the record is on disk, so the call may go.

        Several workers' step records may share one transaction (group commit, see the module docstring).
        With ``wait=False`` the record is queued like an outcome (see :meth:`finish_row`): for a step
        whose call is idempotent by ids already on disk, so that losing the record in a crash only
        makes a rerun repeat the call (the runner's customer and sales order steps).
        """
        now = utcnow()

        def write(db: sqlite3.Connection) -> None:
            if payment_amount is not None:
                db.execute("UPDATE rows SET step = ?, status = ?, payment_amount = ?, commit_content = ?, updated_at = ? "
                           "WHERE batch_id = ? AND row_number = ? AND status != ?",
                           (step.value, RowStatus.PENDING.value, payment_amount,
                            json.dumps(commit_content, sort_keys=True) if commit_content is not None else None,
                            now, batch_id, row_number, RowStatus.ISSUED.value))
            else:
                db.execute("UPDATE rows SET step = ?, status = ?, updated_at = ? WHERE batch_id = ? AND row_number = ? AND status != ?",
                           (step.value, RowStatus.PENDING.value, now, batch_id, row_number, RowStatus.ISSUED.value))
            db.execute("INSERT INTO events (batch_id, row_number, at, step, detail) VALUES (?,?,?,?,?)",
                       (batch_id, row_number, now, step.value, payment_amount))

        self._commit(write, wait=wait)

    def finish_row(self, batch_id: str, row_number: int, status: RowStatus, *, error: str | None = None,
                   certificate_numbers: list[str] | None = None, settles: str | None = None,
                   content: dict | None = None, fingerprint: str | None = None,
                   commit_reached: bool = False, wait: bool = True) -> str | None:
        """Record a row's outcome. ``ISSUED`` also records the certificate numbers and the time.

        When the row settled an earlier batch's row (``settles`` =
        ``"batch:row"``), that row is marked ISSUED too, so neither batch
        sends it again. Returns the ``issued_at`` time for ISSUED, else ``None``.

        ``content`` and ``fingerprint``, with ISSUED, replace the row's
        content with what was really committed (a settled commit whose row
        had been edited since).

        ``FAILED`` is a definite refusal: a row at its COMMIT step steps back
        to ORDER (its commit did not happen, so it may take corrections),
        unless ``commit_reached`` says that an attempt of its commit may
        have reached Flexybox (a lost answer before the refusal, issue #11):
        then it keeps its COMMIT step, so that only a re-post of the same
        payment id can settle it and no corrected copy issues it again.

        With ``wait=False`` the record is queued rather than waited for: it
        goes to disk with the next transaction (in order), at the latest at
        :meth:`flush` or :meth:`close`. Only for outcomes, which no call
        depends on (the runner's case; see the module docstring).
        """
        now = utcnow()
        issued_at = now if status == RowStatus.ISSUED else None

        def write(db: sqlite3.Connection) -> None:
            if status == RowStatus.ISSUED:
                db.execute("UPDATE rows SET status = ?, step = ?, error = ?, certificate_numbers = ?, issued_at = ?, updated_at = ? WHERE batch_id = ? AND row_number = ?",
                           (status.value, Step.COMMITTED.value, error, json.dumps(certificate_numbers or []), now, now, batch_id, row_number))
                if content is not None:
                    db.execute("UPDATE rows SET content = ?, fingerprint = ?, near_key = ? WHERE batch_id = ? AND row_number = ?",
                               (json.dumps(content, sort_keys=True), fingerprint, near_key(content), batch_id, row_number))
                if settles:
                    other_batch, other_row = settles.rsplit(":", 1)
                    db.execute("UPDATE rows SET status = ?, step = ?, error = ?, certificate_numbers = ?, issued_at = ?, updated_at = ? WHERE batch_id = ? AND row_number = ? AND status != ?",
                               (status.value, Step.COMMITTED.value, f"Settled by row {row_number} of batch {batch_id}.", json.dumps(certificate_numbers or []),
                                now, now, other_batch, int(other_row), RowStatus.ISSUED.value))
            elif status == RowStatus.FAILED and not commit_reached:
                # FAILED is a definite refusal: a commit that was refused did not happen, so the row is back
                # to "order saved" and may take corrections.
                db.execute("UPDATE rows SET status = ?, error = ?, updated_at = ?, step = CASE WHEN step = ? THEN ? ELSE step END "
                           "WHERE batch_id = ? AND row_number = ? AND status != ?",
                           (status.value, error, now, Step.COMMIT.value, Step.ORDER.value, batch_id, row_number, RowStatus.ISSUED.value))
            else:
                db.execute("UPDATE rows SET status = ?, error = ?, updated_at = ? WHERE batch_id = ? AND row_number = ? AND status != ?",
                           (status.value, error, now, batch_id, row_number, RowStatus.ISSUED.value))
            db.execute("INSERT INTO events (batch_id, row_number, at, step, detail) VALUES (?,?,?,?,?)",
                       (batch_id, row_number, now, status.value, error))
            db.execute("UPDATE batches SET updated_at = ? WHERE id = ?", (now, batch_id))

        self._commit(write, wait=wait)
        return issued_at


def _insert_rows(db: sqlite3.Connection, batch_id: str, rows: Iterable[NewRow], now: str) -> None:
    """Insert planned rows (with their chosen ids) into ``batch_id``, inside the caller's transaction."""
    db.executemany(
        f"INSERT INTO rows ({_ROW_COLUMNS}, near_key) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [(batch_id, r.row_number, r.status.value, r.step.value, r.fingerprint,
          json.dumps(r.content, sort_keys=True) if r.content is not None else None,
          r.customer_id, r.sales_order_id, r.payment_id, r.payment_amount,
          json.dumps(r.commit_content, sort_keys=True) if r.commit_content is not None else None,
          json.dumps(r.certificate_numbers) if r.certificate_numbers else None, r.error, None, now, now, r.issued_at,
          near_key(r.content))
         for r in rows],
    )


def _os_user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment (containers); not worth failing for
        return None
