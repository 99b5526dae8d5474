"""Options shared by several commands, and their translation into the library's values.

The decorators add the same options to every command that needs them (the
pip-tools habit); :func:`connected` and :func:`read_request` turn the parsed
options into a :class:`~flexybulk.target.Target` and a
:class:`~flexybulk.batches.ReadRequest`. No rule about money lives here.
"""

from __future__ import annotations

import contextlib
import re
from decimal import Decimal
from typing import Callable, Iterator

import click

from ..batches import MIB, ReadRequest
from ..errors import ConfigError
from ..model import Field
from ..settings import TOKEN_ENV, URL_ENVS
from ..target import Target, connect
from .base import _STATE, warn


def _apply(func: Callable, options: list[Callable]) -> Callable:
    for opt in reversed(options):
        func = opt(func)
    return func


def api_options(func: Callable) -> Callable:
    """Options shared by every command that talks to Flexybox."""
    return _apply(func, [
        click.option("--sandbox", is_flag=True, help="Start the built-in sandbox on 127.0.0.1 and use it (no credentials needed)."),
        click.option("--token", metavar="TOKEN", help=f"Bearer token (visible to other users; prefer ${TOKEN_ENV} or --token-file)."),
        click.option("--token-file", type=click.Path(dir_okay=False), help="Read the bearer token from this file (chmod 600)."),
        click.option("--crm-url", envvar=URL_ENVS["crm"], show_envvar=True, help="CRM base URL [default: https://crm.flexybox.com]."),
        click.option("--pos-url", envvar=URL_ENVS["pos"], show_envvar=True, help="POS base URL [default: https://pos.flexybox.com]."),
        click.option("--api-url", envvar=URL_ENVS["api"], show_envvar=True, help="General API base URL [default: https://api.flexybox.com]."),
        click.option("--timeout", type=float, default=60.0, show_default=True, help="Seconds to wait for each answer."),
        click.option("--max-attempts", type=click.IntRange(1, 20), default=5, show_default=True, help="Attempts per call on network errors, 429 and 5xx."),
        click.option("--debug", is_flag=True, help="Show tracebacks (the token is redacted)."),
    ])


def read_options(func: Callable) -> Callable:
    """Options shared by every command that reads an input sheet."""
    return _apply(func, [
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
        click.option("--quiet", "-q", is_flag=True, help="Print only the problems and the final line (no progress bar)."),
    ])


def _check_payment_type(ctx: click.Context, param: click.Parameter, value: str) -> str:
    text = (value or "").strip()
    if not 1 <= len(text) <= 40 or not text.isprintable():
        raise click.BadParameter("give a short payment type such as Mastercard or Invoice (1-40 printable characters).")
    return text


LEDGER_OPTION = click.option("--ledger", type=click.Path(dir_okay=False), envvar="FLEXYBULK_LEDGER", show_envvar=True,
                             help="The ledger database [default: in the user's data folder].")


def issue_options(func: Callable) -> Callable:
    """Options of ``issue`` and ``retry``."""
    return _apply(func, [
        click.option("--output", "-o", type=click.Path(dir_okay=False),
                     help="Result sheet, .xlsx or .csv [default: FILE.result.xlsx next to FILE; a result sheet given as FILE is updated in place]."),
        click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation before issuing."),
        click.option("--skip-invalid", is_flag=True, help="Issue the valid rows even if some rows are invalid."),
        click.option("--allow-reissue", is_flag=True, help="Issue rows that an earlier batch already issued (asks to confirm)."),
        click.option("--payment-type", default="Mastercard", show_default=True, callback=_check_payment_type,
                     help="The external payment's Type (1-40 characters)."),
        click.option("--workers", type=click.IntRange(1, 64), default=4, show_default=True, help="Rows issued at the same time."),
        click.option("--rate", type=click.FloatRange(min=0.01), default=None, help="At most this many calls per second (all workers together)."),
        LEDGER_OPTION,
        click.option("--first", type=click.IntRange(1), default=None, metavar="N",
                     help="Issue only the first N rows to send (a canary); the rest stay PENDING for flexybulk retry."),
        click.option("--max-total", "max_total", multiple=True, metavar="AMOUNT|CUR=AMOUNT",
                     help="Refuse the run before any gift certificate call if it would issue more than AMOUNT in a "
                          "currency (e.g. --max-total 50000, or --max-total DKK=50000 --max-total EUR=5000)."),
        click.option("--new-ledger", is_flag=True,
                     help="Create the ledger named by --ledger (or FLEXYBULK_LEDGER) if it does not exist. Without it a "
                          "missing ledger is refused: a mistyped path must not start an empty ledger."),
    ])


