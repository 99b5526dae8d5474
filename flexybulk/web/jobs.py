"""The issuing queue: one worker thread per server, so one batch at a time per ledger.

Everything that needs the ledger's issuing lock goes through this queue, in
order: the *preview* of a batch (``Issuing.prepare`` and, since nobody has
confirmed yet, ``Issuing.decline``: the figures the confirmation page shows)
and the *run* of a confirmed batch (``prepare`` again, then ``run`` only if
:func:`~flexybulk.confirmations.plan_digest` is still the digest the person
confirmed). A second batch waits with its place shown. A run's progress is
read from the ledger (:func:`~flexybulk.batches.batch_progress`); this
module adds only what the ledger cannot know: rows per second and the ETA of
the run in this process, and the stop event.

Exactly once does not depend on this module: it is the ledger's (ids on disk
before each call), and a server killed mid-run leaves its rows PENDING or
UNKNOWN for Resume, which prepares the same batch again with its recorded ids.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

from .. import batches
from ..confirmations import plan_digest, record_web_decision
from ..errors import FlexybulkError, LedgerBusy
from ..fixes import apply_fixes, canonical_json
from ..target import Target
from .store import Upload, UploadStore

log = logging.getLogger("flexybulk.web")

BUSY_RETRY_SECONDS = 2.0


@dataclass
class Preview:
    """What the confirmation page shows: a batch prepared (and declined), as plain values.

    ``key`` says which state of the upload it was made from; a changed fix
    or setting makes a new preview.
    """

    key: str
    digest: str = ""
    error: str | None = None
    blocked: bool = False
    blocking: list[tuple[int, str]] = field(default_factory=list)
    rows: int = 0
    certificates: int = 0
    amounts: dict[str, Decimal] = field(default_factory=dict)
    by_type: dict[str, Any] = field(default_factory=dict)
    by_department: dict[str, Any] = field(default_factory=dict)
    already_issued: int = 0
    issued_edited: list[tuple[int, str]] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)
    near: list[tuple[int, str]] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    settling: list[tuple[int, str]] = field(default_factory=list)
    in_doubt: int = 0  # rows to send whose commit an earlier run sent and nothing settled (Prepared.in_doubt)
    in_doubt_rows: str = ""
    warnings: list[str] = field(default_factory=list)
    target: str = ""
    sandbox: bool = False
    batch_id: str | None = None
    resumed: bool = False


@dataclass
class Work:
    """One item of the queue: ``preview`` or ``issue`` (a run) of one upload."""

    kind: str
    upload_id: str
    key: str = ""
    user: str = ""
    digest: str | None = None  # None for Resume: continue the recorded batch
    near_confirmed: bool = False
    done: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)
    message: str | None = None
    total: int = 0
    finished: int = 0
    started: float | None = None
    attention: list[tuple[int, str, str | None]] = field(default_factory=list)

    @property
    def rate(self) -> float | None:
        """Rows finished per second in this run, once a row has finished."""
        if not self.started or not self.finished:
            return None
        return self.finished / max(time.monotonic() - self.started, 1e-6)

    @property
    def eta(self) -> float | None:
        """Seconds until the last row, at the rate so far."""
        rate = self.rate
        return (self.total - self.finished) / rate if rate else None


def preview_key(upload: Upload) -> str:
    """Which state of an upload a preview is for: mode, read settings, skip-invalid and the fixes."""
    fixes = upload.retry_fixes() if upload.mode == "retry" else upload.fixes()
    return "|".join([upload.mode, repr(sorted((upload.request or {}).items(), key=str)), str(upload.skip_invalid),
                     canonical_json(fixes)])


class Issuer:
    """The queue and its worker thread.

    Args:
        target: where batches go. ledger: the ledger file. store: the uploads.
        read_request: builds the :class:`~flexybulk.batches.ReadRequest` of an upload.
        redact: removes secrets from a message before it is kept or shown.
    """

    def __init__(self, target: Target, ledger: Path, store: UploadStore,
                 read_request: Callable[[Upload], batches.ReadRequest], redact: Callable[[str], str]) -> None:
        self.target, self.ledger, self.store = target, Path(ledger), store
        self.read_request, self.redact = read_request, redact
        self._queue: collections.deque[Work] = collections.deque()
        self._cond = threading.Condition()
        self.current: Work | None = None
        self.previews: dict[str, Preview] = {}
        self.stopped: str | None = None
        self.waiting: list[str] = []
        self._closing = False
        self._thread = threading.Thread(target=self._loop, name="flexybulk-issuer", daemon=True)
        self._thread.start()

    # -- what the views ask --------------------------------------------------------------

    def input_of(self, upload: Upload, *, fixed: bool = True) -> batches.Input:
        """The upload's input as it would be issued: the sheet and its fixes, or the result sheet and its retry fixes
        (``fixed=False``: without the fixes, as read)."""
        request = self.read_request(upload)
        if upload.mode == "retry":
            source = batches.read_input(upload.result_path, request, command="retry")
            return apply_fixes(source, upload.retry_fixes()) if fixed else source
        source = batches.read_input(upload.path, request, command="issue")
        return apply_fixes(source, upload.fixes()) if fixed else source

    def preview(self, upload: Upload) -> Preview | Work:
        """The upload's preview if one is ready for its current state, else the queued work making it."""
        key = preview_key(upload)
        ready = self.previews.get(upload.id)
        if ready is not None and ready.key == key:
            return ready
        with self._cond:
            for work in self._queue:
                if work.kind == "preview" and work.upload_id == upload.id and work.key == key:
                    return work
            work = Work("preview", upload.id, key=key)
            self._queue.append(work)
            self._cond.notify_all()
            return work

    def submit(self, upload_id: str, *, user: str, digest: str | None, approved_by: str | None = None,
               near_confirmed: bool = False,
               from_states: tuple[str, ...] = ("new", "needs_confirmation", "awaiting_approval")) -> Work | None:
        """Queue a run of the upload, once: ``None`` when it is not in one of ``from_states`` (already queued,
        running, or done), which is what makes a double click or a second tab harmless.
        """
        with self.store.lock, self._cond:
            upload = self.store.get(upload_id)
            if upload is None or upload.state not in from_states:
                return None
            self.store.update(upload_id, state="queued", message=None, approved_by=approved_by,
                              confirmed={"digest": digest, "user": user, "approved_by": approved_by, "near": near_confirmed})
            work = Work("issue", upload_id, user=user, digest=digest, near_confirmed=near_confirmed)
            self._queue.append(work)
            self._cond.notify_all()
            return work

    def stop(self, upload_id: str) -> bool:
        """Ask the run of this upload to stop (rows in flight finish, the rest stay PENDING); a queued one is taken out."""
        with self._cond:
            for work in list(self._queue):
                if work.kind == "issue" and work.upload_id == upload_id:
                    self._queue.remove(work)
                    self.store.update(upload_id, state="new", message=None)
                    return True
            if self.current is not None and self.current.upload_id == upload_id and self.current.kind == "issue":
                self.current.stop.set()
                return True
        return False

    def running(self, upload_id: str) -> Work | None:
        """The run of this upload, while it is queued or running in this process."""
        with self._cond:
            if self.current is not None and self.current.upload_id == upload_id and self.current.kind == "issue":
                return self.current
            return next((w for w in self._queue if w.kind == "issue" and w.upload_id == upload_id), None)

    def place(self, upload_id: str) -> int | None:
        """1 while the upload's run is running, 2 for the next one waiting, and so on; ``None`` when not queued."""
        with self._cond:
            current = self.current
            if current is not None and current.kind == "issue" and current.upload_id == upload_id:
                return 1
            ahead = 1 if current is not None and current.kind == "issue" else 0
            for work in self._queue:
                if work.kind != "issue":
                    continue
                ahead += 1
                if work.upload_id == upload_id:
                    return ahead
        return None

    def forget(self, upload_id: str) -> None:
        """Drop a preview made for an older state of the upload."""
        self.previews.pop(upload_id, None)

    def shutdown(self, timeout: float = 60.0) -> None:
        """Stop the running batch (rows in flight finish and its result sheet is written) and the worker.

        Afterwards ``stopped`` is the upload whose run was stopped (or ``None``) and ``waiting`` the uploads
        whose runs were still queued: what the server says as it ends.
        """
        with self._cond:
            self._closing = True
            if self.current is not None and self.current.kind == "issue":
                self.stopped = self.current.upload_id
            if self.current is not None:
                self.current.stop.set()
            self.waiting = [w.upload_id for w in self._queue if w.kind == "issue"]
            self._cond.notify_all()
        self._thread.join(timeout)

    # -- the worker ------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if self._closing:
                    return
                work = self.current = self._queue.popleft()
            try:
                self._do(work)
            except LedgerBusy as exc:
                # Another process issues with this ledger (the command line, say): wait, first in line, and try again.
                work.message = self.redact(str(exc))
                with self._cond:
                    self._queue.appendleft(work)
                    self.current = None
                    self._cond.wait(BUSY_RETRY_SECONDS)
                continue
            except Exception as exc:  # the worker must live on: the message goes to the page and the log
                text = self.redact(str(exc) if isinstance(exc, FlexybulkError) else f"unexpected {type(exc).__name__}: {exc}")
                if isinstance(exc, FlexybulkError):
                    log.warning("%s of upload %s: %s", work.kind, work.upload_id, text)
                else:
                    log.error("%s of upload %s failed: %s", work.kind, work.upload_id, text, exc_info=True)
                if work.kind == "preview":
                    self.previews[work.upload_id] = Preview(work.key, error=text)
                else:
                    self._set(work.upload_id, state="error", message=text)
            with self._cond:
                self.current = None
            work.done.set()

    def _set(self, upload_id: str, **changes: Any) -> None:
        try:
            self.store.update(upload_id, **changes)
        except KeyError:
            pass

    def _prepare(self, session: batches.Issuing, upload: Upload, user: str | None = None) -> batches.Prepared:
        return session.prepare(self.input_of(upload), self.read_request(upload),
                               command="retry" if upload.mode == "retry" else "issue",
                               skip_invalid=upload.skip_invalid, web_user=user or upload.user, face="web")

    def _do(self, work: Work) -> None:
        upload = self.store.get(work.upload_id)
        if upload is None:
            return
        what = f"web: {upload.filename} ({work.user or upload.user})"
        if work.kind == "preview":
            with batches.issuing(self.target, self.ledger, what) as session:
                prepared = self._prepare(session, upload)
                try:
                    self.previews[upload.id] = _preview_of(work.key, prepared)
                finally:
                    if not prepared.blocked:
                        session.decline(prepared)
            return
        with batches.issuing(self.target, self.ledger, what) as session:
            self._set(upload.id, state="running", message=None)
            prepared = self._prepare(session, upload, work.user)
            if prepared.blocked:
                self._set(upload.id, state="needs_confirmation", message="Some rows are invalid now; look at the check again.")
                return
            if work.digest is None:
                # Resume (after a restart or a stop): only the batch that was confirmed, with its recorded ids.
                if upload.batch_id is None or prepared.batch.id != upload.batch_id:
                    session.decline(prepared)
                    self._set(upload.id, state="needs_confirmation",
                              message="This is not the batch that was confirmed any more; look at it and confirm again.")
                    return
            elif plan_digest(prepared) != work.digest:
                session.decline(prepared)
                self.previews.pop(upload.id, None)
                self._set(upload.id, state="needs_confirmation",
                          message="What would be issued changed since it was confirmed (another batch may have issued some of "
                                  "these rows). Look at the figures again and confirm.")
                return
            self._set(upload.id, batch_id=prepared.batch.id, result_file=prepared.output.name)
            record_web_decision(self.ledger_path(session), prepared.batch.id, user=work.user, approved_by=upload.approved_by,
                                file_sha256=_file_sha256(upload), action=upload.mode,
                                fixes=[f.as_list() for f in (upload.retry_fixes() if upload.mode == "retry" else upload.fixes())])
            work.total, work.started = len(prepared.orders), time.monotonic()
            log.info("batch %s: %s starts issuing %d rows of %s on %s", prepared.batch.id, work.user, work.total,
                     upload.filename, self.target.label)

            def progress(row: batches.RowOutcome) -> None:
                work.finished += 1
                if row.status.needs_attention:
                    work.attention.append((row.row_number, row.status.value, row.error))

            # A resumed batch was confirmed with its near-duplicates (if any) before it started.
            near = work.near_confirmed or (work.digest is None and bool((upload.confirmed or {}).get("near")))
            decision = batches.Decision(confirmed=True, near_confirmed=near, user=work.user)
            outcome = session.run(prepared, decision, progress=progress, stop=work.stop)
            if outcome.declined:
                self._set(upload.id, state="needs_confirmation",
                          message="Some rows are near-duplicates of earlier gift certificates and need their own confirmation.")
                return
            if upload.mode == "retry":
                self.store.clear_retry_fixes(upload.id)  # the result sheet just written holds them
            fatal = self.redact(str(outcome.fatal)) if outcome.fatal else None
            self._set(upload.id, state="done", message=fatal)
            self.previews.pop(upload.id, None)
            log.info("batch %s: finished=%s interrupted=%s counts=%s", prepared.batch.id, outcome.finished,
                     outcome.interrupted, dict((k.value, v) for k, v in outcome.counts.items()))

    @staticmethod
    def ledger_path(session: batches.Issuing) -> Path:
        return session.journal.path


