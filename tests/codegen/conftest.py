"""Fixtures for codegen tests (helpers live in codegen_helpers.py)."""

from codegen_helpers import example, rides, scenario  # noqa: F401
