"""The ``flexybulk`` command line: thin Click commands over the library.

Each command checks its options, builds settings, wires reader, client,
ledger and writer together, calls the library, prints a summary and picks
the exit code. Every exception becomes a message and an exit code in one
place, :func:`main` (httpie's ``raw_main`` pattern); no traceback reaches the
user unless ``--debug`` is given, and then with the token redacted.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import click

from . import __version__
from .errors import ConfigError, ExitCode, FlexybulkError, Interrupted
from .model import RowStatus, Sheet
from .settings import TOKEN_ENV, URL_ENVS, Secret, Settings



@dataclass
class _RunState:
    """What the error boundary needs to know about the running command."""

    debug: bool = False
    secrets: list[str] = field(default_factory=list)


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


# -- configuration ----------------------------------------------------------


def read_token(token: str | None, token_file: str | None) -> tuple[str | None, list[str]]:
    """Find the bearer token: ``--token-file``, ``--token``, ``$FLEXYBOX_TOKEN``, then the OS keyring.

    Returns ``(token or None, warnings)``. A token file readable by other
    users, or a token given on the command line (visible in the process list
    to other users), works but warns (issue #6).

    Raises:
        ConfigError: the token file cannot be read or is empty.
    """
    warnings: list[str] = []
    if token_file:
        path = Path(token_file).expanduser()
        try:
            mode = path.stat().st_mode
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"Cannot read the token file {path}: {exc.strerror}.") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            warnings.append(f"the token file {path} can be read by other users. Run: chmod 600 {path}")
        if not value:
            raise ConfigError(f"The token file {path} is empty. Put the Flexybox token in it.")
        return value, warnings
    if token:
        warnings.append(f"a token given with --token is visible to other users of this machine (process list, shell history). Prefer {TOKEN_ENV} or --token-file.")
        return token, warnings
    env = os.environ.get(TOKEN_ENV, "").strip()
    if env:
        return env, warnings
    try:  # optional: the OS keyring, when the keyring package is installed
        import keyring  # type: ignore

        value = keyring.get_password("flexybulk", "token")
        if value:
            return value, warnings
    except Exception:  # no keyring package or no backend: not an error, just no token from there
        pass
    return None, warnings


def _api_options(func: Callable) -> Callable:
    """Options shared by every command that talks to Flexybox."""
    options = [
        click.option("--sandbox", is_flag=True, help="Start the built-in sandbox on 127.0.0.1 and use it (no credentials needed)."),
        click.option("--token", metavar="TOKEN", help=f"Bearer token (visible to other users; prefer ${TOKEN_ENV} or --token-file)."),
        click.option("--token-file", type=click.Path(dir_okay=False), help="Read the bearer token from this file (chmod 600)."),
        click.option("--crm-url", envvar=URL_ENVS["crm"], show_envvar=True, help="CRM base URL [default: https://crm.flexybox.com]."),
        click.option("--pos-url", envvar=URL_ENVS["pos"], show_envvar=True, help="POS base URL [default: https://pos.flexybox.com]."),
        click.option("--api-url", envvar=URL_ENVS["api"], show_envvar=True, help="General API base URL [default: https://api.flexybox.com]."),
        click.option("--timeout", type=float, default=60.0, show_default=True, help="Seconds to wait for each answer."),
        click.option("--max-attempts", type=click.IntRange(1, 20), default=5, show_default=True, help="Attempts per call on network errors, 429 and 5xx."),
        click.option("--debug", is_flag=True, help="Show tracebacks (the token is redacted)."),
    ]
    for opt in reversed(options):
        func = opt(func)
    return func


def _read_options(func: Callable) -> Callable:
    """Options shared by every command that reads an input sheet."""
    options = [
        click.option("--sheet", "sheet_name", metavar="NAME", help="The worksheet to read (default: the one visible sheet with recipients)."),
        click.option("--column", "columns", multiple=True, metavar='FIELD="Header"',
                     help="Map a column the tool does not recognise, e.g. --column amount=\"Værdi i kr\". "
                          "Fields: name, email, type, amount, quantity, department, phone, address, postal_code, city, country, currency."),
        click.option("--department", metavar="NAME|ID", help="Department for rows without one (by name or id)."),
        click.option("--max-file-size", type=click.IntRange(1), default=50, show_default=True, metavar="MB", help="Refuse larger input files."),
        click.option("--max-rows", type=click.IntRange(1), default=100_000, show_default=True, help="Refuse sheets with more data rows."),
        click.option("--include-hidden", is_flag=True,
                     help="Read rows hidden or filtered out in the sheet as ordinary rows (by default they are not issued)."),
        click.option("--encoding", metavar="NAME",
                     help="The text encoding of a CSV file, e.g. mac-roman, cp1252, utf-8 (default: detected, and named in the output)."),
        click.option("--quiet", "-q", is_flag=True, help="No progress bar; only the summary and problems."),
    ]
    for opt in reversed(options):
        func = opt(func)
    return func


def _parse_columns(columns: tuple[str, ...]) -> dict[str, str]:
    from .model import Field

    known = {f.value for f in Field}
    result = {}
    for item in columns:
        if "=" not in item:
            raise ConfigError(f"--column '{item}' must look like FIELD=\"Header\", e.g. --column amount=\"Værdi i kr\".")
        key, header = item.split("=", 1)
        key = key.strip().lower().replace("-", "_")
        if key not in known:
            raise ConfigError(f"--column: unknown field '{key}'. Use one of: {', '.join(sorted(known))}.")
        result[key] = header.strip().strip('"').strip("'")
    return result


@dataclass
class Context:
    """A command's wiring: settings, the target's name, the sandbox if started."""

    settings: Settings
    target: str
    sandbox: Any = None
    ledger_default: Path | None = None


@contextlib.contextmanager
def api_context(kw: dict, *, workers: int = 4, rate: float | None = None) -> Iterator[Context]:
    """Build settings from flags and environment; start the in-process sandbox with ``--sandbox``."""
    _STATE.debug = kw.get("debug", False)
    with contextlib.ExitStack() as stack:
        if kw.get("sandbox"):
            from .sandbox import Sandbox

            sandbox = stack.enter_context(Sandbox(port=0))
            _STATE.secrets.append(sandbox.token)
            url = sandbox.url
            settings = Settings(token=Secret(sandbox.token), crm_url=url, pos_url=url, api_url=url,
                                read_timeout=kw["timeout"], max_attempts=kw["max_attempts"], workers=workers, rate=rate)
            # Sandbox runs keep their own ledger (and target), apart from the record of real money.
            from .journal import default_ledger_path

            yield Context(settings, "sandbox", sandbox, default_ledger_path(sandbox=True))
            return
        token, warnings = read_token(kw.get("token"), kw.get("token_file"))
        for w in warnings:
            warn(w)
        if token:
            _STATE.secrets.append(token)
        settings = Settings(
            token=Secret(token or ""),
            crm_url=kw.get("crm_url") or "https://crm.flexybox.com",
            pos_url=kw.get("pos_url") or "https://pos.flexybox.com",
            api_url=kw.get("api_url") or "https://api.flexybox.com",
            read_timeout=kw["timeout"], max_attempts=kw["max_attempts"], workers=workers, rate=rate,
        )
        yield Context(settings, settings.pos_url)


def _read(path: str, kw: dict, *, quiet: bool = False) -> Sheet:
    from .reading import ReadOptions, read_sheet

    opts = ReadOptions(sheet=kw.get("sheet_name"), columns=_parse_columns(kw.get("columns") or ()),
                       max_file_size=kw["max_file_size"] * 1024 * 1024, max_rows=kw["max_rows"],
                       include_hidden=kw.get("include_hidden", False), encoding=kw.get("encoding"))
    sheet = read_sheet(Path(path), opts)
    if not sheet.rows:
        from .errors import InputFileError

        raise InputFileError(f"{sheet.where()}: there are no recipients below the header on row {sheet.header_row}. "
                             "Fill in at least one row.")
    if not quiet:
        where = sheet.where()
        echo(f"Read {where} ({sheet.format.upper()}): {len(sheet.rows):,} rows.")
        for note in sheet.notes:
            echo(f"  {note}")
    for w in sheet.warnings + sheet.list_end:
        warn(w)
    return sheet


def _validate(sheet: Sheet, catalogue: Any, kw: dict) -> Any:
    """Validate with a progress bar for long sheets (none with --quiet or off a terminal)."""
    from .validate import validate as run_validation

    bar = _progress_bar(len(sheet.rows), kw["quiet"] or len(sheet.rows) < 5000, "Validating")
    try:
        return run_validation(sheet, catalogue, default_department=kw.get("department"),
                              progress=lambda done: bar.update(done - bar.n))
    finally:
        bar.close()


_DO_NOT_EDIT = "The Row, BatchId and id columns must not be edited: copy them back from the original result sheet."


def _result_sheet_batch(sheet: Sheet) -> tuple[str | None, dict[int, int]]:
    """For a result sheet given as input: its batch id, with each row renumbered to its input row.

    Rows keep the ``Row`` column's number, so a sorted or trimmed result
    sheet still maps each line to its ledger row. Returns ``(batch id,
    {input row: line in this sheet})``, or ``(None, {})`` for an ordinary input.

    Raises:
        InputFileError: the sheet names more than one batch, a line has no or
            a bad ``Row``, or two lines claim the same input row.
    """
    from .errors import InputFileError

    if "BatchId" not in sheet.headers or "Row" not in sheet.headers:
        return None, {}
    batches = {str(r.original.get("BatchId")).strip() for r in sheet.rows if r.original.get("BatchId") not in (None, "")}
    if not batches:
        return None, {}
    if len(batches) > 1:
        raise InputFileError(f"{sheet.where()} mixes rows of {len(batches)} batches ({', '.join(sorted(batches))}). Retry each batch's own result sheet.")
    lines: dict[int, int] = {}
    for r in sheet.rows:
        value = r.original.get("Row")
        if value in (None, "") and r.original.get("BatchId") in (None, ""):
            raise InputFileError(f"{sheet.where()}, row {r.number}: this line has no Row and no BatchId, so it was not part of "
                                 "the batch. Put new recipients in a new sheet and run flexybulk issue on that.")
        try:
            number = int(str(value).strip())
        except (TypeError, ValueError):
            raise InputFileError(f"{sheet.where()}, row {r.number}, column 'Row': '{value}' is not a row number. {_DO_NOT_EDIT}") from None
        if number in lines:
            raise InputFileError(f"{sheet.where()}: rows {lines[number]} and {r.number} both say they are input row {number}. "
                                 "Delete the copied line.")
        lines[number] = r.number
        r.number = number
    return batches.pop(), lines


def _check_result_lines(sheet: Sheet, lines: dict[int, int], records: dict[int, Any]) -> None:
    """Each line of a result sheet must be the ledger row it names (``Row``), judged by its ids.

    A line whose ``Row`` was edited (or whose id cells were) would send one
    recipient's values under another row's ids: refused, naming both lines.

    Raises:
        InputFileError: a line names a row the batch does not have, or its ids belong to another row.
    """
    from .errors import InputFileError
    from .journal import Step

    by_order = {r.sales_order_id.lower(): n for n, r in records.items()}
    rows = {r.number: r for r in sheet.rows}
    for number, line in sorted(lines.items(), key=lambda kv: kv[1]):
        rec = records.get(number)
        row = rows[number]
        where = f"{sheet.where()}, row {line}"
        if rec is None:
            raise InputFileError(f"{where}, column 'Row': the batch has no input row {number}. {_DO_NOT_EDIT}")
        order = str(row.original.get("SalesOrderId") or "").strip().lower()
        payment = str(row.original.get("ExternalPaymentId") or "").strip().lower()
        if order and order != rec.sales_order_id.lower():
            owner = by_order.get(order)
            whose = f"input row {owner}" if owner is not None else "no row of this batch"
            raise InputFileError(f"{where}: column 'Row' says input row {number}, but its SalesOrderId {order} belongs to {whose}. "
                                 + _DO_NOT_EDIT)
        if payment and payment != rec.payment_id.lower():
            raise InputFileError(f"{where}: its ExternalPaymentId is not the one recorded for input row {number}. {_DO_NOT_EDIT}")
        if not order and rec.step != Step.PLANNED:
            raise InputFileError(f"{where}: input row {number} was sent as sales order {rec.sales_order_id}, but this line has no "
                                 f"SalesOrderId. {_DO_NOT_EDIT}")


def _print_validation(validation: Any, *, limit: int = 200) -> None:
    totals = validation.totals()
    rows = len(validation.checks) - len(validation.excluded)
    echo(f"Valid rows: {len(validation.valid):,} of {rows:,} · gift certificates: {totals.certificates:,} · total: {totals.money()}")
    for line in validation.sheet.exclusions():  # the person's selection (issue #12)
        echo(f"{line[0].upper()}{line[1:]} (--include-hidden reads {'them' if line.startswith('rows') else 'it'}).")
    for title, key in (("gift certificate type", lambda o: o.type.name), ("department", lambda o: o.department.name)):
        groups = validation.by(key)
        if groups:
            echo(f"By {title}:")
            width = max(len(k) for k in groups)
            for name, t in groups.items():
                echo(f"  {name:<{width}}  {plural(t.rows, 'row'):>10}  {plural(t.certificates, 'certificate'):>17}  {t.money():>18}")
    problems = validation.messages()
    if problems:
        echo(f"{plural(len(validation.invalid), 'invalid row')}, {plural(len(problems), 'problem')}:", err=True)
        for line in problems[:limit]:
            echo(f"  {line}", err=True)
        if len(problems) > limit:
            echo(f"  … and {len(problems) - limit:,} more: see the Error column of the output sheet.", err=True)
    warnings = validation.warning_messages()
    for line in warnings[:limit]:
        warn(line)


def _progress_bar(total: int, quiet: bool, desc: str) -> Any:
    from tqdm import tqdm

    # disable=None: no bar when stderr is not a terminal (CI, pipes), as tqdm documents.
    return tqdm(total=total, desc=desc, unit="row", file=sys.stderr, disable=True if quiet else None,
                dynamic_ncols=True, smoothing=0.1)


# -- the commands -------------------------------------------------------------


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


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Validation sheet to write [default: FILE.validation.xlsx].")
@_read_options
@_api_options
def validate(file: str, output: str | None, **kw: Any) -> int:
    """Check every row against the live catalogue; issue nothing (the dry run).

    Fetches the gift certificate types and departments (read-only), checks
    every row and reports every problem at once, and writes a validation
    sheet with Status (VALID/INVALID) and Error per row.

    \b
    Examples:
      flexybulk validate kampagne.xlsx --sandbox
      flexybulk validate liste.csv --department Webshop -o tjek.xlsx
    """
    from .client import FlexyboxClient
    from .results import default_output_path, validation_sheet, write_output

    with api_context(kw) as ctx:
        sheet = _read(file, kw, quiet=kw["quiet"])
        with FlexyboxClient(ctx.settings) as client:
            catalogue = client.get_catalogue()
        validation = _validate(sheet, catalogue, kw)
        _print_validation(validation)
        out = Path(output) if output else default_output_path(Path(file), "validation")
        write_output(validation_sheet(validation), out)
        echo(f"Validation sheet: {out}")
        if validation.invalid:
            echo("Nothing was issued. Correct the rows above and validate again.", err=True)
            return ExitCode.ROWS_FAILED
        echo("All rows are valid. Nothing was issued (this was a dry run).")
        return ExitCode.OK


def _check_payment_type(ctx: click.Context, param: click.Parameter, value: str) -> str:
    text = (value or "").strip()
    if not 1 <= len(text) <= 40 or not text.isprintable():
        raise click.BadParameter("give a short payment type such as Mastercard or Invoice (1-40 printable characters).")
    return text


def _issue_options(func: Callable) -> Callable:
    options = [
        click.option("--output", "-o", type=click.Path(dir_okay=False),
                     help="Result sheet, .xlsx or .csv [default: FILE.result.xlsx next to FILE; a result sheet given as FILE is updated in place]."),
        click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation before issuing."),
        click.option("--skip-invalid", is_flag=True, help="Issue the valid rows even if some rows are invalid."),
        click.option("--allow-reissue", is_flag=True, help="Issue rows that an earlier batch already issued (asks to confirm)."),
        click.option("--payment-type", default="Mastercard", show_default=True, callback=_check_payment_type,
                     help="The external payment's Type (1-40 characters)."),
        click.option("--workers", type=click.IntRange(1, 64), default=4, show_default=True, help="Rows issued at the same time."),
        click.option("--rate", type=click.FloatRange(min=0.01), default=None, help="At most this many calls per second (all workers together)."),
        click.option("--ledger", type=click.Path(dir_okay=False), envvar="FLEXYBULK_LEDGER", show_envvar=True,
                     help="The ledger database [default: in the user's data folder]."),
    ]
    for opt in reversed(options):
        func = opt(func)
    return func


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@_issue_options
@_read_options
@_api_options
def issue(file: str, **kw: Any) -> int:
    """Validate, then issue one sales order per row, and write the result sheet.

    Per row: PUT the customer, PUT the sales order, commit it with one
    external payment. Every id is recorded in the ledger before it is used,
    so a rerun after a failure or a crash finishes the batch without issuing
    anything twice. Given a result sheet, reruns the rows that are not ISSUED.

    \b
    Examples:
      flexybulk issue kampagne.xlsx --sandbox --yes     # try it on the built-in sandbox
      flexybulk issue kampagne.xlsx                     # the real run (asks before issuing)
      flexybulk retry kampagne.result.xlsx              # rerun the rows that did not finish
    """
    return _issue_command(file, kw, command="issue")


@cli.command()
@click.argument("result", type=click.Path(exists=True, dir_okay=False))
@_issue_options
@_read_options
@_api_options
def retry(result: str, **kw: Any) -> int:
    """Rerun the rows of a result sheet that are not ISSUED, with their recorded ids.

    Correct a FAILED row's values in the result sheet first if needed (a
    misspelt email, a wrong type): a row whose order was never committed is
    re-sent with the corrected values under the same ids. An ISSUED row is
    never re-sent, whatever was edited. UNKNOWN rows are settled safely.

    \b
    Examples:
      flexybulk retry kampagne.result.xlsx
      flexybulk retry kampagne.result.xlsx --sandbox --yes
    """
    return _issue_command(result, kw, command="retry")


def _open_journal(kw: dict, ctx: Context) -> Any:
    from .journal import Journal, default_ledger_path

    path = Path(kw["ledger"]).expanduser() if kw.get("ledger") else (ctx.ledger_default or default_ledger_path())
    return Journal(path)


def _issue_command(file: str, kw: dict, *, command: str) -> int:
    from .audit import AuditLog, audit_path
    from .client import FlexyboxClient
    from .issue import BatchRunner, plan_batch
    from .results import default_output_path, result_sheet, validation_sheet, write_output

    quiet = kw["quiet"]
    with api_context(kw, workers=kw["workers"], rate=kw["rate"]) as ctx, contextlib.ExitStack() as stack:
        sheet = _read(file, kw, quiet=quiet)
        batch_id, lines = _result_sheet_batch(sheet)
        if command == "retry" and batch_id is None:
            raise ConfigError(f"{Path(file).name} is not a flexybulk result sheet (no BatchId and Row columns). "
                              f"To issue a new file, run: flexybulk issue {file}")
        journal = stack.enter_context(_open_journal(kw, ctx))
        # From planning to the result sheet, this process alone issues with this ledger.
        stack.enter_context(journal.issuing_lock(f"{command} {Path(file).name}"))
        client = stack.enter_context(FlexyboxClient(ctx.settings))
        catalogue = client.get_catalogue()
        validation = _validate(sheet, catalogue, kw)

        # Rows the ledger already issued are never re-sent, so edits to them cannot block a rerun.
        batch = journal.get_batch(batch_id) if batch_id else journal.find_batch_by_sha256(sheet.sha256, ctx.target)
        known = {r.row_number: r for r in journal.rows(batch.id)} if batch else {}
        if batch_id and batch is not None:
            _check_result_lines(sheet, lines, known)
        issued_rows = {n for n, r in known.items() if r.status == RowStatus.ISSUED}
        blocking = [c for c in validation.invalid if c.row.number not in issued_rows]
        if blocking and not kw["skip_invalid"]:
            validation.checks = [c for c in validation.checks if c.row.number not in issued_rows or c.valid]
            _print_validation(validation)
            out = default_output_path(Path(file), "validation")
            write_output(validation_sheet(validation), out)
            echo(f"Validation sheet: {out}")
            echo(f"Nothing was issued: {len(blocking):,} rows are invalid. Correct them, or issue the valid rows with --skip-invalid.", err=True)
            return ExitCode.ROWS_FAILED

        options = {"command": command, "payment_type": kw["payment_type"], "department": kw.get("department"),
                   "skip_invalid": kw["skip_invalid"], "allow_reissue": kw["allow_reissue"], "workers": kw["workers"],
                   "rate": kw["rate"], "sheet": sheet.sheet_name, "target": ctx.target}
        plan = plan_batch(journal, validation, input_path=str(Path(file).resolve()), target=ctx.target,
                          options=options, batch_id=batch_id, allow_reissue=kw["allow_reissue"])
        if kw.get("output"):
            out = Path(kw["output"])
        elif batch_id:
            out = Path(file)  # a result sheet, whatever its name, is updated in place
        else:
            out = default_output_path(Path(file), "result")

        to_send = plan.to_send
        checks = {c.row.number: c for c in validation.checks}
        send_orders = [checks[n].order for n in to_send]
        from .validate import Totals

        totals = Totals()
        for o in send_orders:
            totals.add(o)
        if not quiet:
            _print_plan(plan, validation, totals)
        else:
            for w in validation.warning_messages():
                warn(w)

        reissue = [r for r in plan.rows if r.action == "reissue"]
        if reissue:
            for r in reissue:
                echo(f"  row {r.row_number}: {r.message}")
            # Always asked, even with --yes: issuing the same gift certificate twice must be a decision.
            if not click.confirm(f"{len(reissue)} rows were already issued by an earlier batch. Issue them AGAIN?", default=False, err=True):
                _discard_if_new(journal, plan)
                raise click.Abort()
        if to_send and not kw["yes"]:
            question = f"Issue {totals.certificates:,} gift certificates worth {totals.money()} for {len(to_send):,} rows"
            if ctx.target == "sandbox":
                question += " on the sandbox"
            if not click.confirm(question + "?", default=False, err=True):
                _discard_if_new(journal, plan)
                raise click.Abort()

        for r in plan.rows:
            if r.action == "skip":
                journal.finish_row(plan.batch.id, r.row_number, RowStatus.SKIPPED, error=r.message)

        audit = AuditLog(audit_path(journal.path, plan.batch.id))
        audit.run_started(command=command, input_path=str(Path(file).resolve()), sha256=sheet.sha256,
                          batch_id=plan.batch.id, options=options)
        client.on_call = audit.call
        bar = _progress_bar(len(to_send), quiet, "Issuing")
        failures = Counter()

        def progress(status: RowStatus) -> None:
            if status != RowStatus.ISSUED:
                failures[status.value] += 1
                bar.set_postfix({k.lower(): v for k, v in failures.items()}, refresh=False)
            bar.update(1)

        runner = BatchRunner(client, journal, payment_type=kw["payment_type"], workers=kw["workers"], progress=progress)
        report = None
        try:
            report = runner.run(plan)
        finally:
            bar.close()
            records = {r.row_number: r for r in journal.rows(plan.batch.id)}
            write_output(result_sheet(sheet, validation, plan.batch, records, journal.path), out)
            counts = Counter(r.status.value for n, r in records.items() if n in checks)
            audit.close(**{k.lower(): v for k, v in counts.items()})
        return _report_outcome(plan, records, checks, out, report)


def _discard_if_new(journal: Any, plan: Any) -> None:
    """A batch planned by this run and declined at the prompt leaves nothing behind (it sent nothing)."""
    if not plan.resumed:
        journal.discard_unsent_batch(plan.batch.id)


def _print_plan(plan: Any, validation: Any, totals: Any) -> None:
    _print_validation(validation)
    echo(f"Batch {plan.batch.id}" + (" (resumed)" if plan.resumed else ""))
    done = plan.count("done")
    if done:
        echo(f"Already issued in this batch: {done:,} rows (skipped).")
    for r in plan.duplicates:
        if r.action == "skip":
            echo(f"  row {r.row_number}: {r.message}")
    skipped = plan.count("skip")
    if skipped:
        echo(f"Issued by an earlier batch: {skipped:,} rows (skipped).")
    for r in plan.settling:
        echo(f"  row {r.row_number}: {r.message}")
    echo(f"To issue now: {len(plan.to_send):,} rows, {totals.certificates:,} gift certificates, {totals.money()}.")


def _report_outcome(plan: Any, records: dict, checks: dict, out: Path, report: Any) -> int:
    from .issue import issued_totals, row_state_text

    mine = [records[n] for n in checks if n in records]
    counts = Counter(r.status for r in mine)
    issued = issued_totals(mine)
    invalid = sum(1 for n, c in checks.items() if not c.valid and not c.excluded
                  and (n not in records or records[n].status != RowStatus.ISSUED))
    sent = report.outcomes if report is not None else {}
    now = issued_totals(records[n] for n, st in sent.items() if st == RowStatus.ISSUED and n in records)
    if now.rows:
        echo(f"Issued now: {plural(now.rows, 'row')}, {plural(now.certificates, 'gift certificate')}, {now.money()}.")
    else:
        echo("Issued now: nothing.")
    if issued.rows != now.rows:
        echo(f"Issued in this batch in all: {plural(issued.rows, 'row')}, {plural(issued.certificates, 'gift certificate')}, {issued.money()}.")
    echo(f"Batch: {plan.batch.id}")
    other = ", ".join(f"{s.value}: {n:,}" for s, n in sorted(counts.items(), key=lambda kv: kv[0].value) if s != RowStatus.ISSUED)
    if other:
        echo(f"Not issued: {other}.")
    echo(f"Result sheet: {out}")
    attention = [r for r in mine if r.status in (RowStatus.FAILED, RowStatus.UNKNOWN, RowStatus.PENDING)]
    # Unfinished rows of the batch that this sheet no longer has (a line deleted from a result sheet).
    absent = [r for n, r in sorted(records.items()) if n not in checks
              and r.status in (RowStatus.FAILED, RowStatus.UNKNOWN, RowStatus.PENDING)]
    for r in absent:
        echo(f"  input row {r.row_number}: {r.status.value} in the ledger, but not in this sheet, so it was not retried. "
             f"Retry the full result sheet, or see: flexybulk status {out}", err=True)
    attention += absent
    for r in attention[:50]:
        echo(f"  row {r.row_number}: {r.status.value}: {row_state_text(r)}", err=True)
    if len(attention) > 50:
        echo(f"  … and {len(attention) - 50:,} more: see the result sheet.", err=True)
    if report is not None and report.fatal is not None:
        raise report.fatal
    if report is not None and report.interrupted:
        raise Interrupted(f"Interrupted. The rows not yet sent are PENDING in {out}; run: flexybulk retry {out}")
    if attention:
        echo(f"To finish: flexybulk retry {out}", err=True)
    return ExitCode.ROWS_FAILED if attention or invalid else ExitCode.OK


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--ledger", type=click.Path(dir_okay=False), envvar="FLEXYBULK_LEDGER", show_envvar=True,
              help="The ledger database [default: in the user's data folder].")
@click.option("--target", default=None, help="Which Flexybox the batch went to (a POS URL, or 'sandbox') [default: any].")
@click.option("--sandbox", is_flag=True, help="Look in the ledger of --sandbox runs.")
def status(file: str, ledger: str | None, target: str | None, sandbox: bool) -> int:
    """Show what the ledger knows about an input file's or result sheet's batch.

    Counts by status, the total issued per currency, and the rows that need
    attention. Reads nothing from Flexybox.

    \b
    Examples:
      flexybulk status kampagne.xlsx
      flexybulk status kampagne.result.xlsx
    """
    import hashlib

    from .journal import Journal, default_ledger_path

    path = Path(file)
    journal = Journal(Path(ledger).expanduser() if ledger else default_ledger_path(sandbox=sandbox))
    with journal:
        batch = None
        try:
            from .reading import ReadOptions, read_sheet

            sheet = read_sheet(path, ReadOptions())
            batch_id, _ = _result_sheet_batch(sheet)
            if batch_id:
                batch = journal.get_batch(batch_id)
        except FlexybulkError:
            sheet = None
        if batch is None:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            candidates = [b for b in journal.batches() if b.input_sha256 == digest and (target is None or b.target == target)]
            batch = candidates[-1] if candidates else None
        if batch is None:
            echo(f"The ledger {journal.path} has no batch for {path.name}. Nothing was issued from it with this ledger.")
            return ExitCode.OK
        rows = journal.rows(batch.id)
        echo(f"Batch {batch.id} · {batch.input_path} · target {batch.target}")
        echo(f"Created {batch.created_at} by {batch.os_user or 'unknown user'}; last change {batch.updated_at}.")
        counts = Counter(r.status.value for r in rows)
        echo("Rows: " + ", ".join(f"{k}: {v:,}" for k, v in sorted(counts.items())) + f" (of {len(rows):,}).")
        from .issue import issued_totals, row_state_text

        issued = issued_totals(rows)
        echo(f"Issued: {issued.certificates:,} gift certificates, {issued.money()}.")
        attention = [r for r in rows if r.status.needs_attention]
        if attention:
            echo(f"Needing attention: {len(attention):,} rows")
            for r in attention[:100]:
                echo(f"  row {r.row_number}: {r.status.value}: {row_state_text(r)}")
            return ExitCode.ROWS_FAILED
        echo("No rows need attention.")
        return ExitCode.OK


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback only is wise).")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="Port (0 = any free port).")
@click.option("--token", "sandbox_token", default=None, help="The bearer token the sandbox accepts [default: a fixed sandbox token].")
@click.option("--latency", type=click.FloatRange(0), default=0.0, help="Seconds added to every call.")
@click.option("--error-rate", type=click.FloatRange(0, 1), default=0.0, help="Share of calls answered 500/503 (no work done).")
@click.option("--rate-limit-rate", type=click.FloatRange(0, 1), default=0.0, help="Share of calls answered 429 with Retry-After.")
@click.option("--retry-after", type=click.IntRange(0), default=1, show_default=True, help="Seconds in the 429's Retry-After.")
@click.option("--drop-rate", type=click.FloatRange(0, 1), default=0.0, help="Share of calls done but whose answer is dropped.")
@click.option("--seed", type=int, default=None, help="Seed for the fault dice (repeatable runs).")
def sandbox(host: str, port: int, sandbox_token: str | None, latency: float, error_rate: float,
            rate_limit_rate: float, retry_after: int, drop_rate: float, seed: int | None) -> int:
    """Run the built-in Flexybox sandbox in the foreground (Ctrl-C stops it).

    It serves the CRM, POS and general API paths on one address, with the
    built-in catalogue, and can inject faults for testing.

    \b
    Examples:
      flexybulk sandbox
      flexybulk sandbox --port 9000 --latency 0.05 --error-rate 0.1 --drop-rate 0.05
    """
    from .sandbox import DEFAULT_TOKEN, Faults, Sandbox

    token = sandbox_token or DEFAULT_TOKEN
    faults = Faults(latency=latency, error_rate=error_rate, rate_limit_rate=rate_limit_rate,
                    retry_after=retry_after, drop_rate=drop_rate, seed=seed)
    sb = Sandbox(token=token, host=host, port=port, faults=faults)
    sb.start()
    echo(f"Flexybox sandbox listening on {sb.url}")
    echo(f"Token: {token}")
    echo("Use it from another shell:")
    echo(f"  export {TOKEN_ENV}={token} {URL_ENVS['crm']}={sb.url} {URL_ENVS['pos']}={sb.url} {URL_ENVS['api']}={sb.url}")
    echo("Press Ctrl-C to stop.")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        echo("Stopped.")
    finally:
        sb.stop()
    return ExitCode.OK


# -- the error boundary --------------------------------------------------------


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
    try:
        result = cli.main(args=argv, prog_name="flexybulk", standalone_mode=False)
        return int(result) if isinstance(result, int) else ExitCode.OK
    except click.exceptions.Abort as exc:
        if isinstance(exc.__context__, KeyboardInterrupt):
            # Click turns a Ctrl-C (outside the runner, which handles its own) into Abort: still an interruption.
            echo("Interrupted. Nothing more was issued.", err=True)
            return ExitCode.INTERRUPTED
        echo("Aborted. Nothing more was issued.", err=True)  # a declined confirmation
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


# Commands that live in their own modules register themselves here, after the helpers they import exist.
from .template import register as _register_template  # noqa: E402

_register_template(cli)

__all__ = ["cli", "main", "read_token", "redact"]
