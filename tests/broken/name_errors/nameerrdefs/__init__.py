"""Transformations that read names nothing defines (each is FS114)."""
