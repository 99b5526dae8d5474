"""The second core: part of a big table laid out and rendered by a forked child process, or by this one.

Python renders on one core at a time (the GIL); a 100,000-row sheet keeps
it busy for about a second (benchmarks/README.md). :class:`Helper` forks a
child right after the table's rows are built: copy-on-write, so the child
sees every value without pickling. The child lays out and renders its part
of the rows (a callback of the caller), writes the XML to an anonymous
in-memory file and exits; the parent does its own part meanwhile and then
copies the child's XML into the sheet. Nothing the child makes is used
unless it all arrived: on any failure (no ``os.fork``, a child that dies,
says no, takes too long, or numbered a style the parent did not) the parent
renders that part itself, with the same code, so the file is the same byte
for byte either way (tests/test_writers.py).

Why forking here is safe although the process may have other threads (the
email worker feeders, the web server's, a runner's): after ``fork`` only
the forking thread runs in the child, and a lock another thread held stays
held there for ever, so the child must take none. It does not: it only
runs the rendering callbacks, which read the rows' own objects (consistent:
the forking thread holds the GIL, and no other thread writes to a sheet
being written) and build strings, and it talks only through its own pipes
and file with ``os.read``/``os.write``. It imports nothing (every module it
uses is loaded before the fork), logs and prints nothing (stdio's locks),
leaves the deflating thread alone (it is started after the fork, and is not
in the child), and ends with ``os._exit``: no ``atexit`` handlers (which
would stop the parent's email workers), no flushing of inherited buffers,
no closing of the parent's ledger connection. The cyclic GC is off while a
sheet is written (:func:`flexybulk.writers.gc_paused`), so the child never
walks objects other threads own. glibc's ``fork`` takes malloc's locks
around the fork, and CPython resets the GIL and its own locks in the child.

No process is left behind: the parent kills (SIGKILL) and reaps the child
whatever happens to it (:meth:`Helper.close`, from a ``finally``); Ctrl-C
reaches both (the child dies of it: it gets the default handler); and a
child whose parent is gone stops at its next chunk (its parent id changes)
or at its next read of the parent's pipe (end of file). Only Linux forks
here (macOS' system libraries are not fork-safe in threaded processes;
Windows has no fork).
"""

from __future__ import annotations

import os
import select
import signal
import sys
import tempfile
import time
from typing import Callable, Iterable, Iterator

FORK_MIN_ROWS = 20_000  # fewer rows: forking (about 10 ms for a 500 MB process) is not worth it
TIMEOUT = 60.0  # seconds the parent waits for each answer of a child before doing the work itself
PIECE = 8 << 20  # bytes per read of the child's XML
enabled = True  # tests turn the child off to compare the two ways


def available() -> bool:
    """True where a part may go to a forked child (Linux, ``os.fork``, not turned off)."""
    return enabled and sys.platform.startswith("linux") and hasattr(os, "fork")


class Helper:
    """A forked child doing one part of a table: ``prepare()`` (its widths), then ``render(widths)`` (its XML).

    ``guard()`` is a number that must not change in the child (the count of
    numbered styles: a style the child numbers would be missing from the
    parent's file). Use :meth:`widths`, then :meth:`go`, then :meth:`output`;
    each says ``None`` when the child failed, and the caller does that part
    itself. Always :meth:`close`.
    """

    def __init__(self, prepare: Callable[[], list[int]], render: Callable[[list[int]], Iterable[bytes]],
                 guard: Callable[[], int]) -> None:
        self.pid: int | None = None
        self._fds: list[int] = []
        self._buffer = b""
        try:
            up_r, up_w = os.pipe()  # child -> parent: its widths, then "done <bytes>"
            self._fds += [up_r, up_w]
            down_r, down_w = os.pipe()  # parent -> child: the table's widths
            self._fds += [down_r, down_w]
            self._out = _anonymous_file()
            self._fds.append(self._out)
            parent = os.getpid()
            pid = os.fork()
        except BaseException:
            self.close()
            raise
        if pid == 0:  # the child: never returns
            _child(prepare, render, guard, up_w, down_r, self._out, parent)
        self.pid = pid
        for fd in (up_w, down_r):
            os.close(fd)
            self._fds.remove(fd)
        self._up, self._down = up_r, down_w

    def widths(self) -> list[int] | None:
        """The child's widths of its part (``prepare``'s answer), or ``None`` if it failed."""
        line = self._line()
        if line is None or not line.startswith(b"widths "):
            return self._fail()
        return [int(w) for w in line[7:].split(b",") if w]

    def go(self, widths: list[int]) -> None:
        """Send the table's widths: the child renders its part."""
        if self.pid is None:
            return
        try:
            os.write(self._down, (",".join(map(str, widths)) + "\n").encode())
        except OSError:
            self._fail()

    def output(self) -> Iterator[bytes] | None:
        """The child's XML in pieces once it has all arrived, or ``None`` if the child failed."""
        line = self._line() if self.pid is not None else None
        if line is None or not line.startswith(b"done "):
            return self._fail()
        try:
            _, status = os.waitpid(self.pid, 0)
        except ChildProcessError:  # reaped by someone else's os.wait(): its last word is what counts
            status = 0
        self.pid = None
        size = int(line[5:])
        if status != 0 or os.fstat(self._out).st_size != size:
            return None
        return self._pieces(size)

    def _pieces(self, size: int) -> Iterator[bytes]:
        offset = 0
        while offset < size:
            piece = os.pread(self._out, min(PIECE, size - offset), offset)
            if not piece:
                raise OSError("the helper's XML ended early")
            offset += len(piece)
            yield piece

    def close(self) -> None:
        """Kill and reap the child if it still runs; close the pipes and the file."""
        self._fail()
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = []

    def _fail(self) -> None:
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass
            self.pid = None
        return None

    def _line(self) -> bytes | None:
        """The child's next line, or ``None`` at its end or after ``TIMEOUT`` seconds."""
        deadline = time.monotonic() + TIMEOUT
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._up], [], [], left)[0]:
                return None
            data = os.read(self._up, 65536)
            if not data:
                return None
            self._buffer += data
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line


def _anonymous_file() -> int:
    """A file in memory (Linux memfd) or, failing that, an unnamed temporary file."""
    try:
        return os.memfd_create("flexybulk-rows", os.MFD_CLOEXEC)
    except (AttributeError, OSError):
        fd, name = tempfile.mkstemp(prefix="flexybulk-rows-")
        os.unlink(name)
        return fd


def _child(prepare: Callable[[], list[int]], render: Callable[[list[int]], Iterable[bytes]],
           guard: Callable[[], int], up: int, down: int, out: int, parent: int) -> None:
    """The forked child's whole life: see the module docstring for what it may and may not do."""
    code = 1
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)  # Ctrl-C or a kill ends the child at once, no Python handler
        before = guard()
        widths = prepare()
        if guard() != before:
            code = 3
            return
        _write_all(up, b"widths " + ",".join(map(str, widths)).encode() + b"\n")
        line = b""
        while not line.endswith(b"\n"):
            data = os.read(down, 65536)
            if not data:  # the parent gave up on this child
                code = 4
                return
            line += data
        size = 0
        for chunk in render([int(w) for w in line.split(b",")]):
            _write_all(out, chunk)
            size += len(chunk)
            if os.getppid() != parent:  # the parent is gone: nobody will read this
                code = 5
                return
        if guard() != before:
            code = 3
            return
        _write_all(up, b"done %d\n" % size)
        code = 0
    except BaseException:  # whatever it is, the parent does this part itself
        code = 1
    finally:
        os._exit(code)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
