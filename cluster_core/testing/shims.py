"""PATH shims for tests: count the scheduler commands a run makes, or replace one with a real failure.

A shim is a small executable script put first on PATH. A counting shim logs each call to a file and then
runs the real command; a failing shim prints what a broken scheduler prints and exits with its code.
"""

from __future__ import annotations

import os
import shlex
import shutil
from collections import Counter
from pathlib import Path
from typing import Iterable, Optional


class ShimDir:
    """A directory of shims, prepended to PATH while active (use as a context manager)."""

    def __init__(self, directory: os.PathLike | str):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log = self.dir / "calls.log"
        self.log.touch()
        self._old_path: Optional[str] = None

    def count(self, *commands: str) -> "ShimDir":
        """Log every call of these commands, then run the real one found on the current PATH."""
        for command in commands:
            real = shutil.which(command)
            if real is None:
                raise FileNotFoundError(f"{command} is not on PATH; nothing to count")
            self._write(command, f'printf "%s\\n" {shlex.quote(command)} >> {shlex.quote(str(self.log))}\n'
                                 f'exec {shlex.quote(real)} "$@"\n')
        return self

    def fail(self, command: str, stderr: str = "", stdout: str = "", returncode: int = 1,
             delay: float = 0.0) -> "ShimDir":
        """Replace a command with one that prints these texts and exits with ``returncode``."""
        body = f'printf "%s\\n" {shlex.quote(command)} >> {shlex.quote(str(self.log))}\n'
        if delay:
            body += f"sleep {delay}\n"
        if stdout:
            body += f"printf '%s\\n' {shlex.quote(stdout)}\n"
        if stderr:
            body += f"printf '%s\\n' {shlex.quote(stderr)} >&2\n"
        body += f"exit {int(returncode)}\n"
        self._write(command, body)
        return self

    def _write(self, command: str, body: str) -> None:
        path = self.dir / command
        path.write_text("#!/bin/sh\n" + body)
        path.chmod(0o755)

    def calls(self) -> Counter:
        """How often each shimmed command ran."""
        return Counter(line for line in self.log.read_text().splitlines() if line)

    def reset(self) -> None:
        self.log.write_text("")

    def __enter__(self) -> "ShimDir":
        self._old_path = os.environ.get("PATH", "")
        os.environ["PATH"] = f"{self.dir}{os.pathsep}{self._old_path}"
        return self

    def __exit__(self, *exc) -> None:
        if self._old_path is not None:
            os.environ["PATH"] = self._old_path


def shim_dir(directory: os.PathLike | str, count: Iterable[str] = ()) -> ShimDir:
    return ShimDir(directory).count(*count)