def parse_columns(columns: tuple[str, ...]) -> dict[str, str]:
    """``('amount="Værdi i kr"',)`` -> ``{"amount": "Værdi i kr"}``.

    Raises:
        ConfigError: an item is not ``FIELD="Header"`` or names an unknown field.
    """
    known = {f.value for f in Field}
    result = {}
    for item in columns:
        if "=" not in item:
            raise ConfigError(f"--column '{item}' must look like FIELD=\"Header\", e.g. --column amount=\"Værdi i kr\".")
        key, header = item.split("=", 1)
        key = key.strip().lower().replace("-", "_")
        if key not in known:
            raise ConfigError(f"--column: unknown field '{key}'. Use one of: {', '.join(sorted(known))}.")
        if key in result:
            raise ConfigError(f"--column {key} is given twice (\"{result[key]}\" and \"{header.strip()}\"); give it once.")
        result[key] = header.strip().strip('"').strip("'")
    return result


_LIMIT = re.compile(r"(?:([A-Za-z]{3})\s*=\s*)?(\d+(?:[.,]\d{1,2})?)")


def parse_max_total(items: tuple[str, ...]) -> dict[str | None, Decimal]:
    """``("50000", "EUR=5000,50")`` -> ``{None: Decimal("50000"), "EUR": Decimal("5000.50")}`` (``None``: every currency).

    Raises:
        ConfigError: an item is not an amount, or ``CUR=AMOUNT`` with a three-letter currency.
    """
    limits: dict[str | None, Decimal] = {}
    for item in items:
        match = _LIMIT.fullmatch(item.strip().replace(" ", ""))
        if not match:
            raise ConfigError(f"--max-total '{item}' must be an amount such as 50000 or 50000.00, or CUR=AMOUNT such as DKK=50000.")
        currency = match.group(1).upper() if match.group(1) else None
        limits[currency] = Decimal(match.group(2).replace(",", "."))
    return limits


def read_request(kw: dict) -> ReadRequest:
    """The :class:`ReadRequest` of a command's parsed ``read_options``."""
    return ReadRequest(sheet=kw.get("sheet_name"), columns=parse_columns(kw.get("columns") or ()),
                       department=kw.get("department"), max_file_size=kw["max_file_size"] * MIB, max_rows=kw["max_rows"],
                       include_hidden=kw.get("include_hidden", False), encoding=kw.get("encoding"))


@contextlib.contextmanager
def connected(kw: dict, *, workers: int = 4, rate: float | None = None) -> Iterator[Target]:
    """The command's :class:`Target` from its ``api_options`` (the sandbox started with ``--sandbox``).

    The token joins the secrets that every printed line is redacted of.
    """
    _STATE.debug = kw.get("debug", False)
    with connect(sandbox=kw.get("sandbox", False), token=kw.get("token"), token_file=kw.get("token_file"),
                 crm_url=kw.get("crm_url"), pos_url=kw.get("pos_url"), api_url=kw.get("api_url"),
                 timeout=kw["timeout"], max_attempts=kw["max_attempts"], workers=workers, rate=rate) as target:
        _STATE.secrets.append(target.settings.token.reveal())
        for w in target.warnings:
            warn(w)
        yield target


__all__ = ["LEDGER_OPTION", "api_options", "connected", "issue_options", "parse_columns", "read_options", "read_request"]

