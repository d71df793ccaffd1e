"""When a call is sent again, and how long the client waits before it (as the Rust client's
``client/src/retry.rs``).

A call is retried only when sending it twice cannot do anything twice (:class:`Safety`); only on
the answers that say "try later" (429, 502, 503, 504) or on a connection that failed; at most
:attr:`Retry.attempts` times in all; after ``Retry-After`` when the service sent one, else after an
exponential backoff with full jitter (a random wait between 0 and ``base_delay × 2^n``, at most
``max_delay``), so that many clients that failed together do not come back together. A
connection that never opened sent nothing: every call, even one sent once, tries again then.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, replace


class Safety(enum.Enum):
    """Whether a call may be sent again after a failure whose outcome is unknown."""

    RETRYABLE = "retryable"
    """Sending it again cannot write twice, and a repeat answers as the first attempt would:
    reads; creates, appends and batches carrying their idempotency key; ``complete`` without an
    etag; delete and purge with ``allow_missing``; clear messages with ``through_order`` and no
    etag."""
    RECOGNISED = "recognised"
    """Writes with an etag: a repeat of an attempt that applied cannot apply again, it is
    refused. When that refusal follows an attempt whose outcome is unknown, the client reads the
    resource back and answers the call as done when the state shows this call's write."""
    ONCE = "once"
    """Writes without a key or an etag (and delete message, whose answer a repeat cannot give):
    sent once; an unknown outcome is reported as the error it was."""


RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
"""The answers that ask to try again later."""


@dataclass(frozen=True)
class Retry:
    """The retry policy of a client (default: 4 attempts, 100 ms base, 20 s cap)."""

    attempts: int = 4
    """Attempts in all, the first one included (1: never retry)."""
    base_delay: float = 0.1
    """The first backoff's upper bound, in seconds."""
    max_delay: float = 20.0
    """The cap of any wait, ``Retry-After`` included, in seconds."""

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("Retry.attempts counts the first attempt: at least 1")

    @classmethod
    def none(cls) -> Retry:
        """Never retry (every call is sent once)."""
        return cls(attempts=1)

    def with_attempts(self, attempts: int) -> Retry:
        return replace(self, attempts=attempts)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """The wait before attempt ``attempt + 1`` (``attempt`` counts from 0), given the
        answer's ``Retry-After``."""
        if retry_after is not None:
            return min(retry_after, self.max_delay)
        ceiling = min(self.base_delay * (1 << min(attempt, 16)), self.max_delay)
        return random.uniform(0.0, ceiling)


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds (RFC 9110 also allows an HTTP date; the service sends
    seconds)."""
    if value is None:
        return None
    text = value.strip()
    return float(text) if text.isdigit() else None
