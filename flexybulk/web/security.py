"""The page's guard, as one ASGI middleware in front of every route.

In this order, per HTTP request (issue #14):

0. **Only the page's own host names are answered** (DNS rebinding): a
   request whose ``Host`` (or ``X-Forwarded-Host``) names another host answers
   400 before anything else. A web site whose name an attacker re-points to
   127.0.0.1 (or to the team server) is then a different host, never "this
   page", even though the browser thinks it is talking to that site. Local
   mode answers only as 127.0.0.1, localhost and [::1]; team mode only as the
   names given with ``--allowed-host`` (default: ``--host``).
1. **Cross-site requests are refused**: a request that can change anything
   (any method but GET, HEAD, OPTIONS) whose ``Sec-Fetch-Site`` says it comes
   from another site, or whose ``Origin`` is not this server's own, answers 403
   before any route runs (the OWASP "verify origin with standard headers"
   defence; the session cookie is also ``SameSite=Strict``).
2. **Bodies are size-limited before they are read**: a declared
   ``Content-Length`` over the limit answers 413 at once, without reading a
   byte of the body; a body without a length is counted as it arrives and cut
   off at the limit.
3. **A user is needed** in team mode: without one, a page (GET) redirects to
   the login and anything else answers 401.
4. Every answer carries the security headers (a strict Content-Security-Policy:
   scripts and styles from this server only; no framing; no referrer to other sites; pages
   not cached). The referrer policy is ``same-origin``: with ``no-referrer`` a browser sends ``Origin: null``
   on a form post, which would look cross-site.
"""

from __future__ import annotations

import logging
from http.cookies import SimpleCookie
from typing import Any, Awaitable, Callable
from urllib.parse import quote, urlsplit

from .auth import Auth

log = logging.getLogger("flexybulk.web")

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
"""The names the page answers to in local mode (``[::1]`` is written ``::1`` here, as :func:`host_name` gives it)."""

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
OPEN_PATHS = ("/login", "/static/", "/lang/", "/healthz")

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


class BodyTooLarge(Exception):
    """A body without a declared length grew past the limit while it was read.

    Raised inside the app's ``receive``; the app answers it with :func:`too_large` (a handler Starlette's
    exception middleware runs before its error middleware could turn it into a 500).
    """

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit

    @property
    def text(self) -> str:
        return f"Refused: the file is larger than the limit of {megabytes(self.limit - FORM_ROOM)}. Split it into smaller files."


FORM_ROOM = 64 * 1024  # bytes a request body may hold beyond the file: the form around it


def megabytes(n: int) -> str:
    """``52428800`` -> ``"50.0 MB"``: sizes in the words the upload page uses (MiB, one decimal)."""
    return f"{n / (1024 * 1024):,.1f} MB"


async def too_large(request: Any, exc: Exception) -> Any:
    """The 413 answer to :class:`BodyTooLarge` (the same plain words as a declared length over the limit)."""
    from starlette.responses import PlainTextResponse

    text = exc.text if isinstance(exc, BodyTooLarge) else "Refused: the upload is too large."
    return PlainTextResponse(text, status_code=413, headers={"connection": "close"})


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _cookies(headers: dict[str, str]) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:  # a malformed cookie header: no cookies, like a browser that sent none
        return {}
    return {k: m.value for k, m in jar.items()}


def host_name(value: str) -> str | None:
    """The host name of a ``Host`` header or an ``--allowed-host`` value, lower case, without port or brackets.

    ``"Example.COM:8770"`` -> ``"example.com"``, ``"[::1]:80"`` -> ``"::1"``;
    ``None`` when the value is empty or not a host (a path, user info, a bad port).
    """
    value = (value or "").strip()
    if not value or any(c in value for c in "/?#@\\ \t"):
        return None
    if value.count(":") > 1 and not value.startswith("["):
        value = f"[{value}]"  # a bare IPv6 address (an --allowed-host, or LOOPBACK_HOSTS' ::1)
    try:
        parts = urlsplit("//" + value)
        parts.port  # a bad port raises ValueError
    except ValueError:
        return None
    return parts.hostname or None


