"""The command line's plumbing: the Click group, output helpers and the one error boundary.

Every exception becomes a message and an exit code in one place,
:func:`main` (httpie's ``raw_main`` pattern); no traceback reaches the user
unless ``--debug`` is given, and then with the token redacted. Everything
printed goes through :func:`echo` or :func:`warn`, which redact every known
secret.
"""

from __future__ import annotations

import signal
import sys
import threading
import traceback
from dataclasses import dataclass, field
from typing import Any

import click

from .. import __version__
from ..errors import ExitCode, FlexybulkError


@dataclass
class _RunState:
    """What the error boundary needs to know about the running command."""

    debug: bool = False
    secrets: list[str] = field(default_factory=list)
    terminated: bool = False  # a SIGTERM arrived: the run stops like Ctrl-C, and exits 143


class Terminated(KeyboardInterrupt):
    """SIGTERM (systemd, ``timeout``, a CI cancel): stopped like Ctrl-C, so calls in flight finish (issue #11).

    A ``KeyboardInterrupt`` so that every place that finishes cleanly on
    Ctrl-C (the runner lets its calls in flight finish, then the result sheet
    is written) does so on SIGTERM too.
    """


def _on_sigterm(signum: int, frame: Any) -> None:
    if not _STATE.terminated:  # once: a second SIGTERM must not cut the result sheet short
        _STATE.terminated = True
        raise Terminated()


_STATE = _RunState()


MIN_REDACTED_LENGTH = 8
"""Shorter "secrets" are not real bearer tokens, and replacing them would mangle every message."""


def redact(text: str) -> str:
    """``text`` with every known secret (of at least 8 characters) replaced by ``***``."""
    for secret in _STATE.secrets:
        if secret and len(secret) >= MIN_REDACTED_LENGTH:
            text = text.replace(secret, "***")
    return text


def echo(message: str = "", *, err: bool = False) -> None:
    """Print a line (redacted)."""
    click.echo(redact(message), err=err)


def plural(n: int, word: str) -> str:
    """``plural(1, "row")`` -> ``"1 row"``; ``plural(2, "row")`` -> ``"2 rows"``."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def warn(message: str) -> None:
    """Print a warning line on stderr."""
    click.echo(redact(f"Warning: {message}"), err=True)


def progress_bar(total: int, quiet: bool, desc: str) -> Any:
    """A tqdm bar on stderr, or a silent one with ``quiet`` (and off a terminal)."""
    from tqdm import tqdm

    # disable=None: no bar when stderr is not a terminal (CI, pipes), as tqdm documents.
    return tqdm(total=total, desc=desc, unit="row", file=sys.stderr, disable=True if quiet else None,
                dynamic_ncols=True, smoothing=0.1)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="flexybulk")
def cli() -> None:
    """Issue Flexybox gift certificates in bulk from a spreadsheet, exactly once.

    \b
    Typical use:
      flexybulk validate kampagne.xlsx        # the dry run: checks every row, issues nothing
      flexybulk issue kampagne.xlsx           # issues, writes kampagne.result.xlsx
      flexybulk retry kampagne.result.xlsx    # reruns the rows that failed, never twice
      flexybulk status kampagne.xlsx          # what the ledger knows about the batch
      flexybulk template modtagere.xlsx       # an empty sheet with dropdowns from the catalogue

    Add --sandbox to any command to try it against a built-in local Flexybox.
    """


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; turn every outcome into an exit code (the one error boundary).

    Returns the exit code (and exits with it when run as the console script).
    """
    code = _run(argv)
    if argv is None:
        sys.exit(int(code))
    return int(code)


def _run(argv: list[str] | None) -> int:
    _STATE.debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    _STATE.terminated = False
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        code = _boundary(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if _STATE.terminated and code in (ExitCode.INTERRUPTED, ExitCode.ROWS_FAILED):
        return ExitCode.TERMINATED
    return code


def _boundary(argv: list[str] | None) -> int:
    try:
        result = cli.main(args=argv, prog_name="flexybulk", standalone_mode=False)
        return int(result) if isinstance(result, int) else ExitCode.OK
    except click.exceptions.Abort as exc:
        if isinstance(exc.__context__, KeyboardInterrupt):
            # Click turns a Ctrl-C (outside the runner, which handles its own) into Abort: still an interruption.
            echo("Interrupted: nothing was issued now.", err=True)
            return ExitCode.INTERRUPTED
        echo("Aborted: nothing was issued now.", err=True)  # a declined confirmation
        return ExitCode.ROWS_FAILED
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return ExitCode.USAGE
    except FlexybulkError as exc:
        if _STATE.debug:
            echo("".join(traceback.format_exception(exc)), err=True)
        echo(f"Error: {exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        echo("Interrupted.", err=True)
        return ExitCode.INTERRUPTED
    except Exception as exc:  # the last line of defence: a message, never a bare traceback
        if _STATE.debug:
            echo("".join(traceback.format_exception(exc)), err=True)
        echo(f"Error: unexpected {type(exc).__name__}: {redact(str(exc))}. "
             "This is a fault in flexybulk, not in your file; anything already issued is recorded in the ledger. "
             + ("Report the output above." if _STATE.debug else "Run again with --debug and report the output."), err=True)
        return ExitCode.ROWS_FAILED
