"""What every step of ``fsgen demo`` gets: the demo project's configuration, a work directory
and a way to say things. A leaf module: the step modules (``fsgen/*/demo.py``) import it, and
``fsgen.demo`` imports them, so no import cycle runs through ``fsgen.demo``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fsgen.config import ProjectConfig


@dataclass
class DemoContext:
    config: ProjectConfig
    workdir: Path

    def say(self, text: str) -> None:
        from fsgen.cli._app import stderr_console

        stderr_console().print(text)


Step = Callable[[DemoContext], None]
