"""The commands that read no input sheet: ``status``, ``history``, ``template`` and ``sandbox``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from .. import batches
from ..errors import ConfigError, ExitCode
from ..model import Field
from ..settings import TOKEN_ENV, URL_ENVS
from ..target import default_ledger
from .base import cli, echo, plural, warn
from .options import LEDGER_OPTION, api_options, connected
from .render import show_history, show_status


def _ledger(ledger: str | None, sandbox: bool) -> Path:
    if not ledger:
        return default_ledger(sandbox=sandbox)
    path = Path(ledger).expanduser()
    if not path.exists():
        # A named ledger that is not there is a mistyped name more often than an empty one (README: exit 2).
        raise ConfigError(f"The ledger {path} (named by --ledger or FLEXYBULK_LEDGER) does not exist, so it has "
                          "nothing to show. Check the name; without --ledger the default ledger is read.")
    return path


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@LEDGER_OPTION
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
    return show_status(batches.batch_status(file, _ledger(ledger, sandbox), target=target), Path(file).name)


@cli.command()
@LEDGER_OPTION
@click.option("--sandbox", is_flag=True, help="List the batches of --sandbox runs.")
def history(ledger: str | None, sandbox: bool) -> int:
    """List every batch the ledger knows, newest first: when, who, file, target, counts, money issued.

    Reads nothing from Flexybox.

    \b
    Examples:
      flexybulk history
      flexybulk history --sandbox
    """
    show_history(batches.list_batches(_ledger(ledger, sandbox)))
    return ExitCode.OK


@cli.command("template")
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--lang", type=click.Choice(("da", "en"), case_sensitive=False), default="da", show_default=True,
              help="Language of the headers and the help sheet.")
@click.option("--force", is_flag=True, help="Overwrite OUT if it exists.")
@api_options
def template(out: str, lang: str, force: bool, **kw: Any) -> int:
    """Write an empty recipient sheet (XLSX) to fill in, with dropdowns from the live catalogue.

    Fetches the gift certificate types and departments (read-only) and
    writes OUT with the columns flexybulk reads, dropdowns of the active
    types and departments, phone and postal code formatted as text, and a
    help sheet. Fill it in, then check it with: flexybulk validate OUT

    \b
    Examples:
      flexybulk template modtagere.xlsx --sandbox            # try it with the sandbox's catalogue
      flexybulk template modtagere.xlsx                      # dropdowns from the live Flexybox
      flexybulk template recipients.xlsx --lang en --force   # English, overwrite an old template
    """
    from ..template import COLUMN_FIELDS, HEADERS

    with connected(kw) as target:
        written = batches.make_template(out, target, lang=lang, force=force)
    echo(f"Template: {written.path}")
    echo(f"Dropdowns: {plural(len(written.types), 'gift certificate type')}, {plural(len(written.departments), 'department')} "
         f"(from {written.target}).")
    header = dict(zip(COLUMN_FIELDS, HEADERS[lang.lower()]))
    for fld, names in ((Field.TYPE, written.types), (Field.DEPARTMENT, written.departments)):
        if not names:
            warn(f"Flexybox lists no active {'gift certificate types' if fld == Field.TYPE else 'departments'}: "
                 f"the '{header[fld]}' column has no dropdown.")
    echo(f"Fill it in, then check it (issues nothing): flexybulk validate {written.path}")
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
@click.option("--refuse-rate", type=click.FloatRange(0, 1), default=0.0,
              help="Share of sales order PUTs and commits refused with 400 naming a field (no work done).")
@click.option("--commit-409-on-repeat", is_flag=True,
              help="Answer a repeated commit (same payment id) 409 'already committed' instead of ignoring it.")
@click.option("--only", "only_calls", metavar="REGEX", default=None,
              help="Inject the 5xx/429/drop/refusal faults only into calls whose 'METHOD /path' matches, e.g. '^POST .*/commit$'.")
@click.option("--seed", type=int, default=None, help="Seed for the fault dice (repeatable runs).")
@click.option("--catalogue", "catalogue_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help='A JSON file {"types": [...], "departments": [...]} replacing the built-in catalogue.')
@click.option("--max-price", "max_prices", metavar="TYPE=AMOUNT", multiple=True,
              help="Refuse sales order lines of this gift certificate type priced above AMOUNT (repeatable).")
@click.option("--inactive", "inactive_types", metavar="TYPE", multiple=True,
              help="Mark this gift certificate type inactive: its orders are refused (repeatable).")
def sandbox(host: str, port: int, sandbox_token: str | None, latency: float, error_rate: float,
            rate_limit_rate: float, retry_after: int, drop_rate: float, refuse_rate: float, commit_409_on_repeat: bool,
            only_calls: str | None, seed: int | None, catalogue_file: str | None, max_prices: tuple[str, ...],
            inactive_types: tuple[str, ...]) -> int:
    """Run the built-in Flexybox sandbox in the foreground (Ctrl-C stops it).

    It serves the CRM, POS and general API paths on one address, with the
    built-in catalogue (or --catalogue), and can inject faults and refusals
    for testing.

    \b
    Examples:
      flexybulk sandbox
      flexybulk sandbox --port 9000 --latency 0.05 --error-rate 0.1 --drop-rate 0.05
      flexybulk sandbox --refuse-rate 0.1 --max-price Gavekort=1000 --inactive Julegavekort
      flexybulk sandbox --drop-rate 0.3 --only '^POST .*/commit$' --commit-409-on-repeat
    """
    import re

    from ..sandbox import DEFAULT_TOKEN, Faults, Sandbox, load_catalogue, with_rules
    from ..sandbox.catalogue import describe_rules, parse_max_price

    token = sandbox_token or DEFAULT_TOKEN
    try:
        faults = Faults(latency=latency, error_rate=error_rate, rate_limit_rate=rate_limit_rate,
                        retry_after=retry_after, drop_rate=drop_rate, refuse_rate=refuse_rate,
                        commit_409_on_repeat=commit_409_on_repeat, seed=seed, only=only_calls)
        catalogue = load_catalogue(catalogue_file) if catalogue_file else None
        if max_prices or inactive_types:
            catalogue = with_rules(catalogue, max_prices=dict(parse_max_price(text) for text in max_prices),
                                   inactive=inactive_types)
    except re.error as exc:
        raise ConfigError(f"--only {only_calls!r} is not a regular expression: {exc}.") from None
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    sb = Sandbox(token=token, host=host, port=port, faults=faults, catalogue=catalogue)
    sb.start()
    echo(f"Flexybox sandbox listening on {sb.url}")
    echo(f"Token: {token}")
    if catalogue is not None:
        rules = describe_rules(sb.state.types)
        echo(f"Catalogue: {catalogue_file or 'built-in'}" + (f"; rules: {', '.join(rules)}." if rules else "."))
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
