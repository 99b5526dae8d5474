"""``FlexyboxClient``: the five calls of the vendor's gift certificate flow.

The only module that imports ``requests``. The flow, from the vendor's help
article (``shared/seed/000_804ffc5ff5288df9.txt``) as restated in
``shared/flexybox-api.md`` part A:

1. ``PUT  {crm}/api/v2/customers/{CustomerId}``      create or update the customer
2. ``GET  {pos}/api/v1/odata/giftcertificatetypes``  the gift certificate types
3. ``GET  {api}/api/v2/departments``                 the departments
4. ``PUT  {pos}/api/v1/salesorders``                 create the sales order (client-chosen GUID)
5. ``POST {pos}/api/v1/salesorders/{Id}/commit``     commit it with one external payment

Retries (issue #3): connection errors, timeouts, 429 (honouring
``Retry-After``) and 500/502/503/504 are retried with exponential back-off and
jitter (tenacity), up to ``Settings.max_attempts``; other 4xx never are.
Retrying a PUT is safe because the client chose the id in the URL or body.
Retrying the commit is safe **only** because the external payment id is fixed
before the first attempt: the vendor documents that a second post with the
same payment id is ignored. Never generate a new payment id inside a retry.

What a call's attempts tell is kept across them (issue #11): if any attempt
may have been carried out (its answer lost, a read timeout, a 5xx), the final
error says so (``ApiError.outcome_unknown``, and
``earlier_outcome_unknown`` when it was not the last attempt), whatever a
later attempt was answered. A commit whose answer was lost and whose retry
was refused "already committed" did happen; :func:`says_already_committed`
recognises that answer.

Money goes over the wire as exact JSON numbers from ``Decimal`` (simplejson's
``use_decimal``) and comes back as ``Decimal``: no float ever touches it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable

import requests
import simplejson
import tenacity
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError
from urllib3.util.retry import Retry

from .answers import certificate_numbers, parse_catalogue, says_already_committed, server_message
from .errors import ApiError, AuthError, ConflictError, NotFoundError
from .model import Catalogue, CatalogueItem
from .settings import Settings

# Read here, re-exported for callers of the client (the runner, the template, tests).
__all__ = ["CallRecord", "FlexyboxClient", "Throttle", "certificate_numbers", "parse_catalogue", "says_already_committed"]

USER_AGENT = "flexybulk/0.1 (+python-requests)"

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})

CUSTOMERS_PATH = "/api/v2/customers/{customer_id}"
TYPES_PATH = "/api/v1/odata/giftcertificatetypes"
DEPARTMENTS_PATH = "/api/v2/departments"
SALES_ORDERS_PATH = "/api/v1/salesorders"
COMMIT_PATH = "/api/v1/salesorders/{sales_order_id}/commit"


@dataclass(frozen=True)
class CallRecord:
    """One HTTP attempt, as reported to the ``on_call`` hook (the audit log).

    Attributes:
        method: ``"GET"``, ``"PUT"`` or ``"POST"``.
        path: the URL path (ids included; never the token, never a query).
        status: the HTTP status, or ``None`` when no response arrived.
        seconds: wall time of the attempt.
        attempt: 1 for the first attempt of a call, 2 for the first retry, ...
        error: a short description when the attempt failed, else ``None``.
        answer: the answer's body as received (at most :data:`ANSWER_KEPT` characters) when the attempt
            was refused (a 4xx other than 401, 403 and 429: a verdict on the request), else ``None``.
    """

    method: str
    path: str
    status: int | None
    seconds: float
    attempt: int
    error: str | None = None
    answer: str | None = None


ANSWER_KEPT = 2000
"""Characters of a refusal's body kept for the audit log: a validation message, not a page of HTML."""


