"""Reading an input for a use case: the read request, the sheet as read, and its identity for the ledger."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import ConfigError, InputFileError
from ..model import Catalogue, Sheet
from ..result_input import result_sheet_batch, validation_sheet_identity
from ..validate import Validation


MIB = 1024 * 1024


@dataclass(frozen=True)
class ReadRequest:
    """How to read an input sheet and which defaults its rows get.

    Attributes:
        sheet: the worksheet to read, or ``None`` for the one visible sheet with recipients.
        columns: field name -> header, for columns the reader does not recognise
            (``{"amount": "Værdi i kr"}``; field names as in ``model.Field``).
        department: the department (name or id) for rows without one.
        max_file_size: bytes; larger files are refused before they are read.
        max_rows: sheets with more data rows are refused.
        include_hidden: read rows hidden or filtered out as ordinary rows (issue #12: by
            default they are the person's selection, and are not issued).
        encoding: a CSV file's text encoding (Python codec name), or ``None`` to detect it.
    """

    sheet: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    department: str | None = None
    max_file_size: int = 50 * MIB
    max_rows: int = 100_000
    include_hidden: bool = False
    encoding: str | None = None


@dataclass
class Input:
    """A sheet as read, with the batch it names if it is a result sheet given back.

    ``lines`` maps input row numbers to this sheet's line numbers (a result
    sheet's rows are renumbered to the input rows its ``Row`` column names).
    """

    path: Path
    sheet: Sheet
    batch_id: str | None = None
    lines: dict[int, int] = field(default_factory=dict)
    made_from: tuple[str, str | None] | None = None

    @property
    def identity(self) -> tuple[str, str | None]:
        """``(SHA-256, sheet name)`` the input's batch is known by (issue #11).

        The file's own bytes and worksheet; for a validation sheet given to
        ``issue``, those of the file it was made from (``made_from``), so that
        it is the same batch with the same derived ids.
        """
        return self.made_from or (self.sheet.sha256, self.sheet.sheet_name)


def read_input(path: Path | str, request: ReadRequest, *, command: str = "issue") -> Input:
    """Read ``path`` (XLSX, XLSM, ODS, XLS, CSV, TSV) as ``command`` (``"validate"``, ``"issue"``, ``"retry"``) needs it.

    Raises:
        InputFileError: the file cannot be read, is refused, or has no recipients.
        ConfigError: ``retry`` of a file that is not a flexybulk result sheet.
    """
    from ..reading import ReadOptions, read_sheet

    path = Path(path)
    opts = ReadOptions(sheet=request.sheet, columns=dict(request.columns), max_file_size=request.max_file_size,
                       max_rows=request.max_rows, include_hidden=request.include_hidden, encoding=request.encoding)
    sheet = read_sheet(path, opts)
    if not sheet.rows:
        raise InputFileError(f"{sheet.where()}: there are no recipients below the header on row {sheet.header_row}. "
                             "Fill in at least one row.")
    # A result sheet is tied to its batch for the dry run too: it must say what an issue of it would do.
    batch_id, lines = result_sheet_batch(sheet)
    if command == "retry" and batch_id is None:
        raise ConfigError(f"{path.name} is not a flexybulk result sheet (no BatchId and Row columns). "
                          f"To issue a new file, run: flexybulk issue {path}")
    made_from = None if batch_id else validation_sheet_identity(sheet, path)
    return Input(path, sheet, batch_id, lines, made_from)


def validate_input(sheet: Sheet, catalogue: Catalogue, request: ReadRequest,
                   progress: Callable[[int], None] | None = None) -> Validation:
    """Every row of ``sheet`` checked against ``catalogue``; ``progress(rows done)`` is called as it goes."""
    from ..validate import validate

    return validate(sheet, catalogue, default_department=request.department, progress=progress)
