"""The sandbox's HTTP side: routing, auth, JSON, faults, and the :class:`Sandbox` lifecycle.

One ``ThreadingHTTPServer`` serves the paths of all three Flexybox hosts
(CRM, POS, general API) on one loopback port; the path prefixes do not
collide (``flexybox-api.md`` part B). HTTP/1.1 with keep-alive, as the real
hosts; every answer carries ``Content-Length``.

Order of work for an API request: read the whole body (so the connection
stays in step), decide the fault (:mod:`.faults`), sleep the latency, answer
a 5xx/429/refusal fault without doing anything, else check the token, route, parse
the JSON and run the :class:`~.state.SandboxState` operation; a dropped
response is decided like any fault, but only after the work is done.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import unquote, urlsplit

import simplejson

from .faults import FaultInjector, FaultKind, Faults
from .state import Refusal, SandboxState

log = logging.getLogger(__name__)

DEFAULT_TOKEN = "sandbox-token"
"""The bearer token a :class:`Sandbox` accepts unless given another."""

CONTROL_PREFIX = "/_sandbox/"
"""Paths under this prefix belong to the sandbox itself: never faulted, never logged."""

_MAX_BODY = 1_000_000  # bytes; far above any real call, small enough to refuse junk
_IDLE_TIMEOUT = 30  # seconds an idle keep-alive connection keeps its thread
_POLL_INTERVAL = 0.02  # seconds; how soon serve_forever notices stop()


@dataclass
class _Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    close: bool = False  # close the connection after answering (body left unread)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> _Reply:
    return _Reply(status, {"Message": message}, headers or {})


# -- routes -----------------------------------------------------------------
# Each handler gets (sandbox, path match, parsed JSON body or None, base URL)
# and returns (status, body); state operations raise Refusal.

_Route = Callable[["Sandbox", "re.Match[str]", Any, str], tuple[int, Any]]


def _put_customer(sandbox: Sandbox, match: re.Match[str], body: Any, base_url: str) -> tuple[int, Any]:
    return sandbox.state.put_customer(unquote(match[1]), body)


def _get_types(sandbox: Sandbox, match: re.Match[str], body: Any, base_url: str) -> tuple[int, Any]:
    # The OData envelope part A expects from the /odata/ endpoint.
    context = f"{base_url}/api/v1/odata/$metadata#giftcertificatetypes"
    return 200, {"@odata.context": context, "value": sandbox.state.types}


def _get_departments(sandbox: Sandbox, match: re.Match[str], body: Any, base_url: str) -> tuple[int, Any]:
    # A bare list on purpose: the client must read both shapes (part A).
    return 200, sandbox.state.departments


def _put_order(sandbox: Sandbox, match: re.Match[str], body: Any, base_url: str) -> tuple[int, Any]:
    return sandbox.state.put_order(body)


def _commit(sandbox: Sandbox, match: re.Match[str], body: Any, base_url: str) -> tuple[int, Any]:
    return sandbox.state.commit_order(unquote(match[1]), body, conflict_on_repeat=sandbox.faults.commit_409_on_repeat)


def _get_state(sandbox: Sandbox, match: re.Match[str], body: Any, base_url: str) -> tuple[int, Any]:
    return 200, sandbox.state.snapshot()


_ROUTES: list[tuple[re.Pattern[str], dict[str, _Route]]] = [
    (re.compile(r"/api/v2/customers/([^/]+)"), {"PUT": _put_customer}),
    (re.compile(r"/api/v1/odata/giftcertificatetypes"), {"GET": _get_types}),
    (re.compile(r"/api/v2/departments"), {"GET": _get_departments}),
    (re.compile(r"/api/v1/salesorders"), {"PUT": _put_order}),
    (re.compile(r"/api/v1/salesorders/([^/]+)/commit"), {"POST": _commit}),
    (re.compile(r"/_sandbox/state"), {"GET": _get_state}),
]


def _injected_refusal(method: str) -> _Reply:
    """The 400 of a refusal fault: worded as a validation rule of the real service, naming a field."""
    if method == "POST":  # the commit (faults.REFUSABLE)
        field_name = "Payments[0].ExternalPayment.Type"
        message = ("The external payment type is not accepted for this sales order; nothing was committed "
                   "(a refusal injected by the sandbox's refuse_rate).")
    else:  # the sales order PUT
        field_name = "GiftCertificates.GiftCertificates[0].Price"
        message = ("The price is not accepted for this gift certificate type; the sales order was not saved "
                   "(a refusal injected by the sandbox's refuse_rate).")
    return _Reply(400, {"Message": message, "Field": field_name})


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _parse_json(data: bytes) -> Any:
    """The body as JSON, numbers with a fraction or exponent as ``Decimal`` (money is never float)."""
    try:
        return json.loads(data.decode("utf-8"), parse_float=Decimal, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as err:
        raise Refusal(400, f"The request body is not valid UTF-8 JSON: {err}") from None


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real hosts
    server_version = "FlexyboxSandbox/1"
    timeout = _IDLE_TIMEOUT
    # Buffered output: the status line, headers and body of an answer leave in
    # one write when handle_one_request (or finish) flushes, not one per part.
    wbufsize = 64 * 1024
    # Should an answer ever leave in two writes, Nagle would hold the second
    # back for the client's delayed ACK (~40 ms per call).
    disable_nagle_algorithm = True
    server: _Server

    def _handle(self) -> None:
        path = urlsplit(self.path).path
        data = self._read_body()
        if path.startswith(CONTROL_PREFIX):
            # The sandbox's own paths: never faulted, never logged.
            self._send(data if isinstance(data, _Reply) else self._answer(path, data))
            return
        if isinstance(data, _Reply):  # the body could not be read: answer and close
            reply, fault = data, FaultKind.NONE
        else:
            reply, fault = self._answer_with_faults(path, data)
        # Log before answering, so a client that has its answer also sees it logged.
        state = self.server.sandbox.state
        if fault is FaultKind.DROPPED:
            state.record_request(self.command, path, None)
            self.close_connection = True  # the work is done; the answer is never written
            return
        state.record_request(self.command, path, reply.status)
        self._send(reply)

    def _answer_with_faults(self, path: str, data: bytes) -> tuple[_Reply, FaultKind]:
        """The one place where faults apply: latency, then a 5xx/429 instead of the work, or the work."""
        # Read the injector once: `sandbox.faults = ...` may swap it meanwhile.
        injector = self.server.sandbox._injector
        fault = injector.decide(f"{self.command} {path}")
        if injector.faults.latency:
            time.sleep(injector.faults.latency)
        if fault in (FaultKind.ERROR_500, FaultKind.ERROR_503):
            status = 500 if fault is FaultKind.ERROR_500 else 503
            return _error(status, "Injected server error (sandbox fault); nothing was done."), fault
        if fault is FaultKind.RATE_LIMITED:
            seconds = str(injector.faults.retry_after)
            message = f"Too many requests; retry after {seconds} s (sandbox fault)."
            return _error(429, message, {"Retry-After": seconds}), fault
        if fault is FaultKind.REFUSED:
            # Only for an authorised call, as a real validation refusal would be.
            reply = _injected_refusal(self.command) if self._authorised() else self._answer(path, data)
            return reply, fault
        # FaultKind.DROPPED too: the work is done, the caller drops the answer.
        return self._answer(path, data), fault

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = do_OPTIONS = _handle

    def _read_body(self) -> bytes | _Reply:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return _Reply(411, {"Message": "Send the body with Content-Length, not chunked."}, close=True)
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            return b""
        try:
            length = int(length_text)
        except ValueError:
            length = -1
        if length < 0:
            return _Reply(400, {"Message": f"Bad Content-Length {length_text!r}."}, close=True)
        if length > _MAX_BODY:
            return _Reply(413, {"Message": f"The body is {length} bytes; the limit is {_MAX_BODY}."}, close=True)
        return self.rfile.read(length)

    def _authorised(self) -> bool:
        scheme, _, credentials = self.headers.get("Authorization", "").partition(" ")
        expected = self.server.sandbox.token.encode("utf-8")
        return scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode("utf-8"), expected)

    def _answer(self, path: str, data: bytes) -> _Reply:
        """Auth, routing, JSON and the state operation; never raises for a client's mistake."""
        if not self._authorised():
            message = "Missing or wrong bearer token: send 'Authorization: Bearer <token>'."
            return _error(401, message, {"WWW-Authenticate": "Bearer"})
        for pattern, methods in _ROUTES:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            handler = methods.get(self.command)
            if handler is None:
                allowed = ", ".join(methods)
                return _error(405, f"{self.command} is not allowed on {path}; use {allowed}.", {"Allow": allowed})
            try:
                body = self._json_body(data) if self.command in ("PUT", "POST") else None
                status, payload = handler(self.server.sandbox, match, body, self._base_url())
            except Refusal as refusal:
                return _Reply(refusal.status, refusal.body())
            return _Reply(status, payload)
        return _error(404, f"No such endpoint: {path}.")

    def _json_body(self, data: bytes) -> Any:
        media_type = self.headers.get("Content-Type", "").partition(";")[0].strip().lower()
        if media_type != "application/json":
            # As an ASP.NET API would: a body without the JSON media type is not read.
            raise Refusal(415, f"Content-Type must be application/json, not {media_type or 'missing'!r}.")
        return _parse_json(data)

    def _base_url(self) -> str:
        host = self.headers.get("Host")
        return f"http://{host}" if host else self.server.sandbox.url

    def _send(self, reply: _Reply) -> None:
        data = simplejson.dumps(reply.body, use_decimal=True, ensure_ascii=False).encode("utf-8")
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        # The base class writes to stderr; the sandbox itself prints nothing.
        log.debug("%s " + format, self.address_string(), *args)


