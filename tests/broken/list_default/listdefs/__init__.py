"""A default for a List feature (FS109; it crashed validate with a pydantic traceback)."""
