"""The inference tests' fixtures (defined in inference_helpers)."""

from inference_helpers import project

__all__ = ["project"]
