"""Which ledger a command uses, and the words for a ledger that cannot be written."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import JournalError

LEDGER_ENV = "FLEXYBULK_LEDGER"


def ledger_write_error(path: Path, exc: BaseException) -> JournalError:
    """The user's message for a ledger write that failed: the file, the cause in plain words, what to do.

    SQLite's own words ("database or disk is full", "attempt to write a
    readonly database") are kept in brackets, after ours.
    """
    import errno

    text = getattr(exc, "strerror", None) or str(exc)
    low = text.lower()
    code = getattr(exc, "errno", None)
    if "full" in low or code in (errno.ENOSPC, errno.EDQUOT):
        cause = "the disk is full"
    elif "readonly" in low or "read-only" in low or code in (errno.EROFS, errno.EACCES, errno.EPERM):
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