def _file_sha256(upload: Upload) -> str | None:
    import hashlib

    try:
        return hashlib.sha256(upload.path.read_bytes()).hexdigest()
    except OSError:
        return None


def _preview_of(key: str, prepared: batches.Prepared) -> Preview:
    """The plain figures of a prepared batch (nothing here decides: it is all read off ``prepared``)."""
    p = Preview(key, target=prepared.target.label, sandbox=prepared.target.is_sandbox)
    p.warnings = prepared.validation.warning_messages()
    p.excluded = prepared.input.sheet.exclusions()
    if prepared.blocked:
        p.blocked = True
        p.blocking = [(c.row.number, "; ".join(x.message for x in c.problems)) for c in prepared.blocking]
        return p
    p.digest = plan_digest(prepared)
    p.rows, p.certificates, p.amounts = prepared.totals.rows, prepared.totals.certificates, dict(prepared.totals.amounts)
    from ..validate import Totals

    for order in prepared.orders:
        p.by_type.setdefault(order.type.name, Totals()).add(order)
        p.by_department.setdefault(order.department.name, Totals()).add(order)
    p.already_issued = prepared.already_issued
    p.issued_edited = [(r.row_number, r.message or "") for r in prepared.issued_edited]
    p.skipped = [(r.row_number, r.message or "") for r in prepared.skipped if not r.edited]  # edited: said above
    p.near = [(r.row_number, r.message or "") for r in prepared.near]
    p.settling = [(r.row_number, r.message or "") for r in prepared.settling]
    if prepared.in_doubt:
        from ..batches import row_ranges

        p.in_doubt, p.in_doubt_rows = len(prepared.in_doubt), row_ranges(prepared.in_doubt)
    p.batch_id, p.resumed = prepared.batch.id, prepared.plan.resumed
    return p
