"""The dry run: the live catalogue, every row validated, and what the ledger knows of the rows. Issues nothing."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..client import FlexyboxClient
from ..errors import ConfigError
from ..journal import Journal
from ..model import Catalogue, Order, Sheet
from ..planning import PlannedRow
from ..records import order_from_content
from ..result_input import looks_like_own_sheet
from ..results import default_output_path, write_validation_sheet
from ..target import Target
from ..validate import Totals, Validation
from .inputs import Input, ReadRequest, validate_input
from .issuing import ledger_of


@dataclass
class Checked:
    """What the dry run found: the catalogue used, every row's verdict, and what the ledger knows of the rows.

    Attributes:
        ledger: the ledger looked in; ``ledger_exists`` is false when it does not exist yet.
        known: input row -> what an ``issue`` would decide for a valid row other than simply
            sending it (:func:`flexybulk.planning.preview`): ``"done"`` or ``"skip"`` (already
            issued, with the batch and date), ``"near"`` (would ask), ``"send"`` with
            ``earlier`` (would finish an earlier batch's row with its ids).
    """

    input: Input
    catalogue: Catalogue
    validation: Validation
    ledger: Path | None = None
    ledger_exists: bool = False
    known: dict[int, PlannedRow] = field(default_factory=dict)
    ledger_named: bool = False

    @property
    def sheet(self) -> Sheet:
        return self.input.sheet

    def would_send(self) -> Totals:
        """Rows, certificates and money an ``issue`` of this file would send now: the valid rows, less those the
        ledger shows as issued already (``"done"``/``"skip"``), each as it would be sent (:meth:`to_send`).
        Near-duplicates count (an issue asks about them)."""
        totals = Totals()
        for order in self.to_send():
            totals.add(order)
        return totals

    def to_send(self) -> list[Order]:
        """The orders an ``issue`` would send now, in input order: the orders :meth:`would_send` counts (every
        valid row's but those the ledger says are issued already). For a face's "what an issue would send"."""
        orders = []
        for c in self.validation.checks:
            known = self.known.get(c.row.number)
            if c.order is None or (known is not None and known.action in ("done", "skip")):
                continue
            earlier = known.earlier if known is not None else None
            if earlier is not None and earlier.commit_may_have_happened and earlier.commit_content is not None:
                # Settled exactly as its commit was first sent, whatever the line says now (as Prepared.orders).
                orders.append(order_from_content(earlier.commit_content, c.row.number))
            else:
                orders.append(c.order)
        return orders

    def would_send_by(self, key: Callable[[Order], str]) -> dict[str, Totals]:
        """:meth:`would_send` grouped by ``key`` (e.g. the type's name), in first-seen order [issue #14: the web page's
        per-type and per-department tables]."""
        groups: dict[str, Totals] = {}
        for order in self.to_send():
            groups.setdefault(key(order), Totals()).add(order)
        return groups

    def notes(self) -> dict[int, str]:
        """Input row -> what the ledger says of it, in words, for the validation sheet."""
        return {n: r.message or "" for n, r in self.known.items()}


def check(source: Input, target: Target, request: ReadRequest, progress: Callable[[int], None] | None = None,
          *, ledger: Path | str | None = None) -> Checked:
    """The dry run: fetch the live catalogue (two read-only GETs), validate every row, look in the ledger. Issues nothing.

    The ledger (``ledger``, else the target's default) is read if it
    exists and never created (issue #11: the dry run tells the truth about
    the rows an issue would skip or ask about).

    Raises:
        ApiError: the catalogue could not be fetched (``AuthError`` for a refused token).
        JournalError: the ledger exists but cannot be read.
    """
    from ..planning import preview

    with FlexyboxClient(target.settings) as client:
        catalogue = client.get_catalogue()
    checked = Checked(source, catalogue, validate_input(source.sheet, catalogue, request, progress))
    path, named = ledger_of(target, ledger)
    checked.ledger, checked.ledger_exists, checked.ledger_named = path, path.exists(), named
    if checked.ledger_exists:
        with Journal(path, create=False) as journal:
            checked.known = preview(journal, checked.validation, target=target.name, identity=source.identity,
                                    batch_id=source.batch_id)
    return checked


def fetch_catalogue(target: Target) -> Catalogue:
    """The live catalogue (gift certificate types and departments): two read-only GETs, nothing else.

    For a face's lists of types and departments when :func:`check` could not
    run (a sheet the reader refuses until a column or a department is chosen) [issue #14].

    Raises:
        ApiError: the catalogue could not be fetched (``AuthError`` for a refused token).
    """
    with FlexyboxClient(target.settings) as client:
        return client.get_catalogue()


def write_validation(validation: Validation, out: Path | None = None, *, notes: dict[int, str] | None = None) -> Path:
    """Write the validation sheet (``FILE.validation.xlsx`` beside the input by default); returns its path.

    ``notes`` (input row -> text, from :meth:`Checked.notes`) join the rows' warnings.

    Raises:
        ConfigError: ``out`` is the input itself, or an existing file that is not a validation sheet.
        InputFileError: the file cannot be written.
    """
    path = Path(out) if out else default_output_path(validation.sheet.path, "validation")
    if path.exists():
        if os.path.samefile(path, validation.sheet.path):
            raise ConfigError(f"{path} is the input file itself; the validation sheet is not written over it. "
                              "Choose another --output.")
        if not looks_like_own_sheet(path, "Validation"):
            raise ConfigError(f"{path} exists and is not a flexybulk validation sheet, so it is not overwritten. "
                              "Choose another --output, or move that file away.")
    return write_validation_sheet(path, validation, notes=notes)
