"""The web page's uploads on disk: each uploaded sheet, its settings, its cell fixes and its sheets written.

Layout under the data folder (``--data-dir``)::

    uploads/<id>/upload.json          who uploaded what, when, how to read it, where its batch stands
    uploads/<id>/<file name>          the sheet exactly as uploaded
    uploads/<id>/fixes.json           cells fixed before issuing (flexybulk.fixes)
    uploads/<id>/retry-fixes.json     cells of rows needing attention fixed before a retry
    uploads/<id>/<stem>.result.xlsx   the result sheet (the same file the command line writes)
    uploads/<id>/<stem>.validation.xlsx
    mappings.json                     columns mapped by hand, by the headers they were mapped for

Folders are created owner-only (0700) and files 0600, because a sheet holds
names, email addresses and phone numbers. Everything a restarted server needs
to rebuild an upload's input (the file, the read settings, the fixes) is here;
what was issued is in the ledger, never only here. Uploads older than the
configured time are deleted (:meth:`UploadStore.expire`), except while their
batch is queued or running.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import threading
import time
import unicodedata
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..files import write_private_text
from ..fixes import CellFix, load_fixes, save_fixes

ACTIVE_STATES = ("queued", "running")
"""States in which an upload's batch is in the issuing queue or being issued: never expired, never started twice."""

_ID = re.compile(r"^[0-9a-f]{20}$")


def now_text() -> str:
    """UTC now, ISO 8601 to the second."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def safe_name(name: str) -> str:
    """An uploaded file's name reduced to a safe base name (no folders, no control characters), extension kept."""
    base = unicodedata.normalize("NFC", name.replace("\\", "/").rsplit("/", 1)[-1])
    base = "".join(c for c in base if c.isprintable() and c not in '<>:"|?*').strip(" .") or "upload"
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    return (stem[:100] or "upload") + (f".{ext[:10]}" if ext else "")


@dataclass
class Upload:
    """One uploaded sheet and where its batch stands (``upload.json``).

    ``state``: ``new`` (checked, not confirmed), ``awaiting_approval``,
    ``queued``, ``running``, ``done`` (the run ended: see the ledger for its
    rows), ``interrupted`` (the server stopped while it was queued or running),
    ``needs_confirmation`` (what would be issued changed since it was
    confirmed) or ``error``. ``mode`` is ``issue`` (the upload and its fixes)
    or ``retry`` (the result sheet and its retry fixes).
    """

    id: str
    filename: str
    user: str
    created_at: str
    request: dict = field(default_factory=lambda: {"sheet": None, "columns": {}, "department": None})
    mode: str = "issue"
    skip_invalid: bool = False
    state: str = "new"
    batch_id: str | None = None
    message: str | None = None
    confirmed: dict | None = None
    approved_by: str | None = None
    result_file: str | None = None
    updated_at: str = ""
    folder: Path = field(default=Path("."), repr=False)

    @property
    def path(self) -> Path:
        """The sheet as uploaded."""
        return self.folder / self.filename

    @property
    def result_path(self) -> Path:
        """Where the result sheet is written (beside the upload, as the command line writes it)."""
        return self.folder / (self.result_file or f"{Path(self.filename).stem}.result.xlsx")

    @property
    def validation_path(self) -> Path:
        return self.folder / f"{Path(self.filename).stem}.validation.xlsx"

    def fixes(self) -> list[CellFix]:
        return load_fixes(self.folder / "fixes.json")

    def retry_fixes(self) -> list[CellFix]:
        return load_fixes(self.folder / "retry-fixes.json")

    def to_json(self) -> dict:
        data = asdict(self)
        data.pop("folder")
        return data