def same_origin(headers: dict[str, str], scheme: str) -> bool:
    """True unless the browser says the request comes from another site (``Sec-Fetch-Site``, ``Origin``).

    A request with neither header (a script, curl) carries no browser's
    cookies by accident, so it is not a cross-site forgery.
    """
    site = headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = headers.get("origin")
    if origin is not None:
        if origin == "null":
            return False
        parts = urlsplit(origin)
        host = headers.get("x-forwarded-host") or headers.get("host", "")
        return parts.netloc.lower() == host.lower() and parts.scheme in ("http", "https")
    return True


class Guard:
    """The ASGI middleware (see the module docstring).

    Args:
        app: the Starlette app. auth: who is who. max_body: bytes per request body.
        allowed_hosts: the host names answered (as :func:`host_name` gives them); default: loopback only.
    """

    def __init__(self, app: Any, *, auth: Auth, max_body: int, allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS) -> None:
        self.app, self.auth, self.max_body = app, auth, max_body
        self.allowed_hosts = frozenset(h for h in (host_name(a) for a in allowed_hosts) if h)

    def refused_host(self, headers: dict[str, str]) -> str | None:
        """The host a request names that this page does not answer to, else ``None``.

        A request without a ``Host`` (HTTP/1.0, an ASGI test) names no host: a browser always sends one, so
        no rebound page can leave it out.
        """
        for key in ("host", "x-forwarded-host"):
            if key not in headers:
                continue
            for value in headers.get(key, "").split(","):  # a chain of proxies: every name must be ours
                name = host_name(value)
                if name is None or name not in self.allowed_hosts:
                    return value.strip()
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        method, path = scope["method"], scope["path"]
        send = self._with_security_headers(send, path)
        wrong = self.refused_host(headers)
        if wrong is not None:
            log.warning("refused a request for host %r (%s %s): not one of %s", wrong[:80], method, path[:80],
                        ", ".join(sorted(self.allowed_hosts)))
            await _plain(send, 400, f"Refused: this page does not answer to the host name '{wrong[:80]}'. Open it by its "
                         "own address (the one flexybulk web printed, or the one IT gave you).", close=True)
            return
        if method not in SAFE_METHODS and not same_origin(headers, scope.get("scheme", "http")):
            await _plain(send, 403, "Refused: this request comes from another site.")
            return
        length = headers.get("content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await _plain(send, 400, "Bad Content-Length.")
                return
            if declared > self.max_body:
                # Answered before reading a byte of the body (issue #14: "size-limited before they are read").
                # In the page's own words and units (a fresh user's find: bytes here, "50 MB" everywhere else).
                await _plain(send, 413, f"Refused: the file is too large: {megabytes(declared)}. The limit is "
                             f"{megabytes(self.max_body - FORM_ROOM)}. Split it into smaller files.", close=True)
                return
        user = self.auth.user_of(headers, _cookies(headers))
        scope.setdefault("state", {})["user"] = user
        if user is None and not path.startswith(OPEN_PATHS):
            if method == "GET" and "hx-request" not in headers:
                target = path + ("?" + scope["query_string"].decode("latin-1") if scope.get("query_string") else "")
                await _redirect(send, "/login?next=" + quote(target, safe=""))
            else:
                await _plain(send, 401, "Log in first.", extra=[(b"hx-redirect", b"/login")])
            return

        received = 0
        started = False

        async def counted_receive() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise BodyTooLarge(self.max_body)
            return message

        async def tracked_send(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge as exc:  # an app without the too_large handler
            if not started:
                await _plain(send, 413, exc.text, close=True)

    def _with_security_headers(self, send: Send, path: str) -> Send:
        static = path.startswith("/static/")

        async def wrapped(message: dict) -> None:
            if message["type"] == "http.response.start":
                extra = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
                         (b"referrer-policy", b"same-origin"), (b"x-frame-options", b"DENY"),
                         (b"cross-origin-opener-policy", b"same-origin")]
                if not static:
                    extra.append((b"cache-control", b"no-store"))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        return wrapped


async def _plain(send: Send, status: int, text: str, *, close: bool = False, extra: list | None = None) -> None:
    body = text.encode("utf-8")
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": body})


async def _redirect(send: Send, location: str) -> None:
    await send({"type": "http.response.start", "status": 303,
                "headers": [(b"location", location.encode("latin-1")), (b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})
