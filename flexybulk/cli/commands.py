"""The commands that read a sheet: ``validate`` (the dry run), ``issue`` and ``retry``.

Each parses its options, calls :mod:`flexybulk.batches`, renders what comes
back (:mod:`.render`) and picks the exit code; the confirmation is asked
here and passed back to the library as a :class:`~flexybulk.batches.Decision`.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import click

from .. import batches
from ..errors import ExitCode
from ..model import RowStatus
from .base import cli, echo, plural, progress_bar
from .options import LEDGER_OPTION, api_options, connected, issue_options, parse_max_total, read_options, read_request
from .render import confirmation_question, show_input, show_known, show_outcome, show_plan, show_validation


def _validation_bar(rows: int, quiet: bool) -> Any:
    # Short sheets validate in a blink; a bar would only flicker.
    return progress_bar(rows, quiet or rows < 5000, "Validating")


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Validation sheet to write [default: FILE.validation.xlsx].")
@LEDGER_OPTION
@read_options
@api_options
def validate(file: str, output: str | None, ledger: str | None, **kw: Any) -> int:
    """Check every row against the live catalogue; issue nothing (the dry run).

    Fetches the gift certificate types and departments (read-only), checks
    every row and reports every problem at once, and writes a validation
    sheet with Status (VALID/INVALID) and Error per row.

    \b
    Examples:
      flexybulk validate kampagne.xlsx --sandbox
      flexybulk validate liste.csv --department Webshop -o tjek.xlsx
    """
    request = read_request(kw)
    with connected(kw) as target:
        source = batches.read_input(file, request, command="validate")
        show_input(source, quiet=kw["quiet"])
        bar = _validation_bar(len(source.sheet.rows), kw["quiet"])
        try:
            checked = batches.check(source, target, request, progress=lambda done: bar.update(done - bar.n), ledger=ledger)
        finally:
            bar.close()
        validation = checked.validation
        quiet = kw["quiet"]
        show_validation(validation, quiet=quiet)
        if not quiet:
            show_known(checked)
        out = batches.write_validation(validation, Path(output) if output else None, notes=checked.notes())
        # --quiet: only the problems and the final line, which then names the validation sheet.
        sheet_named = f" Validation sheet: {out}" if quiet else ""
        if not quiet:
            echo(f"Validation sheet: {out}")
        if validation.invalid:
            echo("Nothing was issued. Correct the rows above and validate again." + sheet_named, err=True)
            return ExitCode.ROWS_FAILED
        echo("All rows are valid. Nothing was issued (this was a dry run)." + sheet_named)
        return ExitCode.OK


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@issue_options
@read_options
@api_options
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
@issue_options
@read_options
@api_options
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


def _issue_command(file: str, kw: dict, *, command: str) -> int:
    quiet = kw["quiet"]
    request = read_request(kw)
    with connected(kw, workers=kw["workers"], rate=kw["rate"]) as target:
        source = batches.read_input(file, request, command=command)
        show_input(source, quiet=quiet)
        # From planning to the result sheet, this process alone issues with this ledger.
        with batches.issuing(target, kw.get("ledger"), f"{command} {Path(file).name}", new_ledger=kw["new_ledger"]) as session:
            if not quiet:
                echo(f"{'Created a new ledger' if session.ledger_created else 'Ledger'}: {session.ledger}")
            bar = _validation_bar(len(source.sheet.rows), quiet)
            try:
                prepared = session.prepare(source, request, command=command, output=kw.get("output"),
                                           skip_invalid=kw["skip_invalid"], allow_reissue=kw["allow_reissue"],
                                           payment_type=kw["payment_type"], workers=kw["workers"], rate=kw["rate"],
                                           first=kw["first"], max_total=parse_max_total(kw["max_total"]),
                                           progress=lambda done: bar.update(done - bar.n))
            finally:
                bar.close()
            if prepared.blocked:
                show_validation(prepared.validation, quiet=quiet)
                out = batches.write_validation(prepared.validation, prepared.output)
                if not quiet:
                    echo(f"Validation sheet: {out}")
                n = len(prepared.blocking)
                echo(f"Nothing was issued: {plural(n, 'row')} {'is' if n == 1 else 'are'} invalid. Correct "
                     f"{'it' if n == 1 else 'them'}, or issue the valid rows with --skip-invalid."
                     + (f" Validation sheet: {out}" if quiet else ""), err=True)
                return ExitCode.ROWS_FAILED
            if not quiet:
                show_plan(prepared)
            else:  # --quiet still names every problem: the invalid rows --skip-invalid leaves out (a fresh user's find)
                show_validation(prepared.validation, quiet=True)
            reissue_confirmed = False
            if prepared.reissue:
                for r in prepared.reissue:
                    echo(f"  row {r.row_number}: {r.message}")
                # Always asked, even with --yes: issuing the same gift certificate twice must be a decision.
                n = len(prepared.reissue)
                reissue_confirmed = click.confirm(
                    f"{plural(n, 'row')} {'was' if n == 1 else 'were'} already issued by an earlier batch. "
                    f"Issue {'it' if n == 1 else 'them'} AGAIN?", default=False, err=True)
                if not reissue_confirmed:
                    session.decline(prepared)
                    raise click.Abort()
            near_confirmed = False
            if prepared.near:
                for r in prepared.near:
                    echo(f"  row {r.row_number}: {r.message}")
                # Like a reissue, always asked: --yes does not decide that a person gets a second gift certificate.
                one = len(prepared.near) == 1
                echo(f"{plural(len(prepared.near), 'row')} "
                     + ("looks like a correction of a gift certificate" if one else "look like corrections of gift certificates")
                     + " already issued (same email and type, another amount, quantity or department). --yes does not answer this question.",
                     err=True)
                near_confirmed = click.confirm(f"Issue {'it as a NEW gift certificate' if one else 'them as NEW gift certificates'} "
                                               "as well?", default=False, err=True)
                if not near_confirmed:
                    session.decline(prepared)
                    raise click.Abort()
            if prepared.needs_confirmation and not kw["yes"]:
                if not click.confirm(confirmation_question(prepared), default=False, err=True):
                    session.decline(prepared)
                    raise click.Abort()

            bar = progress_bar(len(prepared.orders), quiet, "Issuing")
            failures: Counter = Counter()

            def progress(row: batches.RowOutcome) -> None:
                if row.status != RowStatus.ISSUED:
                    failures[row.status.value] += 1
                    bar.set_postfix({k.lower(): v for k, v in failures.items()}, refresh=False)
                bar.update(1)

            try:
                outcome = session.run(prepared, batches.Decision(confirmed=True, reissue_confirmed=reissue_confirmed,
                                                                 near_confirmed=near_confirmed), progress=progress)
            finally:
                bar.close()
            return show_outcome(outcome, quiet=quiet)
