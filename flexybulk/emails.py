"""Email address verdicts for a whole sheet: email-validator's, computed faster (issue #4).

email-validator (``validate_email(address, check_deliverability=False)``) is
the only judge of an address here: nothing in this module parses addresses.
On a 100,000-row sheet it costs 40-50 µs per distinct address, more than the
whole bare read of the file, and about 60% of that is the check of the part
after the @-sign, although a sheet has only a few dozen distinct domains.
Two things make it cheaper without changing a single verdict or message:

1. **The domain step runs once per distinct domain** (:class:`EmailChecker`).
   The check runs email-validator's own ``validate_email`` code object (not a
   copy of its logic), with one difference in the globals it looks names up
   in: ``validate_email_domain_name`` (email-validator's domain check, a pure
   function of the domain text and two options) is memoised for successful
   results. Failures are not memoised: a bad domain is checked again each
   time, so its exception is email-validator's own. The memo lives as long
   as one checker (one sheet), so a change to email-validator's module
   settings (e.g. ``SPECIAL_USE_DOMAIN_NAMES``) between sheets is honoured.
   This relies on email-validator internals, so it is used only for the
   versions it was verified on (:data:`MEMO_VERSIONS`);
   with any other version the plain ``validate_email`` runs.
   ``tests/test_emails.py`` compares it with the plain call on tricky addresses.
2. **Many distinct addresses are checked in parallel** (:class:`EmailVerdicts`):
   from :data:`PARALLEL_MIN` distinct addresses, worker processes (fresh
   interpreters running this module) check chunks of addresses in sheet order,
   ahead of the calling process, which checks the rows and itself checks any
   chunk it needs that no worker has taken yet (so it never waits for a slow
   worker, and never works on email when the workers keep ahead). When it
   needs a chunk a worker is still checking, it checks the last chunk nobody
   has taken meanwhile, rather than idle. If the workers cannot start or die, the calling
   process checks everything itself.
"""

from __future__ import annotations

import collections
import os
import pickle
import queue
import subprocess
import sys
import threading
import time
import types
from typing import Callable, Iterable

import email_validator
from email_validator import EmailNotValidError, validate_email

Verdict = tuple  # (normalized, None) or (None, reason)

# email-validator versions whose ``validate_email`` was checked to call ``validate_email_domain_name``
# through its module globals, as a pure function of (domain, test_environment, globally_deliverable).
MEMO_VERSIONS = ("2.4.",)

PARALLEL_MIN = 20_000  # distinct addresses; below this, starting workers costs more than it saves
CHUNK = 2_000  # addresses per piece of work handed to a worker (about 40 ms of email-validator)
MAX_WORKERS = 4
IN_FLIGHT = 2  # chunks handed to one worker before its first answer is read


class EmailChecker:
    """email-validator's verdict on addresses, the domain step memoised per distinct domain.

    ``EmailChecker()(address)`` returns ``(normalized, None)`` when
    ``email_validator.validate_email(address, check_deliverability=False)``
    accepts the address (``normalized`` being its ``.normalized``), else
    ``(None, str(exception))``: exactly what the plain call gives, with the
    domain's IDNA/UTS-46 checks done once per distinct domain. See the module
    docstring for why this is safe and when it falls back to the plain call.
    """

    def __init__(self, *, memo: bool | None = None) -> None:
        if memo is None:
            memo = email_validator.__version__.startswith(MEMO_VERSIONS)
        self.memoised = False
        self._validate: Callable = validate_email
        if memo:
            fn = _memoised_validate_email()
            if fn is not None:
                self._validate, self.memoised = fn, True

    def __call__(self, address: str) -> Verdict:
        try:
            result = self._validate(address, check_deliverability=False)
        except EmailNotValidError as exc:
            return None, str(exc)
        return result.normalized, None


def _memoised_validate_email() -> Callable | None:
    """email-validator's own ``validate_email`` function, run with its domain check memoised.

    A new function object sharing ``validate_email.__code__``, defaults and
    closure, whose globals are a copy of its module's with
    ``validate_email_domain_name`` replaced by a memoising wrapper (the library
    itself is not patched). ``None`` if the library is not laid out as expected.
    """
    original = validate_email
    module_globals = original.__globals__
    domain_check = module_globals.get("validate_email_domain_name")
    if domain_check is None or "validate_email_domain_name" not in original.__code__.co_names:
        return None
    memo: dict[tuple, dict] = {}

    def validate_email_domain_name(domain: str, test_environment: bool = False, globally_deliverable: bool = True) -> dict:
        key = (domain, test_environment, globally_deliverable)
        found = memo.get(key)
        if found is None:
            found = memo[key] = domain_check(domain, test_environment=test_environment,
                                             globally_deliverable=globally_deliverable)
        return dict(found)  # a copy: the caller never shares the memo's dict

    new_globals = dict(module_globals)
    new_globals["validate_email_domain_name"] = validate_email_domain_name
    fn = types.FunctionType(original.__code__, new_globals, original.__name__, original.__defaults__, original.__closure__)
    fn.__kwdefaults__ = dict(original.__kwdefaults__ or {})
    fn.__qualname__ = original.__qualname__
    fn.__doc__ = original.__doc__
    return fn


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


