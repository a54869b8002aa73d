"""Retries of the stream path's writes: which failures are worth retrying (throttling, an
unavailable endpoint, a busy SQLite) and exponential back-off with full jitter that leaves a
Lambda enough of its time to report. Standard library only."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from fsgen.runtime.sinks import RecordRejected

THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "SlowDown",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalServerError",
        "InternalError",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
REJECTED_CODES = frozenset({"ValidationError", "ValidationException"})
TRANSIENT_ERRORS = frozenset(
    {
        "EndpointConnectionError",
        "ConnectionClosedError",
        "ReadTimeoutError",
        "ConnectTimeoutError",
        "ConnectionError",
        "TimeoutError",
        "HTTPClientError",
    }
)
TRANSIENT = "transient"
REJECTED = "rejected"
ERROR = "error"


def classify(exc: BaseException) -> str:
    """TRANSIENT (retry with back-off), REJECTED (the store refuses this record: poison) or
    ERROR (anything else: report for Lambda's retry, do not spin on it here)."""
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):  # botocore ClientError, duck-typed
        error = response.get("Error") or {}
        code = str(error.get("Code", "")) if isinstance(error, Mapping) else ""
        meta = response.get("ResponseMetadata") or {}
        status = meta.get("HTTPStatusCode", 0) if isinstance(meta, Mapping) else 0
        if code in THROTTLING_CODES or status == 429 or (isinstance(status, int) and status >= 500):
            return TRANSIENT
        return REJECTED if code in REJECTED_CODES else ERROR
    if isinstance(exc, RecordRejected):
        return REJECTED
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & TRANSIENT_ERRORS:
        return TRANSIENT
    if "OperationalError" in names and ("locked" in str(exc) or "busy" in str(exc)):
        return TRANSIENT  # sqlite: another writer holds the database
    return ERROR


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential back-off with full jitter for TRANSIENT write errors.

    At most ``attempts`` tries per write; no retry starts when less than ``reserve_ms`` of the
    Lambda's time would remain after the wait."""

    attempts: int = 6
    base: float = 0.05
    cap: float = 2.0
    reserve_ms: int = 3000
    sleep: Callable[[float], None] = time.sleep

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.cap, self.base * 2**attempt))


DEFAULT_RETRY = RetryPolicy()


def _remaining_ms(context: object) -> float | None:
    get = getattr(context, "get_remaining_time_in_millis", None)
    return float(get()) if callable(get) else None


def attempt(
    fn: Callable[[], object], policy: RetryPolicy, context: object = None
) -> tuple[str, str] | None:
    """Run ``fn``, retrying TRANSIENT errors; None on success, else (kind, message)."""
    for n in range(policy.attempts):
        try:
            fn()
        except Exception as exc:
            kind = classify(exc)
            message = f"{type(exc).__name__}: {exc}"
            if kind != TRANSIENT or n + 1 == policy.attempts:
                return kind, message
            wait = policy.delay(n)
            remaining = _remaining_ms(context)
            if remaining is not None and remaining - wait * 1000 < policy.reserve_ms:
                return kind, message + " (no time left to retry)"
            policy.sleep(wait)
        else:
            return None
    return ERROR, "no attempt made"  # attempts < 1


__all__ = [
    "DEFAULT_RETRY",
    "ERROR",
    "REJECTED",
    "TRANSIENT",
    "RetryPolicy",
    "attempt",
    "classify",
]
