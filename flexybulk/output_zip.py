"""The XLSX package: XlsxWriter's workbook copied into the file, each big table's rows streamed in, deflated on threads.

The rows are rendered on the calling thread (Python, holding the GIL);
:func:`_pipe` hands them over in pieces of several MiB, and
:class:`_Deflater` deflates the pieces on other threads at once (zlib lets
go of the GIL), so compressing costs little wall time on two cores. Each
piece is its own deflate stream ended by a sync flush: the pieces one after
the other are one valid stream (as ``pigz --independent`` writes), which
every unzip, Excel, LibreOffice and calamine read (tests/test_writers.py).
"""

from __future__ import annotations

import collections
import contextlib
import io
import itertools
import os
import queue
import sys
import threading
import zlib
from typing import Any, Iterable, Iterator


def package(frame: io.BytesIO, fh: Any, tables: list) -> None:
    """Copy XlsxWriter's workbook into ``fh``, each table sheet with its rows streamed in at its marker.

    The rows are rendered here (Python, holding the GIL) while other threads
    deflate what is ready (zlib lets go of the GIL): several pieces at once
    where zipfile takes :class:`_Deflater`, so compressing costs little wall
    time on a machine with two cores.
    """
    import zipfile

    # Level 1: a third of level 6's time for a file a fifth larger (a 100,000-row sheet: 0.25 s, 10 MiB).
    with zipfile.ZipFile(frame) as src, zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as out:
        for info in src.infolist():
            data = src.read(info)
            table = next((t for t in tables if t.marker.encode() in data), None)
            if table is None:
                out.writestr(info.filename, data)  # by name: the ZipFile's compression and level apply
                continue
            head, tail = data.split(table.marker.encode())
            deflater = None
            try:
                with out.open(info.filename, "w") as member:
                    deflater = _Deflater.take_over(member, 1)
                    _pipe(member, itertools.chain([head], table.xml_chunks(), [tail]))
                    # Leaving the block flushes the deflater into the member, then the member's header.
            finally:
                if deflater is not None:
                    deflater.stop()


_FINAL_BLOCK = zlib.compressobj(1, zlib.DEFLATED, -15).flush()  # an empty last block: ends a deflate stream


def _deflate_piece(data: bytes, level: int) -> bytes:
    """``data`` deflated on its own, ending on a byte boundary with no last block (a sync flush)."""
    deflate = zlib.compressobj(level, zlib.DEFLATED, -15)
    return deflate.compress(data) + deflate.flush(zlib.Z_SYNC_FLUSH)


class _Deflater:
    """A compressor for zipfile's member writer (``compress``, ``flush``) that deflates pieces on several threads.

    Each piece is deflated on its own: a fresh zlib stream ending with a sync
    flush (byte-aligned, not the last block), so pieces one after the other
    are one valid deflate stream, closed by an empty last block (what
    ``pigz --independent`` writes). The member writer still computes the CRC
    and sizes of the data it is given. :meth:`take_over` puts one in place of
    the writer's own compressor, where the writer has one by the name it had
    up to this Python (tests/test_writers.py checks it still has).
    """

    def __init__(self, level: int, threads: int) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._level = level
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="flexybulk-deflate")
        self._pending: collections.deque = collections.deque()
        self._ahead = threads + 1  # pieces in flight at most: memory stays a few pieces
        self._stopped = False

    @classmethod
    def take_over(cls, member: Any, level: int) -> "_Deflater | None":
        threads = min(4, os.cpu_count() or 1)
        if threads < 2 or getattr(member, "_compressor", None) is None:
            return None
        deflater = cls(level, threads)
        member._compressor = deflater
        return deflater

    def compress(self, data: Any) -> bytes:
        self._pending.append(self._pool.submit(_deflate_piece, bytes(data), self._level))
        done = []
        while self._pending and (self._pending[0].done() or len(self._pending) > self._ahead):
            done.append(self._pending.popleft().result())
        return b"".join(done)

    def flush(self) -> bytes:
        if self._stopped:  # after a failure: the member is thrown away
            return b""
        done = [piece.result() for piece in self._pending]
        self._pending.clear()
        return b"".join(done) + _FINAL_BLOCK

    def stop(self) -> None:
        """End the threads (after :meth:`flush`, or after a failure: what is pending is dropped)."""
        self._stopped = True
        for piece in self._pending:
            piece.cancel()
        self._pending.clear()
        self._pool.shutdown(wait=True)


_HAND_OVER = 8 << 20  # bytes of XML per hand-over to the deflating thread
_SWITCH_INTERVAL = 0.0005  # seconds; Python's default is 0.005
_switching = threading.Lock()
_switch_state = {"writers": 0, "before": 0.0}


@contextlib.contextmanager
def _quick_switches() -> Iterator[None]:
    """A shorter GIL switch interval while a sheet is deflated on a second thread (restored after the last writer).

    zlib lets go of the GIL while it works, but takes it back several times
    per write (after the CRC, after each output block); each time it waits
    for the rendering thread to reach the switch interval. At Python's 5 ms
    the deflating thread spent most of a 100,000-row sheet waiting (1.3 s
    for 0.45 s of work), longer than the rendering it should hide behind.
    """
    with _switching:
        if _switch_state["writers"] == 0:
            _switch_state["before"] = sys.getswitchinterval()
            sys.setswitchinterval(min(_SWITCH_INTERVAL, _switch_state["before"]))
        _switch_state["writers"] += 1
    try:
        yield
    finally:
        with _switching:
            _switch_state["writers"] -= 1
            if _switch_state["writers"] == 0:
                sys.setswitchinterval(_switch_state["before"])


def _pipe(member: Any, chunks: Iterable[bytes]) -> None:
    """Write ``chunks`` to ``member`` from a second thread, while this one makes the next chunk.

    The chunks go over in pieces of several MiB: each write takes the GIL
    back three times (CRC, deflate, file), and a thread that wants the GIL
    waits up to the switch interval (5 ms) while this one renders, so many
    small writes would keep the deflating thread waiting, not working.
    """
    ready: queue.Queue = queue.Queue(maxsize=2)
    failed: list[BaseException] = []

    def deflate() -> None:
        try:
            while (piece := ready.get()) is not None:
                member.write(piece)
        except BaseException as exc:  # handed to the making thread, which stops and raises it
            failed.append(exc)
            while ready.get() is not None:
                pass

    worker = threading.Thread(target=deflate, name="flexybulk-xlsx-deflate", daemon=True)
    with _quick_switches():
        worker.start()
        try:
            _feed(ready, chunks, failed)
        finally:
            worker.join()
    if failed:
        raise failed[0]


def _feed(ready: queue.Queue, chunks: Iterable[bytes], failed: list) -> None:
    """Put ``chunks`` on ``ready`` in pieces of ``_HAND_OVER`` bytes, then ``None``; stop early if the taker failed."""
    try:
        pending: list[bytes] = []
        size = 0
        for chunk in chunks:
            if failed:
                break
            pending.append(chunk)
            size += len(chunk)
            if size >= _HAND_OVER:
                ready.put(b"".join(pending))
                pending, size = [], 0
        if pending and not failed:
            ready.put(b"".join(pending))
    finally:
        ready.put(None)
