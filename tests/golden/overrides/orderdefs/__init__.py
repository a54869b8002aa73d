"""A project that overrides packaged templates from its own templates/ directory."""