class UploadStore:
    """The uploads folder. Thread-safe: one lock serialises every change of an ``upload.json``."""

    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir)
        self.uploads = self.root / "uploads"
        _private_dir(self.root)
        _private_dir(self.uploads)
        self.lock = threading.RLock()

    def create(self, filename: str, data_file: Any, user: str, *, limit: int) -> Upload:
        """Store an uploaded file (a binary file object, read in chunks up to ``limit`` bytes).

        Raises:
            ValueError: the file is larger than ``limit`` (nothing is kept).
        """
        upload_id = secrets.token_hex(10)
        folder = self.uploads / upload_id
        _private_dir(folder)
        name = safe_name(filename)
        target = folder / name
        written = 0
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                while chunk := data_file.read(1 << 20):
                    written += len(chunk)
                    if written > limit:
                        raise ValueError(f"larger than {limit} bytes")
                    out.write(chunk)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        upload = Upload(upload_id, name, user, now_text(), folder=folder)
        self.save(upload)
        return upload

    def get(self, upload_id: str) -> Upload | None:
        """The upload with this id, or ``None`` (also for an id that is not one of ours)."""
        if not _ID.match(upload_id or ""):
            return None
        path = self.uploads / upload_id / "upload.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        known = {k: v for k, v in data.items() if k in Upload.__dataclass_fields__ and k != "folder"}
        return Upload(**known, folder=path.parent)

    def all(self) -> list[Upload]:
        """Every upload, newest first."""
        found = [u for d in self.uploads.iterdir() if d.is_dir() and (u := self.get(d.name))]
        return sorted(found, key=lambda u: u.created_at, reverse=True)

    def by_batch(self, batch_id: str) -> Upload | None:
        """The newest upload whose batch is ``batch_id``."""
        return next((u for u in self.all() if u.batch_id == batch_id), None)

    def save(self, upload: Upload) -> None:
        """Write ``upload.json`` atomically."""
        with self.lock:
            upload.updated_at = now_text()
            _write_private(upload.folder / "upload.json", json.dumps(upload.to_json(), ensure_ascii=False, indent=1))

    def update(self, upload_id: str, **changes: Any) -> Upload:
        """Change fields of an upload under the lock and save it; returns the new state."""
        with self.lock:
            upload = self.get(upload_id)
            if upload is None:
                raise KeyError(upload_id)
            for key, value in changes.items():
                setattr(upload, key, value)
            self.save(upload)
            return upload

    def add_fix(self, upload: Upload, fix: CellFix, *, retry: bool = False) -> None:
        """Record one cell fix (the last fix of a cell wins)."""
        with self.lock:
            name = "retry-fixes.json" if retry else "fixes.json"
            current = upload.retry_fixes() if retry else upload.fixes()
            save_fixes(upload.folder / name, [*current, fix])
            os.chmod(upload.folder / name, 0o600)

    def clear_retry_fixes(self, upload_id: str) -> None:
        """Forget the retry fixes once a retry ran: its result sheet holds them now (and the ledger's web decision
        lists them), so the page no longer shows them as pending, nor a fix "was" its own value."""
        with self.lock:
            upload = self.get(upload_id)
            if upload is not None:
                (upload.folder / "retry-fixes.json").unlink(missing_ok=True)

    def interrupted_on_start(self) -> list[Upload]:
        """At server start: uploads left queued or running by a stopped server become ``interrupted``."""
        changed = []
        with self.lock:
            for upload in self.all():
                if upload.state in ACTIVE_STATES:
                    upload.state = "interrupted"
                    upload.message = None
                    self.save(upload)
                    changed.append(upload)
        return changed

    def expire(self, max_age_seconds: float) -> list[str]:
        """Delete uploads older than ``max_age_seconds`` (never one queued or running); returns their ids."""
        cutoff = time.time() - max_age_seconds
        gone = []
        with self.lock:
            for folder in self.uploads.iterdir():
                upload = self.get(folder.name)
                if upload is not None and upload.state in ACTIVE_STATES:
                    continue
                try:
                    if folder.stat().st_mtime < cutoff and (upload is None or _stamp(upload.updated_at) < cutoff):
                        shutil.rmtree(folder)
                        gone.append(folder.name)
                except OSError:
                    continue
        return gone

    # -- columns mapped by hand, remembered for the next file with the same headers --------------------

    def remembered_columns(self, headers: list[str]) -> dict[str, str]:
        """The columns mapped by hand for a file with exactly these headers (field -> header), or ``{}``."""
        return self._mappings().get(_headers_key(headers), {})

    def remember_columns(self, headers: list[str], columns: dict[str, str]) -> None:
        with self.lock:
            mappings = self._mappings()
            key = _headers_key(headers)
            if columns:
                mappings[key] = columns
            else:
                mappings.pop(key, None)
            _write_private(self.root / "mappings.json", json.dumps(mappings, ensure_ascii=False, indent=1))

    def _mappings(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads((self.root / "mappings.json").read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}


def _headers_key(headers: list[str]) -> str:
    return json.dumps([h.casefold() for h in headers], ensure_ascii=False)


def _stamp(text: str) -> float:
    try:
        return datetime.fromisoformat(text).timestamp()
    except (TypeError, ValueError):
        return 0.0


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)


_write_private = write_private_text
