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

import contextlib
import getpass
import json
import os
import sqlite3
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from .errors import JournalError, LedgerBusy, LedgerMissing
from .model import RowStatus

SCHEMA_VERSION = 3
LEDGER_ENV = "FLEXYBULK_LEDGER"

_SCHEMA = """
CREATE TABLE batches (
    id            TEXT PRIMARY KEY,
    input_path    TEXT NOT NULL,
    input_sha256  TEXT NOT NULL,
    target        TEXT NOT NULL,
    sheet_name    TEXT,
    os_user       TEXT,
    options       TEXT NOT NULL DEFAULT '{}',
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    id_salt       TEXT,
    web_user      TEXT
);
CREATE INDEX batches_by_sha ON batches (input_sha256, target);

CREATE TABLE rows (
    batch_id            TEXT NOT NULL REFERENCES batches (id),
    row_number          INTEGER NOT NULL,
    status              TEXT NOT NULL,
    step                TEXT NOT NULL,
    fingerprint         TEXT,
    content             TEXT,
    customer_id         TEXT NOT NULL,
    sales_order_id      TEXT NOT NULL,
    payment_id          TEXT NOT NULL,
    payment_amount      TEXT,
    commit_content      TEXT,
    certificate_numbers TEXT,
    error               TEXT,
    settles             TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    issued_at           TEXT,
    near_key            TEXT,
    PRIMARY KEY (batch_id, row_number)
);
CREATE INDEX rows_by_fingerprint ON rows (fingerprint);
CREATE INDEX rows_by_near_key ON rows (near_key);
CREATE INDEX rows_by_order ON rows (sales_order_id);

CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    batch_id    TEXT NOT NULL,
    row_number  INTEGER,
    at          TEXT NOT NULL,
    step        TEXT NOT NULL,
    detail      TEXT
);
"""


class Step(str, Enum):
    """How far a row got. Each is recorded *before* its call is sent.

    ``COMMIT`` recorded but not ``COMMITTED`` means the commit may or may not
    have reached the server: only a re-post with the same payment id may
    settle it.
    """

    PLANNED = "PLANNED"  # ids chosen and recorded; nothing sent
    CUSTOMER = "CUSTOMER"  # customer PUT about to be sent
    ORDER = "ORDER"  # customer saved; sales order PUT about to be sent
    COMMIT = "COMMIT"  # sales order saved; commit about to be sent (payment_amount recorded)
    COMMITTED = "COMMITTED"  # the commit answered: the certificates exist


