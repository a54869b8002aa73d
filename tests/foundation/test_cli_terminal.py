"""The CLI in a real terminal (a pseudo-terminal, as a user's shell gives it): plan colours like
Terraform's on a TTY and none in a pipe, and apply/destroy ask their question before any
spinner starts, so the prompt and the typed answer are never drawn over."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

DEFS = """\
from fsgen import Entity, FeatureGroup, Integral, Online, String

user = Entity("user_id", String, description="u")
clicks = FeatureGroup("clicks", entity=user, event_time="ts", owner="o", description="d",
                      online=Online(ttl="1d"))


@clicks.feature(Integral, description="n")
def n_clicks(n: int) -> int:
    return n
"""

PROMPT = b"Only 'yes' will be accepted"
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏".encode()
WAIT = 120.0  # seconds a step may take on a busy machine before the test gives up


class Terminal:
    """A command on a pseudo-terminal (80x24): stdin, stdout and stderr are the TTY."""

    def __init__(self, root: Path, *args: str, env: dict[str, str] | None = None) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        environ = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "80", **(env or {})}
        if "NO_COLOR" not in (env or {}):
            environ.pop("NO_COLOR", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fsgen.cli", "--project", str(root), *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=environ,
            cwd=root,
            start_new_session=True,
        )
        os.close(slave)
        self.master = master
        self.seen = b""

    def read(self, seconds: float) -> bytes:
        """What the program writes within ``seconds`` (less if it exits)."""
        got = b""
        while True:
            ready, _, _ = select.select([self.master], [], [], seconds)
            if not ready:
                return got
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: the program exited and closed the terminal
                return got
            if not chunk:
                return got
            got += chunk
            self.seen += chunk

    def expect(self, marker: bytes) -> bytes:
        start, give_up = len(self.seen), time.monotonic() + WAIT
        while marker not in self.seen[start:]:
            if time.monotonic() > give_up or (not self.read(1.0) and self.proc.poll() is not None):
                pytest.fail(f"{marker!r} never appeared; output: {self.seen!r}")
        return self.seen[start:]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def finish(self) -> int:
        while self.read(WAIT):
            pass  # until the program closes the terminal
        code = self.proc.wait(timeout=WAIT)
        os.close(self.master)
        return code


@pytest.fixture
def project(make_project: Callable[..., Path]) -> Path:
    return make_project({"featuredefs/defs.py": DEFS})


@pytest.fixture
def terminal() -> Iterator[Callable[..., Terminal]]:
    """Starts commands on terminals and kills any still running when the test ends (one
    waiting for an answer that a failed assertion never gave)."""
    started: list[Terminal] = []

    def start(root: Path, *args: str, env: dict[str, str] | None = None) -> Terminal:
        started.append(Terminal(root, *args, env=env))
        return started[-1]

    yield start
    for term in started:
        term.kill()


def test_plan_is_coloured_on_a_terminal(project: Path, terminal: Callable[..., Terminal]) -> None:
    term = terminal(project, "plan")
    assert term.finish() == 0
    out = term.seen
    assert b'\x1b[32m+\x1b[0m feature_group "clicks" {' in out
    assert b"\x1b[1mPlan: 1 to add, 0 to change, 0 to replace, 0 to destroy.\x1b[0m" in out
    assert b"\x1b[1m  # feature group 'clicks' will be created\x1b[0m" in out


def test_plan_is_plain_in_a_pipe_and_with_no_color(
    project: Path, terminal: Callable[..., Terminal]
) -> None:
    piped = subprocess.run(
        [sys.executable, "-m", "fsgen.cli", "--project", str(project), "plan"],
        capture_output=True,
        check=True,
        env={**os.environ, "TERM": "xterm-256color"},
    )
    assert b"\x1b[" not in piped.stdout and b'  + feature_group "clicks" {' in piped.stdout
    term = terminal(project, "plan", env={"NO_COLOR": "1"})
    assert term.finish() == 0
    assert b"\x1b[3" not in term.seen and b'+ feature_group "clicks"' in term.seen


def test_replace_is_red_and_green(project: Path) -> None:
    from fsgen.plan.render import paint

    text = '-/+ feature_group "g" {\n      ~ features.x.type = "A" -> "B" # forces replacement'
    assert paint(text).splitlines() == [
        '\x1b[31m-\x1b[0m/\x1b[32m+\x1b[0m feature_group "g" {',
        '      \x1b[33m~\x1b[0m features.x.type = "A" -> "B" \x1b[31m# forces replacement\x1b[0m',
    ]


@pytest.mark.parametrize("command", ["apply", "destroy"])
def test_the_question_comes_before_the_spinner(
    project: Path, command: str, terminal: Callable[..., Terminal]
) -> None:
    if command == "destroy":
        subprocess.run(
            [sys.executable, "-m", "fsgen.cli", "--project", str(project), "apply",
             "--auto-approve"],
            capture_output=True,
            check=True,
        )  # fmt: skip
    term = terminal(project, command)
    before = term.expect(PROMPT)
    assert not any(ch in before for ch in (SPINNER[i : i + 3] for i in range(0, 30, 3)))
    # While the question waits for an answer, nothing may be drawn: a live spinner redraws its
    # line ten times a second, over the prompt and whatever the user types.
    assert term.read(1.5) == b""
    os.write(term.master, b"yes\r")
    after = term.expect(b"Destroy complete!" if command == "destroy" else b"Apply complete!")
    assert term.finish() == 0
    answer_line = (before + after).split(PROMPT, 1)[1].split(b"\n", 1)[0]
    assert answer_line.strip(b"\r") == b": yes", answer_line  # the answer, intact
    assert b"] create feature group clicks" in after or b"] delete feature group" in after


def test_no_answer_from_a_pipe_changes_nothing(project: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fsgen.cli", "--project", str(project), "apply"],
        input=b"no\n",
        capture_output=True,
    )
    assert result.returncode == 1
    assert result.stderr.decode().strip().splitlines()[-1] == (
        "error: apply cancelled; nothing was changed"
    )


def test_the_ingest_bar_counts_records_written_with_rate_and_rejects(
    project: Path, terminal: Callable[..., Terminal]
) -> None:
    """The bar follows records the pipeline has finished with (chunks of 100,000), not the
    reader's read-ahead: it never shows the whole file done before the last chunk, and it
    shows the rate and the rejects so far."""
    subprocess.run(
        [sys.executable, "-m", "fsgen.cli", "--project", str(project), "apply", "--auto-approve"],
        capture_output=True,
        check=True,
    )
    rows = ["user_id,ts,n"] + [
        f"u{i},2024-01-01T00:00:00Z,{'x' if i % 1000 == 0 else i}" for i in range(250_000)
    ]
    (project / "clicks.csv").write_text("\n".join(rows) + "\n")
    term = terminal(project, "ingest", "clicks", "clicks.csv")
    assert term.finish() == 1  # 250 rows rejected
    screen = term.seen.decode("utf-8", "replace")
    shown = {int(n.replace(",", "")) for n in re.findall(r"([\d,]+)/250,000 records", screen)}
    assert shown, screen
    assert shown <= {0, 100_000, 200_000, 250_000}, shown
    assert shown & {100_000, 200_000}, shown  # a frame between chunks was drawn
    assert re.search(r"\d[\d,]* records/s", screen), screen
    assert re.search(r"(100|200) rejected", screen), screen
    assert "read 250,000, written 249,750, rejected 250" in screen
