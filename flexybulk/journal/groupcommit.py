"""Group commit: the ledger's write transactions, shared by concurrent workers (issue #4).

The per-row writes of concurrent workers (``Journal.set_step``,
``Journal.finish_row``) queue up while a transaction is being written; the
next worker to find no transaction in progress writes everything queued in
one transaction, with one sync, and every worker whose record was in it then
goes on. A record a worker waits for is on disk (``synchronous=FULL``) when
its call returns; a record nobody waits for (``wait=False``) reaches the disk
with the next transaction, or at :meth:`_GroupCommit.flush`.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Callable, Iterable

from ..errors import JournalError
from .paths import ledger_write_error


class _Write:
    """One queued write for group commit: ``fn(db)`` runs inside the shared transaction."""

    __slots__ = ("fn", "waited", "done", "result", "error")

    def __init__(self, fn: Callable[[sqlite3.Connection], Any], waited: bool) -> None:
        self.fn = fn
        self.waited = waited  # a thread waits for it (else its error is kept for flush)
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None


class _GroupCommit:
    """The transaction half of :class:`~flexybulk.journal.Journal` (a mixin; it uses ``_db``, ``_lock``, the queue fields)."""

    class _Tx:
        def __init__(self, journal: Any) -> None:
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

    def _tx(self) -> "_GroupCommit._Tx":
        return _GroupCommit._Tx(self)

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
