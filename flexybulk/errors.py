"""The exception hierarchy and the process exit codes.

Every error the user can cause or meet derives from :class:`FlexybulkError`;
its message says what happened *and what to do*. The CLI turns these into a
message on stderr and :class:`ExitCode` in one place (``cli.main``); no other
module prints or exits.

Row problems are *not* exceptions: they are data (``model.RowProblem``), so a
run reports every problem of every row at once.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    """Process exit statuses (modelled on httpie's ``ExitStatus``)."""

    OK = 0
    """Every row was valid (validate) or issued (issue)."""
    ROWS_FAILED = 1
    """Some rows were invalid, failed or unknown, or the input file was refused."""
    USAGE = 2
    """Bad usage or configuration: missing token, bad URL, rejected credentials."""
    INTERRUPTED = 130
    """Stopped by Ctrl-C (128 + SIGINT)."""
    TERMINATED = 143
    """Stopped by SIGTERM (128 + SIGTERM), as cleanly as by Ctrl-C."""


class FlexybulkError(Exception):
    """Base of every error flexybulk reports to the user.

    ``str(err)`` is the whole user-facing message. ``exit_code`` is what the
    CLI exits with when this error ends a command.
    """

    exit_code: ExitCode = ExitCode.ROWS_FAILED


class ConfigError(FlexybulkError):
    """Missing or invalid configuration (token, base URLs, option values)."""

    exit_code = ExitCode.USAGE


class InputFileError(FlexybulkError):
    """The input file cannot be read at all, or is refused as unsafe.

    The message names the file (and sheet, row and column where there is
    one) and says how to fix the file.
    """

    exit_code = ExitCode.ROWS_FAILED


class ApiError(FlexybulkError):
    """A Flexybox call failed.

    Attributes:
        status: the HTTP status code, or ``None`` when no response arrived
            (connection error, timeout, dropped connection).
        server_message: the server's own message from the response body, if any.
        method, url: the request that failed (never with the token).
        outcome_unknown: ``True`` when the request may have been carried out
            by the server although no answer said so (timeout, dropped
            connection, 5xx after the body was sent), in *any* attempt of the
            call: a later attempt's refusal does not undo an earlier attempt
            that may have gone through (issue #11). A rerun with the same ids
            settles it.
        earlier_outcome_unknown: ``True`` when an attempt *before the last*
            may have been carried out; ``status`` and ``server_message`` are
            the last attempt's (a ``409`` after a lost answer, say).
        not_sent: ``True`` when no attempt of the call can have reached the
            server (connection refused, name not found, connect timeout).
        response_body: the last attempt's answer as parsed JSON (``Decimal``
            numbers), or ``None`` (no answer, or not JSON).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        server_message: str | None = None,
        method: str | None = None,
        url: str | None = None,
        outcome_unknown: bool = False,
        not_sent: bool = False,
        earlier_outcome_unknown: bool = False,
        response_body: Any = None,
    ) -> None:
        super().__init__(message)
        self.not_sent = not_sent
        self.earlier_outcome_unknown = earlier_outcome_unknown
        self.response_body = response_body
        self.status = status
        self.server_message = server_message
        self.method = method
        self.url = url
        self.outcome_unknown = outcome_unknown


class AuthError(ApiError):
    """The server rejected the token (401/403). Stops the whole run at once."""

    exit_code = ExitCode.USAGE


class ConflictError(ApiError):
    """409: the sales order is already committed with other content or another payment."""


class NotFoundError(ApiError):
    """404: the server does not know the sales order (or other resource)."""


class SpendingLimit(FlexybulkError):
    """A run would issue more than ``--max-total`` allows; nothing was issued (issue #11)."""

    exit_code = ExitCode.ROWS_FAILED


class JournalError(FlexybulkError):
    """The ledger database cannot be opened, has an unknown schema, or is corrupt."""

    exit_code = ExitCode.USAGE


class LedgerMissing(JournalError):
    """A ledger named with ``--ledger`` or ``$FLEXYBULK_LEDGER`` does not exist (and ``--new-ledger`` was not given)."""


class LedgerBusy(JournalError):
    """Another process is issuing with the same ledger; running both could issue rows twice."""

    exit_code = ExitCode.ROWS_FAILED


class Interrupted(FlexybulkError):
    """The run was stopped by the user (Ctrl-C) after finishing calls in flight."""

    exit_code = ExitCode.INTERRUPTED
