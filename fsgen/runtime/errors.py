"""Errors of the runtime that are not about one record.

A :class:`ConfigurationError` says the environment a run needs is missing or unreachable (no
pseudonymization key, Secrets Manager not answering): every record would fail the same way,
so none of them is at fault. The batch pipeline lets it stop the run (exit non-zero, nothing
written) instead of rejecting each row, and the stream handler reports every record of the
batch in ``batchItemFailures`` (retried once the configuration is fixed) instead of sending
them to the dead-letter queue. Standard library only, like the rest of ``fsgen.runtime``.
"""

from __future__ import annotations


class ConfigurationError(RuntimeError):
    """The run's configuration is unusable; no record is to blame."""


__all__ = ["ConfigurationError"]
