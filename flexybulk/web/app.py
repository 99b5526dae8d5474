"""The web application: its settings, the shared context of the views, page rendering, and the routes.

:func:`create_app` builds a Starlette app around one :class:`Web` context:
the target (the sandbox or a real Flexybox, its token kept on the server),
the ledger, the uploads store, the issuing queue and who-is-who. The views
live in :mod:`.views_sheet` (upload, check, fix) and :mod:`.views_batch`
(confirm, progress, result, history); login and the language switch are
here. Nothing here or there decides about money: the views call
:mod:`flexybulk.batches` and render what it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import re
import tempfile
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from markupsafe import Markup, escape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .. import __version__, batches
from ..target import Target
from ..validate import DEFAULT_CURRENCY, format_money
from . import i18n
from .auth import SESSION_COOKIE, Auth, LoginLocked, User
from .jobs import Issuer
from .security import FORM_ROOM, LOOPBACK_HOSTS, BodyTooLarge, Guard, too_large
from .store import Upload, UploadStore
from ..wording import page_words

log = logging.getLogger("flexybulk.web")
HERE = Path(__file__).parent
MIB = 1024 * 1024


@dataclass
class WebConfig:
    """How the page runs.

    Attributes:
        data_dir: uploads, their fixes and their sheets (owner-only).
        ledger: the ledger file (the target's default unless given).
        max_file_size: bytes per upload; the same limit as the command line's ``--max-file-size``.
        max_rows: rows per sheet (the command line's ``--max-rows``).
        keep_hours: uploads older than this are deleted.
        approval_above: in team mode, a batch whose total in any currency is above this needs an approver.
        team: team mode (a login is needed).
        secure_cookies: send cookies with ``Secure`` (behind an HTTPS reverse proxy).
        new_ledger: create ``ledger`` if it does not exist (as the command line's ``--new-ledger``);
            without it a named ledger that does not exist is refused at start.
        allowed_hosts: the host names the page answers to (``Host`` header); any other is refused
            (DNS rebinding, :mod:`.security`). Local mode: the loopback names.
    """

    data_dir: Path
    ledger: Path
    max_file_size: int = 50 * MIB
    max_rows: int = 100_000
    keep_hours: float = 7 * 24
    approval_above: Decimal | None = None
    team: bool = False
    secure_cookies: bool = False
    new_ledger: bool = False
    page_size: int = 50
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS


@dataclass
class Web:
    """What every view needs, built once per server."""

    config: WebConfig
    target: Target
    auth: Auth
    store: UploadStore
    issuer: Issuer
    env: jinja2.Environment
    checks: dict[str, tuple[str, Any, float]] = field(default_factory=dict)
    checks_lock: threading.Lock = field(default_factory=threading.Lock)

    def redact(self, text: str) -> str:
        """``text`` without the token (it never reaches a page or a log)."""
        token = self.target.settings.token.reveal()
        return text.replace(token, "***") if token and len(token) >= 8 else text

    def read_request(self, upload: Upload) -> batches.ReadRequest:
        r = upload.request or {}
        return batches.ReadRequest(sheet=r.get("sheet"), columns=dict(r.get("columns") or {}), department=r.get("department"),
                                   max_file_size=self.config.max_file_size, max_rows=self.config.max_rows,
                                   include_hidden=bool(r.get("include_hidden")), encoding=r.get("encoding") or None)

    def needs_approval(self, amounts: dict[str, Decimal]) -> bool:
        """Team mode and any currency's total above the approval amount."""
        limit = self.config.approval_above
        return self.config.team and limit is not None and any(v > limit for v in amounts.values())


def web_of(request: Request) -> Web:
    return request.app.state.web


def user_of(request: Request) -> User:
    return request.scope["state"]["user"]


def lang_of(request: Request) -> str:
    return i18n.choose(request.cookies.get(i18n.LANG_COOKIE), request.headers.get("accept-language"))


def number(value: Decimal | int, lang: str = "en", places: int | None = None) -> str:
    """A number as the page's language writes it: ``50,000`` / ``1,234.50`` in English, ``50.000`` / ``1.234,50``
    in Danish. ``places`` fixes the decimals (money: 2); else an ``int`` has none."""
    text = format_money(Decimal(value)) if places == 2 else f"{value:,}"
    if lang == "da":
        text = text.translate(str.maketrans(",.", ".,"))
    return text


def money(amounts: dict[str, Decimal], lang: str = "en") -> str:
    """``"10,399.85 DKK"`` (``"10.399,85 DKK"`` on Danish pages); several currencies joined with `` + ``; none is
    ``"0.00 DKK"``, in the currency a row without one is issued in (as the library's ``Totals.money``)."""
    if not amounts:
        amounts = {DEFAULT_CURRENCY: Decimal(0)}
    return " + ".join(f"{number(v, lang, 2)} {c}" for c, v in sorted(amounts.items()))


_BREAK_AFTER = re.compile(r"([@_/-])")


def breakable(value: Any) -> Markup:
    """A cell's text, escaped, with line-break chances after ``@ _ / -`` in long words: an email address
    wraps after its ``@`` (``anna.hansen@`` / ``example.com``) instead of widening its column or breaking anywhere."""
    words = str(value).split(" ")
    return Markup(" ").join(Markup("<wbr>").join(escape(p) for p in _BREAK_AFTER.sub("\\1\0", w).split("\0"))
                            if len(w) > 12 else escape(w) for w in words)


def empty_columns(rows: list[dict]) -> set[str]:
    """The headers whose cells are all empty in ``rows`` (the grid's rows): shown narrow."""
    if not rows:
        return set()
    return {c["header"] for c in rows[0]["cells"]} - {c["header"] for r in rows for c in r["cells"] if c["value"] or c["problems"]}


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Render a template with the page's common context (language, user, target in words)."""
    web = web_of(request)
    lang = lang_of(request)
    page = web.env.get_template(name).render(
        request=request, t=i18n.translator(lang), lang=lang, user=user_of(request), team=web.config.team,
        target=web.target, target_host=urlsplit(web.target.settings.pos_url).netloc,
        money=lambda amounts: money(amounts, lang), format_money=lambda v: number(v, lang, 2),
        n=lambda v: number(v, lang), grid_empty=empty_columns, version=__version__, **context)
    return HTMLResponse(web.redact(page), status_code=status)


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def local_next(value: str | None) -> str:
    """A redirect target that stays on this server (a path), else ``/``."""
    if not value:
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith("//"):
        return "/"
    return value


def deny(request: Request, why: str, status: int = 403) -> HTMLResponse:
    t = i18n.translator(lang_of(request))
    return render(request, "message.html", status=status, title=t("error"), message=t("not_allowed", why=why))


def change_refused(user: User, upload: Any, team: bool) -> str | None:
    """Why ``user`` may not upload, fix, confirm, retry or resume ``upload`` (``None``: they may).

    The README's roles (issue #14): an ``uploader`` uploads, checks, fixes and
    confirms their own uploads; an ``approver`` sees everyone's and approves
    other people's batches, but changes or starts nothing; an ``admin`` may do
    everything. Local mode has one person with every role.
    ``upload`` ``None`` asks about a new upload.
    """
    if not team or user.can("admin"):
        return None
    if not user.can("uploader"):
        return "need_uploader"
    if upload is not None and upload.user != user.name:
        return "not_own"
    return None


def refuse_change(request: Request, upload: Any) -> HTMLResponse | None:
    """A 403 page when the request's user may not change ``upload`` (see :func:`change_refused`), else ``None``."""
    why = change_refused(user_of(request), upload, web_of(request).config.team)
    if why is None:
        return None
    t = i18n.translator(lang_of(request))
    return deny(request, t(why, owner=upload.user if upload is not None else ""))


# -- login, logout, language ---------------------------------------------------------------


async def login_page(request: Request) -> Response:
    web = web_of(request)
    if not web.config.team:
        return RedirectResponse("/", status_code=303)
    if request.method == "POST":
        form = await request.form(max_files=0, max_fields=5)
        client = request.client.host if request.client else ""
        try:
            token = web.auth.login(str(form.get("user", "")), str(form.get("password", "")), client)
        except LoginLocked as locked:
            seconds = math.ceil(locked.seconds)
            log.warning("login braked for %r from %s: %d s", str(form.get("user", ""))[:60], client, seconds)
            page = render(request, "login.html", status=429, failed=False, locked=seconds,
                          next=local_next(str(form.get("next", "/"))))
            page.headers["retry-after"] = str(seconds)
            return page
        if token:
            log.info("login: %s", form.get("user"))
            response = RedirectResponse(local_next(str(form.get("next", "/"))), status_code=303)
            response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", secure=web.config.secure_cookies,
                                path="/")
            return response
        log.warning("login refused for %r", str(form.get("user", ""))[:60])
        return render(request, "login.html", status=401, failed=True, locked=None,
                      next=local_next(str(form.get("next", "/"))))
    return render(request, "login.html", failed=False, locked=None, next=local_next(request.query_params.get("next")))


async def logout(request: Request) -> Response:
    web_of(request).auth.logout(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login" if web_of(request).config.team else "/", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


async def set_language(request: Request) -> Response:
    lang = request.path_params["lang"]
    response = RedirectResponse(local_next(request.query_params.get("next")), status_code=303)
    if lang in i18n.LANGUAGES:
        response.set_cookie(i18n.LANG_COOKIE, lang, max_age=365 * 24 * 3600, httponly=True, samesite="lax",
                            secure=web_of(request).config.secure_cookies, path="/")
    return response


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


def shutdown_summary(app: Any) -> str:
    """What the server says as it ends (Ctrl-C, SIGTERM): the batch it stopped, with the ledger's counts, and the
    batches still queued. ``app`` is what :func:`create_app` returned (its worker has shut down)."""
    web: Web = app.app.state.web
    lines = []
    upload = web.store.get(web.issuer.stopped) if web.issuer.stopped else None
    if upload is not None and upload.batch_id:
        counts = batches.batch_progress(web.config.ledger, upload.batch_id).counts
        issued, waiting = counts.get("ISSUED", 0), counts.get("PENDING", 0)
        doubt = counts.get("UNKNOWN", 0) + counts.get("FAILED", 0)
        lines.append(f"Stopped: batch {upload.batch_id} ({upload.filename}) was stopped cleanly: {issued:,} rows issued, "
                     f"{waiting:,} waiting (PENDING)" + (f", {doubt:,} needing attention" if doubt else "")
                     + ". Its result sheet is written; start the page again and press Resume to finish it with the same ids.")
    elif upload is not None:
        lines.append(f"Stopped before {upload.filename} started issuing: nothing was issued for it; confirm it again when "
                     "the page is back.")
    for uid in web.issuer.waiting:
        queued = web.store.get(uid)
        if queued is not None:
            lines.append(f"Not started: {queued.filename} was waiting in the queue; press Resume on it when the page is back.")
    return "\n".join(lines) or "Stopped: no batch was running; nothing was left unfinished."


def create_app(config: WebConfig, target: Target, auth: Auth) -> Starlette:
    """The Starlette app for ``target`` (see the module docstring); the issuing worker starts at once.

    Leftover uploads that were queued or running when a server stopped are
    marked interrupted (Resume continues them), and expired uploads are deleted.

    Raises:
        LedgerMissing: ``config.ledger`` was named, does not exist, and ``config.new_ledger`` is false.
    """
    from . import views_batch, views_sheet

    # The ledger is opened (and created, when that is allowed) now, so a mistyped path stops the server at once.
    batches.open_ledger(target, config.ledger, new_ledger=config.new_ledger or config.ledger == target.ledger_default
                        and not target.ledger_named).close()
    data_dir = Path(config.data_dir)
    store = UploadStore(data_dir)
    # Form parsing spools big uploads to temporary files: keep those in the data folder too, owner-only.
    spool = data_dir / "tmp"
    spool.mkdir(mode=0o700, exist_ok=True)
    os.chmod(spool, 0o700)
    tempfile.tempdir = str(spool)
    for upload in store.interrupted_on_start():
        log.info("upload %s (%s) was interrupted by a restart; Resume continues it", upload.id, upload.filename)
    store.expire(config.keep_hours * 3600)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(HERE / "templates")), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["words"] = jinja2.pass_context(lambda ctx, text: page_words(text, ctx.get("lang", "en")))  # every library message
    env.filters["breakable"] = breakable
    web = Web(config, target, auth, store, None, env)  # type: ignore[arg-type]
    web.issuer = Issuer(target, config.ledger, store, web.read_request, web.redact)
    routes = [
        Route("/", views_sheet.home),
        Route("/upload", views_sheet.upload, methods=["POST"]),
        Route("/template.xlsx", views_sheet.template),
        Route("/u/{uid}", views_sheet.check_page),
        Route("/u/{uid}/settings", views_sheet.settings, methods=["POST"]),
        Route("/u/{uid}/edit", views_sheet.editor),
        Route("/u/{uid}/fix", views_sheet.fix, methods=["POST"]),
        Route("/u/{uid}/validation.xlsx", views_sheet.validation_sheet),
        *views_batch.routes(),
        Route("/login", login_page, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/lang/{lang}", set_language),
        Route("/healthz", healthz),
        Mount("/static", app=StaticFiles(directory=str(HERE / "static")), name="static"),
    ]

    async def expire_hourly() -> None:
        while True:
            await asyncio.sleep(3600)
            gone = await asyncio.to_thread(store.expire, config.keep_hours * 3600)
            if gone:
                log.info("deleted %d uploads older than %s hours", len(gone), config.keep_hours)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        expiry = asyncio.get_running_loop().create_task(expire_hourly())
        yield
        expiry.cancel()
        # Ctrl-C or SIGTERM: the running batch stops taking rows; rows in flight finish; its result sheet is written.
        await asyncio.to_thread(web.issuer.shutdown)

    # A streamed body cut off at the limit: 413 in the guard's words, not the error middleware's 500.
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={BodyTooLarge: too_large})
    app.state.web = web
    # The guard's limit is the upload limit plus room for the form around the file.
    return Guard(app, auth=auth, max_body=config.max_file_size + FORM_ROOM,  # type: ignore[return-value]
                 allowed_hosts=config.allowed_hosts)
