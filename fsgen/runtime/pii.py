"""Keyed pseudonymization of identifiers: the standard-library-only core of :mod:`fsgen.pii`.

``pseudonymize(value)`` maps an identifier to a stable token that joins like the original
(equal inputs give equal tokens, under one key) but cannot be reversed or recomputed without
the key: HMAC-SHA256, not a plain hash, so nobody can confirm a guess ("is this customer 42?")
by hashing candidate values.

Output format (stable, part of fsgen's contract)::

    "ps1:" + lowercase hex of HMAC-SHA256(key, UTF-8 bytes of the canonical text)

64 hex digits after the ``ps1:`` version prefix. The canonical text of a ``str`` is the string
itself; of an ``int`` its decimal form (so the id ``42`` read from a CSV as text and from JSON as
a number gives one token); ``bytes`` are used as they are. ``None`` stays ``None`` (a missing
identifier is not turned into a token that looks real). Anything else (floats, bools) is a
``TypeError``: identifiers are text or integers.

The key is never in code. It comes from, in order: the ``key=`` argument; the environment
variable ``FSGEN_PSEUDONYMIZATION_KEY`` (UTF-8 text); or, when
``FSGEN_PSEUDONYMIZATION_SECRET_ID`` is set, that AWS Secrets Manager secret (SecretString as
UTF-8, or SecretBinary), fetched once per process with boto3, which every Lambda runtime has.
A key shorter than 16 bytes is refused.

This module imports nothing outside the standard library and :mod:`fsgen.runtime` at import
time, so generated Lambda
handlers and featuredefs functions can call it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading

from fsgen.runtime.errors import ConfigurationError

FORMAT_PREFIX = "ps1:"
KEY_ENV = "FSGEN_PSEUDONYMIZATION_KEY"
SECRET_ENV = "FSGEN_PSEUDONYMIZATION_SECRET_ID"
MIN_KEY_BYTES = 16

_secret_cache: dict[str, bytes] = {}
_secret_lock = threading.Lock()


class PseudonymizationKeyError(ConfigurationError):
    """No usable pseudonymization key: unset, too short, or the secret could not be read. A
    configuration failure, not a bad record: a run stops on it (see
    :mod:`fsgen.runtime.errors`)."""


def pseudonymize(value: str | int | bytes | None, *, key: str | bytes | None = None) -> str | None:
    """The ``ps1:`` token of ``value`` under ``key`` (default: the configured key)."""
    if value is None:
        return None
    secret = _as_key(key, "the key= argument") if key is not None else resolve_key()
    digest = hmac.new(secret, canonical_bytes(value), hashlib.sha256).hexdigest()
    return FORMAT_PREFIX + digest


def canonical_bytes(value: str | int | bytes) -> bytes:
    """The bytes that are MACed for ``value`` (see the module docstring)."""
    if isinstance(value, bool) or not isinstance(value, str | int | bytes):
        raise TypeError(
            f"pseudonymize() takes a str, int or bytes identifier, not "
            f"{type(value).__name__}: {value!r}"
        )
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


def resolve_key() -> bytes:
    """The configured key: ``FSGEN_PSEUDONYMIZATION_KEY``, else the Secrets Manager secret."""
    text = os.environ.get(KEY_ENV)
    if text:
        return _as_key(text, f"environment variable {KEY_ENV}")
    secret_id = os.environ.get(SECRET_ENV)
    if secret_id:
        return _secret_key(secret_id)
    raise PseudonymizationKeyError(
        f"no pseudonymization key: set {KEY_ENV} (at least {MIN_KEY_BYTES} bytes) or "
        f"{SECRET_ENV} (an AWS Secrets Manager secret id)"
    )


def _as_key(key: str | bytes, where: str) -> bytes:
    data = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    if len(data) < MIN_KEY_BYTES:
        raise PseudonymizationKeyError(
            f"pseudonymization key from {where} is {len(data)} bytes; at least "
            f"{MIN_KEY_BYTES} are required"
        )
    return data


def _secret_key(secret_id: str) -> bytes:
    with _secret_lock:
        cached = _secret_cache.get(secret_id)
        if cached is not None:
            return cached
        key = _as_key(fetch_secret(secret_id), f"secret {secret_id!r}")
        _secret_cache[secret_id] = key
        return key


def fetch_secret(secret_id: str) -> bytes:
    """GetSecretValue through boto3 (region and endpoint from the usual AWS settings)."""
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError as exc:  # pragma: no cover - boto3 is in every Lambda runtime
        raise PseudonymizationKeyError(f"{SECRET_ENV} is set but boto3 is not installed") from exc
    try:
        response = boto3.client("secretsmanager").get_secret_value(SecretId=secret_id)
    except (ClientError, BotoCoreError) as exc:
        raise PseudonymizationKeyError(
            f"cannot read pseudonymization key secret {secret_id!r} from AWS Secrets Manager: {exc}"
        ) from None
    if response.get("SecretString") is not None:
        return str(response["SecretString"]).encode("utf-8")
    return bytes(response["SecretBinary"])


def clear_key_cache() -> None:
    """Forget secrets fetched so far (after a key rotation, and between tests)."""
    with _secret_lock:
        _secret_cache.clear()
