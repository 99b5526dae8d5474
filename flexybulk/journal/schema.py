"""The ledger's schema: creating it, upgrading older versions in place, refusing unknown ones.

Versioned with ``PRAGMA user_version``; an unknown (newer) version is
refused rather than misread. Version 2 added each row's ``commit_content``;
version 3 (issue #11) each batch's id salt and web user, each row's
near-duplicate key, and canonical targets.
"""

from __future__ import annotations

import json
import sqlite3

from ..errors import JournalError
from .paths import LEDGER_ENV
from .records import near_key

SCHEMA_VERSION = 3

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


class _Schema:
    """The schema half of :class:`~flexybulk.journal.Journal` (a mixin; it uses ``_db``, ``_tx`` and ``path``)."""

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
        from ..settings import canonical_target

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