def utcnow() -> str:
    """Now in UTC, ISO 8601 with seconds and ``Z``-free offset (``2026-11-30T05:07:33+00:00``)."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def new_id() -> str:
    """A fresh random GUID (RFC 9562 version 4) as lower-case text."""
    return str(uuid.uuid4())


def ledger_write_error(path: Path, exc: BaseException) -> JournalError:
    """The user's message for a ledger write that failed: the file, the cause in plain words, what to do.

    SQLite's own words ("database or disk is full", "attempt to write a
    readonly database") are kept in brackets, after ours.
    """
    text = str(exc)
    low = text.lower()
    if "full" in low:
        cause = "the disk is full"
    elif "readonly" in low or "read-only" in low:
        cause = "the file or its folder is read-only"
    elif "locked" in low or "busy" in low:
        cause = "another program holds the database locked"
    elif "i/o" in low:
        cause = "the disk reported an error"
    else:
        cause = "the database refused the write"
    return JournalError(
        f"The ledger {path} could not be written: {cause} ({text}). Nothing was sent after this record failed. "
        "Free disk space or make the ledger writable, then rerun: unfinished rows finish with their recorded ids.")


def ledger_choice(ledger: Path | str | None, *, sandbox: bool = False) -> tuple[Path, bool]:
    """The ledger a command uses, and whether the person named it (issue #11: never a silent new ledger).

    ``ledger`` is the path given with ``--ledger`` (or ``None``); ``$FLEXYBULK_LEDGER``
    counts as named too. Only the default ledger in the user's data folder
    may be created without being asked for: a named path that does not exist
    is more likely a typo than a wish for an empty ledger.
    """
    if ledger:
        return Path(ledger).expanduser(), True
    return default_ledger_path(sandbox=sandbox), bool(os.environ.get(LEDGER_ENV))


def near_key(content: dict | None) -> str | None:
    """The key under which two orders count as near-duplicates: the same email (case-folded) and gift certificate type.

    Two rows with this key but other amounts or quantities are what a
    corrected copy of a file looks like (issue #11): the person would get a
    second gift certificate of the same type.
    """
    if not content or not content.get("email"):
        return None
    return f"{str(content['email']).casefold()}\x1f{json.dumps(content.get('type_id'), sort_keys=True)}"


def default_ledger_path(sandbox: bool = False) -> Path:
    """``$FLEXYBULK_LEDGER``, else a file in the user's data folder (platformdirs).

    The built-in sandbox's runs go to ``sandbox-ledger.sqlite3``, real runs
    to ``ledger.sqlite3``, so that trying things out never mixes with the
    record of real money (batches also carry their target, for the case
    where both share ``$FLEXYBULK_LEDGER``).
    """
    env = os.environ.get(LEDGER_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    name = "sandbox-ledger.sqlite3" if sandbox else "ledger.sqlite3"
    return Path(platformdirs.user_data_dir("flexybulk", appauthor=False)) / name


@dataclass
class BatchRecord:
    """A batch as recorded: one input file issued under one batch id.

    ``target`` names the Flexybox the batch was issued against (the POS base
    URL in its canonical spelling, or ``"sandbox"``): resume and duplicate
    protection only ever compare batches of the same target, so sandbox runs
    never hide real issues. ``id_salt`` is ``None`` when the batch's ids are
    derived from the file (the same file issued anywhere sends the same ids),
    else the random salt of a deliberate reissue. ``web_user`` is the web
    page's user who started it, if any.
    """

    id: str
    input_path: str
    input_sha256: str
    target: str
    sheet_name: str | None
    os_user: str | None
    options: dict
    created_at: str
    updated_at: str
    id_salt: str | None = None
    web_user: str | None = None


@dataclass
class RowRecord:
    """One row of one batch as recorded.

    ``content`` is the order as last planned (JSON object: name, email,
    type_id, type_name, department_id, department_name, price (text),
    quantity, currency, country, phone, address, postal_code, city), or
    ``None`` for a row that was never valid. ``payment_amount`` is the
    amount of the commit as sent (text of a Decimal), once a commit was
    attempted, and ``commit_content`` the content it was sent for: when
    that commit may have gone through, the row is only ever settled with
    exactly that content, never with later edits. Once ISSUED, ``content``
    is what was committed.
    """

    batch_id: str
    row_number: int
    status: RowStatus
    step: Step
    fingerprint: str | None
    content: dict | None
    customer_id: str
    sales_order_id: str
    payment_id: str
    payment_amount: str | None
    commit_content: dict | None
    certificate_numbers: list[str]
    error: str | None
    settles: str | None
    created_at: str
    updated_at: str
    issued_at: str | None

    @property
    def commit_may_have_happened(self) -> bool:
        """True when a commit was sent and no answer settled it.

        The step stays COMMIT whatever the row's status becomes later (an
        edit may even make it INVALID), until an answer settles it: ISSUED,
        or a definite refusal of a commit none of whose attempts may have
        reached Flexybox, which steps back to ORDER (:meth:`Journal.finish_row`).
        """
        return self.step == Step.COMMIT and self.status != RowStatus.ISSUED


@dataclass
class NewRow:
    """A row to record when a batch is created (ids chosen by the caller)."""

    row_number: int
    status: RowStatus
    fingerprint: str | None
    content: dict | None
    customer_id: str
    sales_order_id: str
    payment_id: str
    error: str | None = None
    # An adopted result sheet's row arrives part-way (issue #11): how far it got, as its sheet says.
    step: Step = Step.PLANNED
    payment_amount: str | None = None
    commit_content: dict | None = None
    certificate_numbers: list[str] | None = None
    issued_at: str | None = None


_ROW_COLUMNS = (
    "batch_id, row_number, status, step, fingerprint, content, customer_id, sales_order_id, payment_id, "
    "payment_amount, commit_content, certificate_numbers, error, settles, created_at, updated_at, issued_at"
)


class _Write:
    """One queued write for group commit: ``fn(db)`` runs inside the shared transaction."""

    __slots__ = ("fn", "waited", "done", "result", "error")

    def __init__(self, fn: Callable[[sqlite3.Connection], Any], waited: bool) -> None:
        self.fn = fn
        self.waited = waited  # a thread waits for it (else its error is kept for flush)
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None


def _row(rec: tuple) -> RowRecord:
    (batch_id, row_number, status, step, fp, content, cid, soid, pid, amount, committed, numbers, error, settles,
     created, updated, issued) = rec
    return RowRecord(batch_id, row_number, RowStatus(status), Step(step), fp,
                     json.loads(content) if content else None, cid, soid, pid, amount,
                     json.loads(committed) if committed else None,
                     json.loads(numbers) if numbers else [], error, settles, created, updated, issued)


class Journal:
    """The ledger database. Thread-safe; one instance per process.

    Args:
        path: the SQLite file; its folder is created if missing.

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

    def _open_schema(self) -> None:
        """Set the durability pragmas and create, upgrade or check the schema.

        Another process opening the same new ledger at the same moment can
        hold it while it switches to WAL, and SQLite then answers "database
        is locked" at once instead of waiting; so these steps are retried
        (tenacity) for up to 30 seconds.
        """
        import tenacity

        for attempt in tenacity.Retrying(
            stop=tenacity.stop_after_delay(30),
            wait=tenacity.wait_random(0.01, 0.1),
            retry=tenacity.retry_if_exception(lambda e: isinstance(e, sqlite3.OperationalError)
                                              and ("locked" in str(e) or "busy" in str(e))),
            reraise=True,
        ):
            with attempt:
                self._setup()

    def _setup(self) -> None:
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        # One write transaction: two processes opening a new ledger at once must not both create it.
        with self._tx():
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                tables = self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
                if tables:
                    raise JournalError(f"The ledger {self.path} is an SQLite file that flexybulk did not create. Point --ledger (or {LEDGER_ENV}) at another file.")
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        self._db.execute(stmt)
                self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            elif version in (1, 2):
                self._upgrade()
            elif version != SCHEMA_VERSION:
                raise JournalError(
                    f"The ledger {self.path} has schema version {version}; this flexybulk knows version {SCHEMA_VERSION}. "
                    "Use the flexybulk version that wrote it (upgrade flexybulk), or point --ledger at another file."
                )

    def _upgrade(self) -> None:
        """Bring a version 1 or 2 ledger to version 3 in place, inside the caller's transaction; rows keep their ids.

        Version 2 records the content each commit was sent for
        (``commit_content``). Version 3 (issue #11) records each batch's id
        salt (``NULL``: ids derived from the file, see ``issue.derived_id``) and
        web user, and each row's near-duplicate key; and it writes every
        batch's target in its canonical spelling, so that batches recorded as
        ``http://localhost:8780/`` and ``http://127.0.0.1:8780`` are one target.
        """
        from .settings import canonical_target

        def columns(table: str) -> set[str]:
            return {r[1] for r in self._db.execute(f"PRAGMA table_info({table})")}

        for table, column in (("rows", "commit_content"), ("batches", "id_salt"), ("batches", "web_user"), ("rows", "near_key")):
            if column not in columns(table):
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} TEXT")
        self._db.execute("CREATE INDEX IF NOT EXISTS rows_by_near_key ON rows (near_key)")
        for batch_id, target in self._db.execute("SELECT id, target FROM batches").fetchall():
            if canonical_target(target) != target:
                self._db.execute("UPDATE batches SET target = ? WHERE id = ?", (canonical_target(target), batch_id))
        for batch_id, row_number, content in self._db.execute(
                "SELECT batch_id, row_number, content FROM rows WHERE content IS NOT NULL").fetchall():
            self._db.execute("UPDATE rows SET near_key = ? WHERE batch_id = ? AND row_number = ?",
                             (near_key(json.loads(content)), batch_id, row_number))
        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @contextlib.contextmanager
    def issuing_lock(self, what: str) -> Iterator[None]:
        """Hold the ledger's issuing lock: one issuing process per ledger at a time.

        Two runs planning at once would each see the other's rows as not yet
        issued and issue them twice (the same file, or two files with the same
        rows). So planning and running a batch happen under an OS lock, which
        the OS releases when the process ends, ``kill -9`` included. The lock
        is taken on the database file itself (``flock``, which is per file,
        not per path), so a symlink, a second spelling of the path or a bind
        mount reaches the same lock (issue #11); the ``<real path>.lock`` file
        of earlier flexybulk versions is taken too, so an older copy running
        at the same moment is kept out as before. ``what`` (e.g. the command
        and file) is shown to a second run that finds the lock taken.

        Raises:
            LedgerBusy: another process holds the lock.
        """
        import filelock

        real = Path(os.path.realpath(self.path))
        info = Path(str(real) + ".lock.info")
        lock = filelock.FileLock(str(real) + ".lock", timeout=0)
        try:
            self._flock()
            lock.acquire()
        except (BlockingIOError, filelock.Timeout):
            self._unflock()
            try:
                holder = info.read_text(encoding="utf-8").strip()
            except OSError:
                holder = "another flexybulk process"
            raise LedgerBusy(
                f"Another flexybulk is issuing with the ledger {self.path} right now ({holder}). "
                "Wait for it to finish, then run again: running both at once could issue the same rows twice."
            ) from None
        try:
            info.write_text(f"pid {os.getpid()}, {what}, since {utcnow()}", encoding="utf-8")
            yield
        finally:
            try:
                info.unlink()
            except OSError:
                pass
            lock.release()
            self._unflock()

    def _flock(self) -> None:
        """Take ``flock(LOCK_EX | LOCK_NB)`` on the database file; raises ``BlockingIOError`` when another holds it.

        The descriptor stays open until :meth:`close` has closed the SQLite
        connection: closing any descriptor of a file drops the POSIX locks that
        this process's SQLite connection holds on it (SQLite's documented
        "POSIX advisory locking" caveat). ``flock`` and SQLite's ``fcntl`` locks
        do not interact on Linux and macOS. Where there is no ``fcntl``
        (Windows), only the ``.lock`` file is used.
        """
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not on the platforms we run on
            return
        if self._lock_fd is None:
            self._lock_fd = os.open(self.path, os.O_RDONLY)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unflock(self) -> None:
        if self._lock_fd is not None:
            import fcntl

            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

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

    class _Tx:
        def __init__(self, journal: "Journal") -> None:
            self.j = journal

        def __enter__(self) -> sqlite3.Connection:
            self.j._drain()  # records queued before this transaction go to disk first, in order
            self.j._lock.acquire()
            try:
                self.j._db.execute("BEGIN IMMEDIATE")
            except BaseException as exc:
                self.j._lock.release()
                if isinstance(exc, sqlite3.Error):
                    raise ledger_write_error(self.j.path, exc) from None
                raise
            return self.j._db

        def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
            try:
                try:
                    self.j._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
                except sqlite3.Error as commit_error:
                    if exc_type is None:
                        raise ledger_write_error(self.j.path, commit_error) from None
                    # The body's own error is the one worth telling.
            finally:
                self.j._lock.release()
            if exc_type is not None and issubclass(exc_type, sqlite3.Error):
                raise ledger_write_error(self.j.path, exc) from None

    def _tx(self) -> "Journal._Tx":
        return Journal._Tx(self)

    def _commit(self, fn: Callable[[sqlite3.Connection], Any], *, wait: bool = True) -> Any:
        """Run ``fn(db)`` in a transaction shared with other threads' queued writes (group commit).

        With ``wait`` (step records), returns ``fn``'s result only once the
        transaction holding it is committed, ``synchronous=FULL``, i.e. on
        disk. Without, queues ``fn`` and returns ``None`` at once: it is
        written with the next transaction any thread writes, in queue order,
        or by :meth:`flush`.

        Raises:
            JournalError: the transaction holding ``fn`` could not be written.
        """
        write = _Write(fn, wait)
        with self._queue_cond:
            self._queue.append(write)
            if not wait:
                return None
            while self._writing and not write.done:
                self._queue_cond.wait()
            if not write.done:
                # Nobody is writing: this thread writes everything queued, its own record included.
                self._writing = True
                batch, self._queue = self._queue, []
        if not write.done:
            try:
                self._write_batch(batch)
            finally:
                with self._queue_cond:
                    for w in batch:
                        w.done = True
                    self._writing = False
                    self._queue_cond.notify_all()
        if write.error is not None:
            raise write.error
        return write.result

    def _write_batch(self, batch: list[_Write]) -> None:
        """One transaction for ``batch``; on failure every write in it gets the error (none of it was written)."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                for w in batch:
                    w.result = w.fn(self._db)
                self._db.execute("COMMIT")
            except BaseException as exc:
                if self._db.in_transaction:
                    try:
                        self._db.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                error = exc if isinstance(exc, JournalError) else ledger_write_error(self.path, exc)
                for w in batch:
                    w.error = error
                if not all(w.waited for w in batch):
                    self._deferred_error = self._deferred_error or error
                if not isinstance(exc, Exception):
                    raise

    def _drain(self) -> None:
        """Write every record queued so far (without reporting an earlier deferred error).

        Records that cannot be written (a full disk) are dropped from the queue,
        and the error is kept for :meth:`flush`: what is on disk can still be
        read, so the result sheet is written from what the ledger really holds.
        """
        with self._queue_cond:
            if not self._queue and not self._writing:
                return
        try:
            self._commit(lambda db: None)
        except JournalError as exc:
            with self._queue_cond:
                self._deferred_error = self._deferred_error or exc

    def flush(self) -> None:
        """Write every record queued so far (``finish_row(..., wait=False)``) to disk now.

        Raises:
            JournalError: a queued record could not be written.
        """
        self._drain()
        with self._queue_cond:
            error, self._deferred_error = self._deferred_error, None
        if error is not None:
            raise error

    def _query(self, sql: str, args: Iterable[Any] = ()) -> list[tuple]:
        self._drain()  # a read sees every record written before it, queued ones included
        with self._lock:
            try:
                return self._db.execute(sql, tuple(args)).fetchall()
            except sqlite3.DatabaseError as exc:
                raise JournalError(f"The ledger {self.path} could not be read: {exc}.") from None

    # -- batches -----------------------------------------------------------

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

    def find_batch_by_sha256(self, sha256: str, target: str) -> BatchRecord | None:
        """The most recent batch for ``target`` made from a file with exactly these bytes, or ``None``."""
        rows = self._query("SELECT id FROM batches WHERE input_sha256 = ? AND target = ? ORDER BY created_at DESC, rowid DESC LIMIT 1", (sha256, target))
        return self.get_batch(rows[0][0]) if rows else None

    def batches(self) -> list[BatchRecord]:
        """Every batch, oldest first."""
        return [b for (bid,) in self._query("SELECT id FROM batches ORDER BY created_at, rowid") if (b := self.get_batch(bid))]

    # -- rows --------------------------------------------------------------

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
