"""The audit trail: an append-only JSON Lines file per batch, next to the ledger.

Issue #6: who ran a batch (OS user), when, the input file's SHA-256, the
options, and for each HTTP attempt the method, path, status, duration and
the ids involved (the ids are in the path). Never the token (it is never in
a body we send, and any copy of it in an answer is replaced by ``***``).

Personal data beyond the ids is left out with one exception: a failed
attempt records only the kind of failure (``"read timeout"``, a 5xx's status),
never the server's words, *except* for a refusal (a 4xx other than 401, 403
and 429), whose raw answer is kept as ``answer`` (issue #13). That answer may
quote a value of the row (an email address, a name). It is kept because the
result sheet says a refusal in the sheet's words, and the vendor's own words
are what a person needs to take a FAILED row up with Flexybox; it is
acceptable because that value is already in the ledger and the result sheet
of the same batch, beside this file, which is owner-only (0600) like them,
and a refusal is one short validation message per failed row (at most
``client.ANSWER_KEPT`` characters), not a dump of whatever a failing server
returns (5xx bodies are still left out).

One line per event, written and flushed at once, so the file is complete up
to the last event even after a crash. Lines are appended, never rewritten.
"""

from __future__ import annotations

import getpass
import json
import os
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .client import CallRecord


def audit_path(ledger_path: Path, batch_id: str) -> Path:
    """``<ledger folder>/audit/<batch id>.jsonl``."""
    return Path(ledger_path).parent / "audit" / f"{batch_id}.jsonl"


class AuditLog:
    """Appends events to one batch's JSON Lines file. Thread-safe.

    Each line is an object with ``at`` (UTC ISO 8601, milliseconds) and
    ``event`` (``"run"``, ``"call"``, ``"end"``) plus the event's fields.
    """

    def __init__(self, path: Path, *, secrets: tuple[str, ...] = ()) -> None:
        """Open (create) ``path`` for appending; ``secrets`` (the token) are never written, should an answer echo one."""
        self.path = Path(path)
        self._secrets = tuple(s for s in secrets if s and len(s) >= 8)  # shorter "secrets" would mangle every line
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # Owner-only: the file names customers' ids and the batch's file.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._fh = os.fdopen(fd, "a", encoding="utf-8")

    def write(self, event: str, **fields: Any) -> None:
        """Append one event line."""
        line = {"at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), "event": event, **fields}
        text = json.dumps(line, ensure_ascii=False, default=str, sort_keys=False)
        with self._lock:
            self._fh.write(text + "\n")
            self._fh.flush()

    def run_started(self, *, command: str, input_path: str, sha256: str, batch_id: str, options: dict) -> None:
        """The run's header: who, what file, which options."""
        try:
            user = getpass.getuser()
        except Exception:  # no user name in some containers
            user = None
        self.write("run", command=command, os_user=user, input=input_path, sha256=sha256, batch_id=batch_id,
                   options=options, pid=os.getpid())

    def call(self, record: CallRecord) -> None:
        """One HTTP attempt (``FlexyboxClient``'s ``on_call`` hook)."""
        fields: dict[str, Any] = {"method": record.method, "path": record.path, "status": record.status,
                                  "ms": round(record.seconds * 1000, 1), "attempt": record.attempt}
        if record.status is None and record.error:
            fields["failure"] = record.error  # our own words (e.g. "read timeout"), never the server's
        if record.answer is not None:  # a refusal: the vendor's verdict, as it was received (see the module docstring)
            fields["answer"] = self._redacted(record.answer)
        self.write("call", **fields)

    def _redacted(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def close(self, **totals: Any) -> None:
        """The run's footer (counts by status), then close the file."""
        self.write("end", **totals)
        with self._lock:
            self._fh.close()

    def close_file(self) -> None:
        """Close the file without a footer (a face's own event appended between runs, issue #14)."""
        with self._lock:
            self._fh.close()
