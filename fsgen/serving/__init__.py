"""Serving a model on the online store: the generated endpoint handler over HTTP
(``fsgen serve-model``), record sources for it (the local online store, or boto3), and the
training-serving skew check (``fsgen skew-check``)."""
