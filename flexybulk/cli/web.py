"""The ``web`` command: serve the web page (:mod:`flexybulk.web`) with uvicorn.

It parses the options, builds the target the same way every command does
(:func:`~flexybulk.cli.options.connected`: the token from the environment, a
token file or the keyring, never from the page), refuses team use without
authentication, binds the socket itself (so ``--port 0`` can print the port
it got) and runs the server until Ctrl-C or SIGTERM, which stop a running
batch cleanly (rows in flight finish, the rest stay PENDING, the result
sheet is written).
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import click

from ..batches import MIB
from ..errors import ConfigError, ExitCode
from ..settings import is_loopback
from .base import cli, echo
from .options import LEDGER_OPTION, api_options, connected


def _amount(ctx: click.Context, param: click.Parameter, value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        amount = Decimal(value.replace(",", "."))
    except InvalidOperation:
        raise click.BadParameter("give an amount such as 10000 or 2500,00.") from None
    if not amount.is_finite() or amount < 0:
        raise click.BadParameter("give a positive amount such as 10000.")
    return amount


@cli.command("web")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but loopback is team mode and needs --users or --proxy-header.")
@click.option("--port", type=click.IntRange(0, 65535), default=8770, show_default=True, help="Port (0 = any free port).")
@click.option("--no-browser", is_flag=True, help="Do not open the page in a browser.")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Where uploads and their sheets are kept [default: in the user's data folder].")
@click.option("--users", "users_file", type=click.Path(dir_okay=False), help="Team mode: the users file (TOML with argon2 password hashes and roles).")
@click.option("--proxy-header", metavar="NAME", help="Team mode behind a reverse proxy that logs people in: the header carrying the user name.")
@click.option("--allowed-host", "allowed_hosts", multiple=True, metavar="NAME",
              help="Team mode: a host name (or address) people reach the page by, as the browser's address bar shows it; "
                   "repeatable. Requests naming any other host are refused (DNS rebinding). Default: --host when it is "
                   "a name or an address.")
@click.option("--approval-above", callback=_amount, metavar="AMOUNT",
              help="Team mode: a batch whose total (in any currency) is above this needs an approver's approval.")
@click.option("--keep-hours", type=click.FloatRange(min=0.1), default=168, show_default=True, help="Delete uploads after this many hours.")
@click.option("--max-file-size", type=click.IntRange(1), default=50, show_default=True, metavar="MB", help="Refuse larger uploads.")
@click.option("--max-rows", type=click.IntRange(1), default=100_000, show_default=True, help="Refuse sheets with more data rows.")
@click.option("--secure-cookies", is_flag=True, help="Mark cookies Secure (when the page is served over HTTPS by a reverse proxy).")
@click.option("--new-ledger", is_flag=True,
              help="Create the ledger named by --ledger (or FLEXYBULK_LEDGER) if it does not exist (else refused).")
@click.option("--hash-password", is_flag=True, help="Ask for a password and print its argon2 hash for the users file, then exit.")
@LEDGER_OPTION
@api_options
def web(host: str, port: int, no_browser: bool, data_dir: str | None, users_file: str | None, proxy_header: str | None,
        allowed_hosts: tuple[str, ...], approval_above: Decimal | None, keep_hours: float, max_file_size: int, max_rows: int, secure_cookies: bool,
        new_ledger: bool, hash_password: bool, ledger: str | None, **kw: Any) -> int:
    """Serve the web page: upload a sheet, fix it, confirm, follow the issue, download the result.

    On 127.0.0.1 it is for the person at this computer (no login). For a
    team, run it on a server with --host and --users (or behind a reverse
    proxy with --proxy-header); it refuses to listen beyond loopback without.
    The Flexybox token stays on the server (FLEXYBOX_TOKEN, --token-file or
    the keyring) and is never sent to a browser.

    \b
    Examples:
      flexybulk web --sandbox                  # try it on the built-in sandbox
      flexybulk web                            # the real Flexybox, on http://127.0.0.1:8770/
      flexybulk web --host 0.0.0.0 --allowed-host gavekort.firma.dk --users users.toml --approval-above 10000
    """
    from ..web.auth import Auth, hash_password as make_hash, load_users

    if hash_password:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
        echo(make_hash(password))
        return ExitCode.OK
    team = bool(users_file or proxy_header)
    if not team and not is_loopback(host):
        raise ConfigError(f"flexybulk web refuses to listen on {host} without authentication: anyone who can reach it could "
                          "issue gift certificates. Give --users FILE (see the README's web section), or --proxy-header NAME "
                          "behind a reverse proxy that logs people in, or listen on 127.0.0.1.")
    if approval_above is not None and not team:
        raise ConfigError("--approval-above needs team mode (--users or --proxy-header): on its own the page has one person.")
    hosts = _allowed_hosts(host, allowed_hosts, team)
    users = load_users(users_file) if users_file else None
    auth = Auth(users, proxy_header, team=team)
    os.umask(0o077)  # everything this server writes (uploads, sheets, ledger, audit log) is owner-only
    _log_setup()
    with connected(kw) as target:
        from ..web.app import WebConfig, create_app

        ledger_path = Path(ledger).expanduser() if ledger else target.ledger_default
        if data_dir:
            folder = Path(data_dir).expanduser()
        else:
            import platformdirs

            folder = Path(platformdirs.user_data_dir("flexybulk", appauthor=False)) / ("web-sandbox" if target.is_sandbox else "web")
        config = WebConfig(data_dir=folder, ledger=ledger_path, max_file_size=max_file_size * MIB, max_rows=max_rows,
                           keep_hours=keep_hours, approval_above=approval_above, team=team, secure_cookies=secure_cookies,
                           new_ledger=new_ledger, allowed_hosts=hosts)
        app = create_app(config, target, auth)
        sock = _bind(host, port)
        shown_host = sock.getsockname()[0]
        url = f"http://{'[' + shown_host + ']' if ':' in shown_host else shown_host}:{sock.getsockname()[1]}/"
        if target.is_sandbox:
            echo(f"Sandbox (the built-in Flexybox, no real gift certificates): {target.settings.pos_url}")
        echo(f"Ledger: {ledger_path}")
        echo(f"Uploads: {folder}")
        echo(f"Mode: {'team (login needed)' if team else 'local (this computer only)'}")
        echo(f"Web page: {url}", err=False)
        sys.stdout.flush()
        if not no_browser:
            import webbrowser

            threading.Timer(0.5, webbrowser.open, args=(url,)).start()
        try:
            _serve(app, sock)
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (re-raised by uvicorn once it has shut down)
            from ..web.app import shutdown_summary

            # The page's own last line: the CLI's "nothing was issued now" would be untrue after a run.
            echo(shutdown_summary(app), err=True)
            return ExitCode.INTERRUPTED
    return ExitCode.OK


def _allowed_hosts(host: str, names: tuple[str, ...], team: bool) -> tuple[str, ...]:
    """The host names the page answers to (see :mod:`flexybulk.web.security`).

    Local mode: 127.0.0.1, localhost and [::1] only. Team mode: the
    ``--allowed-host`` names, ``--host`` itself unless it is a wildcard
    (0.0.0.0, ::), and the loopback names when it listens on loopback (behind
    a reverse proxy on the same machine).

    Raises:
        ConfigError: ``--allowed-host`` in local mode, a value that is not a host name, or team mode on a
            wildcard address without any ``--allowed-host``.
    """
    from ..web.security import LOOPBACK_HOSTS, host_name

    if not team:
        if names:
            raise ConfigError("--allowed-host is for team mode (--users or --proxy-header): on its own the page answers only "
                              "as 127.0.0.1, localhost and [::1], so that no other web site can reach it.")
        return LOOPBACK_HOSTS
    allowed = []
    for name in names:
        found = host_name(name)
        if found is None or "://" in name:
            raise ConfigError(f"--allowed-host {name!r}: give a host name such as gavekort.firma.dk (no http://, no path).")
        allowed.append(found)
    if host not in ("0.0.0.0", "::", ""):
        allowed.append(host_name(host) or host)
    if is_loopback(host):
        allowed += LOOPBACK_HOSTS
    if not allowed:
        raise ConfigError(f"--host {host} listens on every address, so the page cannot tell its own name from another web "
                          "site's: give --allowed-host NAME, the name (or address) people type in the browser, e.g. "
                          "--allowed-host gavekort.firma.dk (repeatable). Requests naming any other host are refused; "
                          "that stops DNS-rebinding attacks.")
    return tuple(dict.fromkeys(allowed))


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"Cannot listen on {host}:{port}: {exc.strerror}. Choose another --port (0 picks a free one).") from None
    sock.listen(128)
    return sock


def _serve(app: Any, sock: socket.socket) -> None:
    import uvicorn

    config = uvicorn.Config(app, log_level="info", access_log=True, proxy_headers=True, server_header=False,
                            timeout_graceful_shutdown=120, log_config=None)
    uvicorn.Server(config).run(sockets=[sock])


def _log_setup() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("flexybulk.web", "uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(logging.INFO)
        logger.propagate = False
