"""Faults on demand: latency, 5xx, 429 and dropped responses (``flexybox-api.md`` part B).

:class:`Faults` says what to inject; :class:`FaultInjector` makes the
per-request decision, with a seeded ``random.Random`` so that a test or a
benchmark that sends its requests in a fixed order sees the same faults on
every run.
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


@dataclass(frozen=True)
class Faults:
    """The faults the sandbox injects into API calls (never into ``/_sandbox/state``).

    Shares are probabilities per request, from 0.0 to 1.0; the three shares
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
        retry_after: whole seconds sent in ``Retry-After`` with a 429.
        seed: seed of the ``random.Random`` that decides; ``None`` for an
            unseeded (non-repeatable) generator.
        only: a regular expression; when set, the 5xx/429/drop faults hit only
            calls whose ``"METHOD /path"`` it matches (``re.search``), e.g.
            ``r"^POST .*/commit$"`` to lose only commit answers. Latency applies
            to every call either way.

    Raises:
        ValueError: a share outside 0..1, shares summing to more than 1,
            a negative latency or a negative ``retry_after``.
    """

    latency: float = 0.0
    error_rate: float = 0.0
    rate_limit_rate: float = 0.0
    drop_rate: float = 0.0
    retry_after: int = 1
    seed: int | None = None
    only: str | None = None

    def __post_init__(self) -> None:
        for name in ("error_rate", "rate_limit_rate", "drop_rate"):
            share = getattr(self, name)
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"Faults.{name} must be between 0.0 and 1.0, not {share!r}")
        if self.error_rate + self.rate_limit_rate + self.drop_rate > 1.0:
            raise ValueError("Faults: error_rate + rate_limit_rate + drop_rate must not exceed 1.0")
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
        return kind
