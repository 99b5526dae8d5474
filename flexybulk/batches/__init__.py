"""The batch use cases: the one core that the command line and the web page both call.

Each use case takes plain values and returns plain data (dataclasses) that
a face renders; nothing here prints, prompts or exits, and no Click is
imported. The money rules live here (and in the modules this calls) once:

- :func:`read_input` reads a sheet; a result sheet given back is tied to its batch.
- :func:`check` is the dry run: the live catalogue, every row validated,
  and what the ledger already knows about the rows (:func:`fetch_catalogue`: the catalogue alone).
- :func:`issuing` holds the ledger's issuing lock and a client; in it,
  :meth:`Issuing.prepare` plans an issue or a retry (the rows to send, the
  totals, the rows already issued, the warnings, everything a confirmation
  must show) and :meth:`Issuing.run` runs it once the face passes back a
  :class:`Decision`, writing the result sheet whatever happens.
- :func:`batch_status`, :func:`list_batches` and :func:`make_template`.

Rules kept here (sources in brackets): an issued row is never sent again,
whatever was edited [issue #3]; a row issued by an earlier batch is skipped
unless a reissue is asked for *and* confirmed, and ``yes`` alone never
confirms a reissue [issue #3]; invalid rows stop the batch unless
``skip_invalid`` [issue #2]; a batch declined at the confirmation leaves
nothing behind when it was new and sent nothing; the result sheet is
written after every run, interrupted or not [issue #3].

Modules: :mod:`.inputs` (reading an input), :mod:`.dryrun` (the dry run),
:mod:`.issuing` (prepare and run under the ledger's lock), :mod:`.decisions`
(Prepared, Decision, Outcome), :mod:`.ledger` (status, progress, history),
:mod:`.templates` (the template).
"""

from __future__ import annotations

from ..records import row_ranges, row_state_text, same_words
from .decisions import Decision, Outcome, Prepared, RowOutcome
from .dryrun import Checked, check, fetch_catalogue, write_validation
from .inputs import MIB, Input, ReadRequest, read_input, validate_input
from .issuing import Issuing, issuing, ledger_of, open_ledger, over_limit, write_result
from .ledger import BatchStatus, batch_progress, batch_status, list_batches
from .templates import TemplateWritten, make_template

__all__ = [
    "MIB", "BatchStatus", "Checked", "Decision", "Input", "Issuing", "Outcome", "Prepared", "ReadRequest", "RowOutcome",
    "TemplateWritten", "batch_progress", "batch_status", "check", "fetch_catalogue", "issuing", "ledger_of", "list_batches", "make_template",
    "open_ledger", "over_limit", "read_input", "row_ranges", "row_state_text", "same_words", "validate_input",
    "write_result", "write_validation",
]