class Throttle:
    """Shared pacing for all worker threads (issue #4).

    Two things: a token bucket capping calls per second across all workers
    (``rate``; ``None`` for no cap), and a shared pause: a 429 from the server
    makes *every* worker wait out the ``Retry-After``, not just the one that
    got it.
    """

    def __init__(self, rate: float | None = None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate = rate
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_slot = 0.0
        self._paused_until = 0.0

    def pause(self, seconds: float) -> None:
        """Hold every caller of :meth:`acquire` for ``seconds`` from now."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def acquire(self) -> None:
        """Block until this caller may send one request."""
        while True:
            with self._lock:
                now = self._clock()
                start = max(now, self._paused_until, self._next_slot if self.rate else now)
                if start <= now:
                    if self.rate:
                        self._next_slot = max(self._next_slot, now) + 1.0 / self.rate
                    return
                wait = start - now
            self._sleep(wait)


class _Retryable(ApiError):
    """An attempt that failed in a way worth retrying (internal); ``reason`` says how, in a few words."""

    def __init__(self, message: str, *, reason: str, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.reason = reason
        self.retry_after = retry_after


def _final_error(cls: type[ApiError], text: str, last: ApiError, tried: list[ApiError], notes: list[str]) -> ApiError:
    """The error a call ends with: the last attempt's status and message, and what every attempt tells.

    ``tried`` is every failed attempt of the call in order (``last`` is
    ``tried[-1]``). The call's outcome is unknown if *any* attempt's was: a
    refusal of a retry does not undo an earlier attempt that may have been
    carried out (issue #11). Only a call none of whose attempts left is "not sent".
    """
    earlier = [(number, e) for number, e in enumerate(tried[:-1], 1) if e.outcome_unknown]
    if earlier and not last.outcome_unknown:
        number, first = earlier[0]
        notes = [*notes, f"attempt {number} may have been carried out: {getattr(first, 'reason', first)}"]
    if notes:
        text += f" ({'; '.join(notes)})"
    return cls(text, status=last.status, server_message=last.server_message, method=last.method, url=last.url,
               outcome_unknown=last.outcome_unknown or bool(earlier), earlier_outcome_unknown=bool(earlier),
               not_sent=all(e.not_sent for e in tried), response_body=last.response_body)


class FlexyboxClient:
    """Talks to the three Flexybox hosts (or the sandbox) for one run.

    Thread-safe: each thread gets its own ``requests.Session`` (connection
    pools are per thread); pacing is shared through one :class:`Throttle`.

    Args:
        settings: URLs, token, timeouts (seconds), attempts, rate.
        on_call: called after every HTTP attempt with a :class:`CallRecord`
            (the audit log); must not raise.
        sleep: the sleep function for back-off (tests pass a fake).

    Every method raises :class:`~flexybulk.errors.ApiError` (or its
    subclasses ``AuthError`` for 401/403, ``NotFoundError`` for 404,
    ``ConflictError`` for 409) when the call fails for good; the error keeps
    the last attempt's status, message and answer, and whether any attempt's
    outcome is unknown (see the module docstring).
    """

    def __init__(self, settings: Settings, on_call: Callable[[CallRecord], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self.on_call = on_call
        self._sleep = sleep
        self.throttle = Throttle(settings.rate, sleep=sleep)
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()
        # Proxies, CA bundle and client certificate from the environment, per base URL (see _environment).
        self._env: dict[str, dict[str, Any]] = {}
        for base in {settings.crm_url, settings.pos_url, settings.api_url}:
            self._environment(base)

    # -- plumbing ---------------------------------------------------------

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            # Our own retry loop decides what is safe to repeat; urllib3 must not retry on its own.
            adapter = HTTPAdapter(pool_connections=3, pool_maxsize=4, max_retries=Retry(total=0, read=False, connect=0, status=0, redirect=0, raise_on_status=False))
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
            # The environment was resolved once in _environment and is passed with every call.
            session.trust_env = False
            self._local.session = session
            with self._sessions_lock:
                self._sessions.append(session)
        return session

    def _environment(self, base: str) -> dict[str, Any]:
        """``proxies``, ``verify`` and ``cert`` for calls to ``base``, from the environment, resolved once.

        requests reads the environment (``HTTPS_PROXY``/``NO_PROXY``,
        ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``, ``~/.netrc``) again on
        every call while a session's ``trust_env`` is on: about a fifth of the
        client's CPU per call in the issue #4 benchmark, which under many
        workers is the GIL's time. The environment does not change during a
        run, so it is read here once per base URL, exactly as requests would
        read it, and passed explicitly with ``trust_env`` off. (Off also
        means a ``~/.netrc`` entry can no longer replace the bearer token
        with Basic credentials.)
        """
        env = self._env.get(base)
        if env is None:
            with requests.Session() as probe:  # trust_env on: requests' own lookup, TLS verification on
                merged = probe.merge_environment_settings(base, {}, None, None, None)
            env = {"proxies": merged["proxies"], "verify": merged["verify"], "cert": merged["cert"]}
            self._env[base] = env
        return env

    def close(self) -> None:
        """Close every thread's connections."""
        with self._sessions_lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()

    def __enter__(self) -> "FlexyboxClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _record(self, record: CallRecord) -> None:
        if self.on_call is not None:
            self.on_call(record)

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        # Exponential back-off plus jitter, so workers that failed together do not retry together.
        backoff = (tenacity.wait_exponential(multiplier=self.settings.backoff, max=self.settings.max_backoff)
                   + tenacity.wait_random(0, self.settings.backoff))(state)
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            # The shared throttle already holds every worker for Retry-After; wait at least that long here too.
            return max(float(retry_after), min(backoff, self.settings.max_backoff))
        return backoff

    def _send_once(self, method: str, url: str, path: str, body: Any, attempt: int) -> Any:
        """One HTTP attempt. Returns the decoded JSON body, raises on failure."""
        self.throttle.acquire()
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json",
                   "Authorization": f"Bearer {self.settings.token.reveal()}"}
        data = None
        if body is not None:
            data = simplejson.dumps(body, use_decimal=True, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json; charset=utf-8"
        where = f"{method} {path}"
        session = self._session()
        started = time.monotonic()
        try:
            # Prepared here rather than by Session.request, and sent through the session's transport
            # adapter (requests' documented transport API) rather than Session.send: the session's
            # cookies, auth and hooks are empty, and merging, extracting and dispatching them costs CPU on
            # every call, which under many workers is the GIL's time (issue #4). Method, URL, headers and
            # body are prepared exactly as Session.request would; redirects are never followed either way.
            prepared = requests.PreparedRequest()
            prepared.prepare_method(method)
            prepared.prepare_url(url, None)
            prepared.prepare_headers(headers)
            prepared.prepare_body(data, None)
            resp = session.get_adapter(url).send(
                prepared, timeout=(self.settings.connect_timeout, self.settings.read_timeout),
                stream=False, **self._environment(url[: len(url) - len(path)]),
            )
        except requests.exceptions.ConnectTimeout:
            self._record(CallRecord(method, path, None, time.monotonic() - started, attempt, "connect timeout"))
            raise _Retryable(f"{where}: could not connect to {_host(url)} within {self.settings.connect_timeout:g} s. {_CHECK}",
                             reason="connect timeout", method=method, url=url, outcome_unknown=False, not_sent=True) from None
        except requests.exceptions.Timeout:
            self._record(CallRecord(method, path, None, time.monotonic() - started, attempt, "read timeout"))
            raise _Retryable(f"{where}: no answer within {self.settings.read_timeout:g} s.", reason=f"no answer within {self.settings.read_timeout:g} s",
                             method=method, url=url, outcome_unknown=True) from None
        except requests.exceptions.ConnectionError as exc:
            # Refused or unresolvable: the request never left. Anything else
            # (connection closed mid-answer) means the server may have done the work.
            never_sent = _caused_by(exc, NewConnectionError)
            reason = "could not connect" if never_sent else "the connection closed before an answer arrived"
            self._record(CallRecord(method, path, None, time.monotonic() - started, attempt, reason))
            text = f"{where}: could not connect to {_host(url)}. {_CHECK}" if never_sent else f"{where}: {reason}."
            raise _Retryable(text, reason=reason, method=method, url=url, outcome_unknown=not never_sent, not_sent=never_sent) from None
        except requests.exceptions.RequestException as exc:
            self._record(CallRecord(method, path, None, time.monotonic() - started, attempt, type(exc).__name__))
            raise ApiError(f"{where}: {type(exc).__name__}.", method=method, url=url, outcome_unknown=True) from None
        seconds = time.monotonic() - started
        status = resp.status_code
        try:
            payload = simplejson.loads(resp.text, use_decimal=True) if resp.content else None
        except (ValueError, simplejson.JSONDecodeError):
            payload = None
        if 200 <= status < 300:
            self._record(CallRecord(method, path, status, seconds, attempt))
            if resp.content and payload is None:
                raise ApiError(f"{where} answered {status} with a body that is not JSON.", status=status, method=method, url=url, outcome_unknown=True)
            return payload if payload is not None else {}
        message = server_message(payload, resp.text)
        refused = 400 <= status < 500 and status not in (401, 403, 429)
        self._record(CallRecord(method, path, status, seconds, attempt, message,
                                answer=resp.text[:ANSWER_KEPT] if refused else None))
        text = f"{where} answered {status} {resp.reason or ''}".rstrip()
        if message:
            text += f": {message}"
        kw = dict(status=status, server_message=message, method=method, url=url, response_body=payload)
        if status == 429:
            retry_after = _retry_after(resp.headers.get("Retry-After"))
            self.throttle.pause(retry_after if retry_after is not None else self.settings.backoff)
            raise _Retryable(text, reason="answered 429", retry_after=retry_after, outcome_unknown=False, **kw)
        if status in RETRYABLE_STATUSES:
            # A real server may have done the work before failing: assume it might have.
            raise _Retryable(text, reason=f"answered {status}", outcome_unknown=True, **kw)
        if status in (401, 403):
            raise AuthError(
                f"Flexybox refused the token ({status}) on {where}. Check FLEXYBOX_TOKEN "
                "(or --token-file) and that the token may create customers and sales orders.", **kw)
        if status == 404:
            raise NotFoundError(text, **kw)
        if status == 409:
            raise ConflictError(text, **kw)
        raise ApiError(text, **kw)

    def _call(self, method: str, base: str, path: str, body: Any = None) -> Any:
        url = base + path
        attempts = self.settings.max_attempts
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(attempts),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(_Retryable),
            sleep=self._sleep,
            reraise=True,
        )
        tried: list[ApiError] = []  # every failed attempt of this call, in order
        try:
            for attempt in retrying:
                with attempt:
                    try:
                        return self._send_once(method, url, path, body, attempt.retry_state.attempt_number)
                    except ApiError as exc:
                        tried.append(exc)
                        raise
        except _Retryable as exc:
            gave_up = f"gave up after {attempts} attempt{'s' if attempts != 1 else ''}"
            raise _final_error(ApiError, str(exc), exc, tried, [gave_up]) from None
        except ApiError as exc:
            if any(e.outcome_unknown for e in tried[:-1]):
                # A definite answer (a 409, say) to a retry, after an attempt that may have gone through.
                raise _final_error(type(exc), str(exc), exc, tried, []) from None
            raise
        raise AssertionError("unreachable")  # pragma: no cover

    # -- the vendor's calls ------------------------------------------------

    def get_gift_certificate_types(self) -> list[CatalogueItem]:
        """Step 2: ``GET {pos}/api/v1/odata/giftcertificatetypes`` -> the types (bare list or OData envelope)."""
        return parse_catalogue(self._call("GET", self.settings.pos_url, TYPES_PATH), "gift certificate type")

    def get_departments(self) -> list[CatalogueItem]:
        """Step 3: ``GET {api}/api/v2/departments`` -> the departments (bare list or OData envelope)."""
        return parse_catalogue(self._call("GET", self.settings.api_url, DEPARTMENTS_PATH), "department")

    def get_catalogue(self) -> Catalogue:
        """Both lists at once (two read-only GETs; nothing is created)."""
        return Catalogue(types=tuple(self.get_gift_certificate_types()), departments=tuple(self.get_departments()))

    def put_customer(self, customer_id: str, *, full_name: str, email: str, phone: str | None = None,
                     street_address: str | None = None, postal_code: str | None = None,
                     postal_district: str | None = None, country_code: str | None = "DK") -> dict:
        """Step 1: ``PUT {crm}/api/v2/customers/{customer_id}`` -> the server's answer (a dict, maybe empty).

        Creates the customer, or updates it when the id exists (the vendor:
        "used to both create and update the customer"), so a repeat is safe.
        The body has every field of the vendor's example, in its order.
        """
        body = {
            "FullName": full_name,
            "BirthDate": None,
            "Gender": None,
            "DepartmentId": None,
            "EmailAddress": email,
            "PhoneNumber": phone,
            "StreetAddress": street_address,
            "PostalDistrict": postal_district,
            "PostalCode": postal_code,
            "CountryCode": country_code,
        }
        return self._call("PUT", self.settings.crm_url, CUSTOMERS_PATH.format(customer_id=customer_id), body)

    @staticmethod
    def sales_order_body(sales_order_id: str, *, customer_id: str, department_id: Any, gift_certificate_type_id: Any,
                         quantity: int, price: Decimal, currency: str) -> dict:
        """The vendor's sales order body for one line of ``quantity`` certificates at ``price`` each."""
        return {
            "GiftDetails": None,
            "Id": sales_order_id,
            "GiftCertificates": {
                "GiftCertificates": [
                    {"GiftCertificateTypeId": gift_certificate_type_id, "Quantity": quantity, "Price": price, "Checksum": None}
                ]
            },
            "CustomerId": customer_id,
            "DepartmentId": department_id,
            "AcceptUri": None,
            "CancelUri": None,
            "RequireSubscription": False,
            "Currency": currency,
            "DebitMethod": "OnlinePayment",
        }

    def put_sales_order(self, body: dict) -> dict:
        """Step 4: ``PUT {pos}/api/v1/salesorders`` with a body from :meth:`sales_order_body`.

        The client-chosen ``Id`` makes a repeat safe (the same order again).
        """
        return self._call("PUT", self.settings.pos_url, SALES_ORDERS_PATH, body)

    def commit_sales_order(self, sales_order_id: str, *, payment_id: str, amount: Decimal,
                           payment_type: str = "Mastercard") -> dict:
        """Step 5: ``POST {pos}/api/v1/salesorders/{id}/commit`` with one external payment.

        ``amount`` must equal the order total (sum of quantity x price), in
        the order's currency. ``payment_id`` must be fixed before the first
        attempt: the vendor ignores a second post with the same payment id,
        which is what makes retrying this call safe.

        Returns the server's answer (the committed order; see
        :func:`certificate_numbers`).
        """
        body = {
            "Payments": [
                {
                    "AccountFlowId": None,
                    "OnlinePaymentKey": None,
                    "ExternalPayment": {"Id": payment_id, "Type": payment_type, "Amount": amount},
                }
            ]
        }
        return self._call("POST", self.settings.pos_url, COMMIT_PATH.format(sales_order_id=sales_order_id), body)


_CHECK = "Check the network and the base URLs (FLEXYBOX_CRM_URL, FLEXYBOX_POS_URL, FLEXYBOX_API_URL)."


def _host(url: str) -> str:
    """``https://pos.flexybox.com/api/...`` -> ``pos.flexybox.com`` (with a port if there is one)."""
    from urllib.parse import urlsplit

    return urlsplit(url).netloc or url


def _caused_by(exc: BaseException, kind: type) -> bool:
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, kind):
            return True
        stack.extend([getattr(e, "__cause__", None), getattr(e, "__context__", None), getattr(e, "reason", None)])
        stack.extend(a for a in getattr(e, "args", ()) if isinstance(a, BaseException))
    return False


_RETRY_AFTER_PARSER = Retry(total=0)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delay-seconds or HTTP-date, RFC 9110 10.2.3), via urllib3."""
    if not value:
        return None
    try:
        return max(0.0, float(_RETRY_AFTER_PARSER.parse_retry_after(value)))
    except Exception:  # urllib3 raises InvalidHeader for garbage; treat as absent
        return None
