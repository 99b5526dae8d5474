"""Small files written atomically and owner-only: the web page's uploads' records and a person's cell fixes.

Written to a temporary name in the same folder, synced, then renamed into
place (``os.replace``), so a crash never leaves half a file; ``mkstemp``
creates the file with mode 0600, so no other user can read what it holds
(names, emails, amounts).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_private_text(path: Path | str, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically, readable and writable by the owner only.

    Raises:
        OSError: the file cannot be written (nothing is left behind).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
