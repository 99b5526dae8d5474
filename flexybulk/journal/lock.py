"""The ledger's issuing lock: one issuing process per ledger file, however the file is reached (issue #11)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

from ..errors import LedgerBusy
from .paths import ledger_write_error
from .records import utcnow


class _IssuingLock:
    """The lock half of :class:`~flexybulk.journal.Journal` (a mixin; it uses ``path`` and ``_lock_fd``)."""

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
            try:
                info.write_text(f"pid {os.getpid()}, {what}, since {utcnow()}", encoding="utf-8")
            except OSError as exc:  # a full disk or a read-only folder: said as for the ledger itself, exit 2
                raise ledger_write_error(info, exc) from None
            yield
        finally:
            try:
                info.unlink()
            except OSError:
                pass
            lock.release()
            self._unflock()

    def issuing_now(self) -> bool:
        """True when a process (this one included) holds the ledger's issuing lock: a run is planning or issuing.

        A run writes ``.lock.info`` once it holds the lock and removes it when
        it lets go: without that file no run is working, and the lock is not
        probed (a probe held for a moment could make a run starting just then
        find the lock taken). With it (a run, or one killed before it could
        remove the file) the ``.lock`` file is probed, never the database
        file: closing a descriptor of that would drop the POSIX locks SQLite
        holds on it (see :meth:`_flock`). A moment's answer: a run may start
        just after.
        """
        import filelock

        real = os.path.realpath(self.path)
        if not os.path.exists(real + ".lock.info"):
            return False
        lock = filelock.FileLock(real + ".lock", timeout=0)
        try:
            lock.acquire()
        except filelock.Timeout:
            return True
        except OSError:  # a folder it cannot write to: no run can hold the lock there either
            return False
        lock.release()
        return False

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
