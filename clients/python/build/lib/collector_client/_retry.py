"""Retry policy: which failures are retried, and how long to wait."""

import email.utils
import random
import time
from dataclasses import dataclass
from typing import Optional

import httpx

#: Statuses that mean "try again later": throttled (429, if a proxy answers it), and the
#: server's 503 ``unavailable`` (store throttled after its own retries) or a gateway's 502/504.
RETRY_STATUSES = frozenset({429, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, honouring ``Retry-After``.

    ``max_retries`` retries after the first attempt; the n-th retry waits a random time in
    ``[d/2, d]`` with ``d = min(max_backoff, backoff * 2**n)`` (equal jitter), or the answer's
    ``Retry-After`` when it says longer (capped by ``max_retry_after``).
    """

    max_retries: int = 3
    backoff: float = 0.2
    max_backoff: float = 10.0
    max_retry_after: float = 60.0

    def delay(self, attempt: int, retry_after: Optional[float]) -> float:
        d = min(self.max_backoff, self.backoff * (2**attempt))
        wait = random.uniform(d / 2, d)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_retry_after))
        return wait


NO_RETRIES = RetryPolicy(max_retries=0)


def parse_retry_after(value: Optional[str]) -> Optional[float]:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def retryable_exception(exc: BaseException, idempotent: bool) -> bool:
    """A transport failure worth retrying. A request that was never sent (connect failed) is
    always safe to send again; one that may have reached the server only when the route is
    idempotent (GET, DELETE, and logging with a client-side ``interaction_id``)."""
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        return True
    if isinstance(exc, (httpx.ReadTimeout, httpx.WriteTimeout, httpx.RemoteProtocolError, httpx.ReadError,
                        httpx.WriteError)):
        return idempotent
    return False