_FREE, _MINE, _WORKER, _DONE = range(4)


class EmailVerdicts:
    """The verdicts on a sheet's addresses, looked up in sheet order.

    Args:
        addresses: every cleaned address of the sheet, in row order (repeats allowed).
        parallel_min: from this many distinct addresses on, worker processes
            help (if more than one CPU is usable).
        workers: worker processes to start (default: usable CPUs - 1, at most 4).
        chunk: distinct addresses per piece of work.

    ``get(address)`` returns the :class:`EmailChecker` verdict for an address
    from ``addresses`` (any other address is checked on the spot). Each worker
    is a fresh ``python -m flexybulk.emails`` child process (never a fork, and
    never re-running the caller's ``__main__``) fed chunks by a thread, in
    sheet order; a lookup whose chunk no worker has taken
    yet checks that chunk in-process, and a lookup whose chunk a worker is
    still checking checks the last untaken chunk meanwhile, so the caller waits
    only when every chunk is taken (``waited``: seconds spent so). Whatever goes wrong with a worker (cannot
    start, dies, answers nonsense), its chunk is checked in-process: the
    verdicts never depend on the workers. Call :meth:`close` (or use ``with``).
    """

    def __init__(self, addresses: Iterable[str], *, parallel_min: int = PARALLEL_MIN, workers: int | None = None,
                 chunk: int = CHUNK) -> None:
        self.check = EmailChecker()
        self.results: dict[str, Verdict] = {}
        self.parallel = False
        self.chunks_by_workers = 0
        self.waited = 0.0  # seconds get() spent waiting for a worker's chunk
        self.chunks_stolen = 0  # chunks checked here from the end while a worker had the one needed
        self._chunk_of: dict[str, int] = {}
        self._chunks: list[list[str]] = []
        self._state: list[int] = []
        self._done: dict[int, list[Verdict]] = {}
        self._cond = threading.Condition()
        self._closed = False
        self._procs: list[subprocess.Popen] = []
        distinct = list(dict.fromkeys(addresses))
        if workers is None:
            workers = min(MAX_WORKERS, _usable_cpus() - 1)
        if len(distinct) < parallel_min or workers < 1:
            return
        self._chunks = [distinct[i:i + chunk] for i in range(0, len(distinct), chunk)]
        for k, piece in enumerate(self._chunks):
            self._chunk_of.update(dict.fromkeys(piece, k))
        self._state = [_FREE] * len(self._chunks)
        self._tail = len(self._chunks) - 1
        self._next = 1  # chunk 0 is the caller's at once, while the workers start
        self.parallel = True
        for _ in range(workers):
            threading.Thread(target=self._feed, name="flexybulk-email-worker", daemon=True).start()

    def get(self, address: str) -> Verdict:
        """The verdict on ``address``: ``(normalized, None)`` or ``(None, reason)``."""
        found = self.results.get(address)
        if found is not None:
            return found
        k = self._chunk_of.get(address)
        if k is None:
            found = self.results[address] = self.check(address)
            return found
        self._settle(k)
        return self.results[address]

    def _settle(self, k: int) -> None:
        """Make chunk ``k``'s verdicts known: a worker's if it took the chunk, else checked here.

        While a worker still has chunk ``k``, this checks the last chunk nobody has taken instead of
        idling (the workers take chunks from the front), and waits only when no such chunk is left.
        """
        while True:
            with self._cond:
                if self._state[k] != _WORKER:
                    verdicts = self._done.pop(k, None)
                    if verdicts is None:
                        self._state[k] = _MINE
                    break
                j = self._last_free(k)
                if j is None:
                    started = time.perf_counter()
                    while self._state[k] == _WORKER:
                        self._cond.wait()
                    self.waited += time.perf_counter() - started
                    continue
                self._state[j] = _MINE
            self._store(j, [self.check(a) for a in self._chunks[j]])
            self.chunks_stolen += 1
        self._store(k, verdicts if verdicts is not None else [self.check(a) for a in self._chunks[k]])

    def _last_free(self, k: int) -> int | None:
        """The last chunk after ``k`` that nobody has taken (call with the lock held)."""
        while self._tail > k and self._state[self._tail] != _FREE:
            self._tail -= 1
        return self._tail if self._tail > k else None

    def _store(self, k: int, verdicts: list[Verdict]) -> None:
        """Chunk ``k``'s verdicts into ``results`` (which ``get`` looks in before ``_chunk_of``)."""
        self.results.update(zip(self._chunks[k], verdicts))
        self._state[k] = _DONE

    def _claim(self) -> int | None:
        """The first chunk nobody has taken, marked as a worker's; ``None`` when none is left."""
        with self._cond:
            while not self._closed and self._next < len(self._chunks):
                k = self._next
                self._next += 1
                if self._state[k] == _FREE:
                    self._state[k] = _WORKER
                    return k
            return None

    def _feed(self) -> None:
        """One worker thread: start a worker process, hand it chunks in sheet order until none is left.

        ``IN_FLIGHT`` chunks are kept in flight, so the worker never idles while this thread waits for
        the GIL (which the calling thread, busy checking rows, holds most of the time). The chunks are
        written by a second thread: a chunk or its verdicts can be larger than a pipe's buffer, and a
        worker blocked writing verdicts that nobody reads, while this thread is blocked writing it the
        next chunk, would hang both for ever.
        """
        in_flight: collections.deque[int] = collections.deque()
        outbox: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        proc = None

        def write() -> None:
            try:
                while (k := outbox.get()) is not None:
                    _send(proc.stdin, self._chunks[k])
            except Exception:  # the worker is gone, or must go: the reading side then sees EOF and hands the chunks back
                try:
                    proc.kill()
                except OSError:
                    pass

        try:
            proc = _start_worker()
            with self._cond:
                if self._closed:
                    return
                self._procs.append(proc)
            threading.Thread(target=write, name="flexybulk-email-writer", daemon=True).start()
            while True:
                while len(in_flight) < IN_FLIGHT and (k := self._claim()) is not None:
                    outbox.put(k)
                    in_flight.append(k)
                if not in_flight:
                    break
                k = in_flight[0]
                verdicts = _receive(proc.stdout)
                if not isinstance(verdicts, list) or len(verdicts) != len(self._chunks[k]):
                    raise ValueError("worker answered nonsense")
                with self._cond:
                    self._done[k] = verdicts
                    self._state[k] = _DONE
                    self.chunks_by_workers += 1
                    self._cond.notify_all()
                in_flight.popleft()
        except Exception:  # the worker cannot start or failed: its chunks go back to the caller
            pass
        finally:
            outbox.put(None)
            with self._cond:
                for k in in_flight:
                    if self._state[k] == _WORKER:
                        self._state[k] = _FREE
                self._cond.notify_all()
            if proc is not None:
                _stop_worker(proc)  # a write still blocked on the pipe fails and ends the writer

    def close(self) -> None:
        """Stop the workers: no more chunks are handed out and their processes end."""
        with self._cond:
            self._closed = True
            procs, self._procs = self._procs, []
        for proc in procs:
            _stop_worker(proc)

    def __enter__(self) -> "EmailVerdicts":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _start_worker() -> subprocess.Popen:
    """``python -m flexybulk.emails`` with this interpreter, finding this copy of flexybulk first."""
    if not sys.executable:
        raise RuntimeError("no interpreter to start")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    # Started in the folder holding this copy: ``-m`` looks in the current folder first, and the
    # user's folder (their Downloads, another checkout) could hold some other ``flexybulk``.
    return subprocess.Popen([sys.executable, "-m", "flexybulk.emails"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, close_fds=True, cwd=root)


def _stop_worker(proc: subprocess.Popen) -> None:
    try:
        proc.kill()
    except OSError:
        pass
    for stream in (proc.stdin, proc.stdout):
        try:
            stream.close()
        except (OSError, ValueError):
            pass
    try:
        proc.wait(timeout=5)
    except Exception:
        pass


def _send(stream, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(len(data).to_bytes(8, "big") + data)
    stream.flush()


def _receive(stream):
    header = stream.read(8)
    if len(header) != 8:
        raise EOFError("worker closed its output")
    size = int.from_bytes(header, "big")
    data = stream.read(size)
    if len(data) != size:
        raise EOFError("worker closed its output")
    return pickle.loads(data)  # our own child process's answer


def _worker_main() -> None:
    """The worker process: read chunks of addresses on stdin, write their verdicts on stdout, until EOF."""
    check = EmailChecker()
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            addresses = _receive(inp)
        except EOFError:
            return
        _send(out, [check(a) for a in addresses])


if __name__ == "__main__":
    _worker_main()
