"""The ``flexybulk`` command line: a face over :mod:`flexybulk.batches`.

Commands parse options, call the library, render its data and pick the
exit code; no rule about money lives here. Modules:

- ``base``      the Click group, redacted output, the one error boundary (:func:`main`)
- ``options``   shared option decorators and their translation into library values
- ``render``    how the library's dataclasses are shown
- ``commands``  ``validate``, ``issue``, ``retry``
- ``tools``     ``status``, ``history``, ``template``, ``sandbox``
- ``web``       ``web``: the web page (:mod:`flexybulk.web`) served by uvicorn
"""

from __future__ import annotations

from ..settings import find_token as read_token
from . import commands, tools, web  # noqa: F401  (importing them registers the commands)
from .base import _STATE, cli, echo, main, redact, warn

__all__ = ["_STATE", "cli", "echo", "main", "read_token", "redact", "warn"]