class _Server(ThreadingHTTPServer):
    """A ThreadingHTTPServer that can cut its open keep-alive connections on stop."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _RequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut down every open connection, so no idle keep-alive thread answers after stop."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the client

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-answer is normal in fault tests; don't print tracebacks.
        log.debug("error while serving %s", client_address, exc_info=True)


class Sandbox:
    """A local emulator of the three Flexybox hosts, on one base URL.

    The constructor binds the listening socket, so :attr:`url` is known at
    once (``port=0`` picks a free port); :meth:`start` serves in a daemon
    thread, :meth:`serve_forever` in the calling thread. Release the port
    with :meth:`stop` or by using the sandbox as a context manager. A
    stopped sandbox cannot be started again.

    Args:
        token: the bearer token every request must carry (else 401).
        host, port: where to listen (IPv4).
        faults: the faults to inject (:class:`~.faults.Faults`); ``None`` for none.
        catalogue: replaces the built-in catalogue (``flexybox-api.md`` part D);
            shape ``{"types": [item, ...], "departments": [item, ...]}``.

    Attributes:
        token: the accepted bearer token.
        state: the :class:`~.state.SandboxState` to inspect in tests.

    Raises:
        ValueError: an empty token or a malformed catalogue.
        OSError: the address cannot be bound.
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | None = None,
        catalogue: dict[str, Any] | None = None,
    ) -> None:
        if not token:
            raise ValueError("Sandbox token must not be empty")
        self.token = token
        self.state = SandboxState(catalogue)
        self._injector = FaultInjector(faults)
        self._server = _Server((host, port), self)
        self._thread: threading.Thread | None = None
        self._serving = False  # serve_forever() runs, in our thread or the caller's

    @property
    def faults(self) -> Faults:
        """The faults in force. Setting it takes effect from the next request and
        restarts the random generator from the new ``seed``."""
        return self._injector.faults

    @faults.setter
    def faults(self, faults: Faults | None) -> None:
        self._injector = FaultInjector(faults)

    @property
    def url(self) -> str:
        """``"http://127.0.0.1:54321"``: the base URL for all three hosts, no trailing slash."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Sandbox:
        """Serve in a daemon thread and return ``self``.

        Raises:
            RuntimeError: the sandbox is already serving.
        """
        if self._serving:
            raise RuntimeError("This sandbox is already running")
        self._serving = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            args=(_POLL_INTERVAL,),
            name=f"sandbox {self.url}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, cut open connections and release the port. Safe to call twice."""
        if self._serving:
            self._serving = False
            self._server.shutdown()  # waits for the serve_forever loop to end
        if self._thread is not None:
            self._thread.join()
        self._server.close_connections()
        self._server.server_close()

    def serve_forever(self) -> None:
        """Serve in the calling thread until Ctrl-C (or :meth:`stop` from another thread).

        Ctrl-C ends it cleanly: the port is released and the method returns
        normally, printing nothing (the CLI prints the URL and token).

        Raises:
            RuntimeError: the sandbox is already serving.
        """
        if self._serving:
            raise RuntimeError("This sandbox is already running")
        self._serving = True
        try:
            self._server.serve_forever(_POLL_INTERVAL)
        except KeyboardInterrupt:
            pass
        finally:
            self._serving = False
            self._server.close_connections()
            self._server.server_close()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
