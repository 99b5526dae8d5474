"""Faults on demand: latency, 5xx, 429, dropped responses and refusals (``flexybox-api.md`` part B).

:class:`Faults` says what to inject; :class:`FaultInjector` makes the
per-request decision, with a seeded ``random.Random`` so that a test or a
benchmark that sends its requests in a fixed order sees the same faults on
every run.

Two faults go beyond part B, so that what the vendor may plausibly do can be
rehearsed (issues #11 and #13): *refusals* (a share of sales order PUTs and
commits answered 400 naming a field, as a validation rule of the real service
would) and ``commit_409_on_repeat`` (a repeated commit answered 409 "already
committed" instead of being ignored as the vendor article says).
"""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass
from enum import Enum


class FaultKind(str, Enum):
    """What happens to one request instead of (or after) its normal answer."""

    NONE = "none"  # answered normally
    ERROR_500 = "500"  # answered 500 Internal Server Error; no work done
    ERROR_503 = "503"  # answered 503 Service Unavailable; no work done
    RATE_LIMITED = "429"  # answered 429 with Retry-After; no work done
    DROPPED = "dropped"  # work done, then the connection closed without any answer
    REFUSED = "refused"  # answered 400 naming a field; no work done (sales order PUTs and commits only)


REFUSABLE = re.compile(r"^(?:PUT /api/v1/salesorders|POST /api/v1/salesorders/[^/]+/commit)$")
"""The calls a refusal fault may hit (``"METHOD /path"``): the sales order PUT and the commit."""


_SHARES = ("error_rate", "rate_limit_rate", "drop_rate", "refuse_rate")  # the mutually exclusive shares, in draw order


@dataclass(frozen=True)
class Faults:
    """The faults the sandbox injects into API calls (never into ``/_sandbox/state``).

    Shares are probabilities per request, from 0.0 to 1.0; the four shares
    are mutually exclusive outcomes, so their sum must not exceed 1.0.

    Attributes:
        latency: seconds slept in the request's own thread before answering
            every API call, so concurrent calls overlap as on a real server.
        error_rate: share of calls answered 500 or 503 (half each) without
            doing the work.
        rate_limit_rate: share of calls answered 429 with ``Retry-After:
            <retry_after>`` without doing the work.
        drop_rate: share of calls whose work *is* done (state changed) but
            whose connection is closed without any response: the client sees
            a connection error and cannot know the outcome. This is the case
            that makes blind retries with new ids dangerous.
        refuse_rate: share of calls answered ``400`` with a JSON body naming
            a field (``{"Message": ..., "Field": ...}``), as a validation rule
            of the real service would, without doing the work. Only sales
            order PUTs and commits (:data:`REFUSABLE`) are refused; the draw
            is taken for every call all the same, and any other call that
            draws a refusal is answered normally. A refusal is decided before
            the work, like a 5xx, so it can also hit the repeat of a commit
            whose first answer was lost.
        commit_409_on_repeat: when true, a repeated commit of an already
            committed order with the same payment id is answered ``409``
            ``"Sales order <id> is already committed."`` (nothing new issued)
            instead of the documented 200 with the committed order. With
            ``drop_rate`` on commits (``only=r"^POST .*/commit$"``) this is a
            vendor that loses a commit's answer and then refuses the
            client's safe retry (issue #11).
        retry_after: whole seconds sent in ``Retry-After`` with a 429.
        seed: seed of the ``random.Random`` that decides; ``None`` for an
            unseeded (non-repeatable) generator.
        only: a regular expression; when set, the 5xx/429/drop/refusal faults hit only
            calls whose ``"METHOD /path"`` it matches (``re.search``), e.g.
            ``r"^POST .*/commit$"`` to lose only commit answers. Latency applies
            to every call either way.

    Raises:
        ValueError: a share outside 0..1, shares summing to more than 1,
            a negative latency, a negative ``retry_after`` or a
            ``commit_409_on_repeat`` that is not a ``bool``.
    """

    latency: float = 0.0
    error_rate: float = 0.0
    rate_limit_rate: float = 0.0
    drop_rate: float = 0.0
    refuse_rate: float = 0.0
    commit_409_on_repeat: bool = False
    retry_after: int = 1
    seed: int | None = None
    only: str | None = None

    def __post_init__(self) -> None:
        for name in _SHARES:
            share = getattr(self, name)
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"Faults.{name} must be between 0.0 and 1.0, not {share!r}")
        if sum(getattr(self, name) for name in _SHARES) > 1.0:
            raise ValueError(f"Faults: {' + '.join(_SHARES)} must not exceed 1.0")
        if not isinstance(self.commit_409_on_repeat, bool):
            raise ValueError(f"Faults.commit_409_on_repeat must be True or False, not {self.commit_409_on_repeat!r}")
        if self.latency < 0:
            raise ValueError(f"Faults.latency must be >= 0 seconds, not {self.latency!r}")
        if not isinstance(self.retry_after, int) or self.retry_after < 0:
            raise ValueError(f"Faults.retry_after must be a whole number of seconds >= 0, not {self.retry_after!r}")
        if self.only is not None:
            re.compile(self.only)  # a bad pattern fails here, not inside a request thread


def decide(faults: Faults, rng: random.Random) -> FaultKind:
    """The fault for one request: one draw from ``rng`` against ``faults``' shares.

    Exactly one draw per request, whatever the outcome, so the sequence of
    decisions depends only on the seed and the number of requests.
    """
    draw = rng.random()
    if draw < faults.error_rate:
        # The lower half of the error band is 500, the upper half 503.
        return FaultKind.ERROR_500 if draw < faults.error_rate / 2 else FaultKind.ERROR_503
    draw -= faults.error_rate
    if draw < faults.rate_limit_rate:
        return FaultKind.RATE_LIMITED
    draw -= faults.rate_limit_rate
    if draw < faults.drop_rate:
        return FaultKind.DROPPED
    draw -= faults.drop_rate
    # Last, so that adding refusals leaves the other faults of a seed where they were.
    if draw < faults.refuse_rate:
        return FaultKind.REFUSED
    return FaultKind.NONE


class FaultInjector:
    """A :class:`Faults` plus its random generator, shared by all request threads.

    The decision is taken under a lock, so concurrent requests each consume
    exactly one draw; with concurrency the order of draws follows the order
    in which requests arrive.
    """

    def __init__(self, faults: Faults | None = None) -> None:
        self.faults = faults if faults is not None else Faults()
        self._rng = random.Random(self.faults.seed)
        self._lock = threading.Lock()

    def decide(self, call: str = "") -> FaultKind:
        """The fault for the next API request; ``call`` is ``"METHOD /path"`` (for ``Faults.only``)."""
        with self._lock:
            kind = decide(self.faults, self._rng)  # always one draw, so the sequence stays repeatable
        if self.faults.only is not None and not re.search(self.faults.only, call):
            return FaultKind.NONE
        if kind is FaultKind.REFUSED and not REFUSABLE.match(call):
            return FaultKind.NONE
        return kind
