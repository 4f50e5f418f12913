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
from typing import Optional


class ShimDir:
    """A directory of shims, prepended to PATH while active (use as a context manager)."""

    def __init__(self, directory: os.PathLike[str] | str) -> None:
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

    def lose_answer(self, command: str, stderr: str, returncode: int = 1) -> "ShimDir":
        """The real command runs and does its work, then its answer is lost: it prints ``stderr`` and exits
        with ``returncode`` (a submission whose reply timed out)."""
        real = self._real(command)
        self._write(command, f'printf "%s\\n" {shlex.quote(command)} >> {shlex.quote(str(self.log))}\n'
                             f'{shlex.quote(real)} "$@" > /dev/null 2>&1\n'
                             f"printf '%s\\n' {shlex.quote(stderr)} >&2\nexit {int(returncode)}\n")
        return self

    def fail_first(self, command: str, times: int, stderr: str, returncode: int = 1) -> "ShimDir":
        """The first ``times`` calls fail with ``stderr``; later calls run the real command."""
        real = self._real(command)
        self._first_calls(command, times, f"printf '%s\\n' {shlex.quote(stderr)} >&2; exit {int(returncode)}",
                          f'exec {shlex.quote(real)} "$@"')
        return self

    def real_first(self, command: str, times: int, stderr: str, hang_seconds: float = 0.0,
                   returncode: int = 1) -> "ShimDir":
        """The first ``times`` calls run the real command; later ones print ``stderr`` at once and then hang
        ``hang_seconds`` before they fail (sbatch retrying by itself a queue that is full)."""
        real = self._real(command)
        hang = f"; sleep {hang_seconds} </dev/null >/dev/null 2>&1" if hang_seconds else ""
        self._first_calls(command, times, f'exec {shlex.quote(real)} "$@"',
                          f"printf '%s\\n' {shlex.quote(stderr)} >&2{hang}; exit {int(returncode)}")
        return self

    def _first_calls(self, command: str, times: int, first: str, then: str) -> None:
        """A shim that runs the shell line ``first`` for its first ``times`` calls and ``then`` after."""
        counter = self.dir / f".{command}.count"
        self._write(command, f'printf "%s\\n" {shlex.quote(command)} >> {shlex.quote(str(self.log))}\n'
                             f'echo x >> {shlex.quote(str(counter))}\n'
                             f'if [ "$(wc -l < {shlex.quote(str(counter))})" -le {int(times)} ]; then\n'
                             f"  {first}\nfi\n{then}\n")

    def flaky(self, command: str, fail_percent: int, stderr: str, hang_percent: int = 0,
              hang_seconds: float = 0.0, lose_percent: int = 0, returncode: int = 1, seed: int = 1) -> "ShimDir":
        """Of every 100 calls (in a fixed pseudo-random order from ``seed``), ``fail_percent`` fail with
        ``stderr`` before reaching the scheduler, ``lose_percent`` run the real command and then fail with
        ``stderr`` (its work done, its answer lost), ``hang_percent`` hang ``hang_seconds`` first and then
        run it; the rest run it at once."""
        real = self._real(command)
        counter = self.dir / f".{command}.count"
        fail, lose = int(fail_percent), int(fail_percent) + int(lose_percent)
        say = f"printf '%s\\n' {shlex.quote(stderr)} >&2; exit {int(returncode)}"
        self._write(command, f'printf "%s\\n" {shlex.quote(command)} >> {shlex.quote(str(self.log))}\n'
                             f'echo x >> {shlex.quote(str(counter))}\n'
                             f'n=$(wc -l < {shlex.quote(str(counter))})\n'
                             f'r=$(( (n * 7919 + {int(seed)} * 104729) % 100 ))\n'
                             f'if [ "$r" -lt {fail} ]; then {say}; fi\n'
                             f'if [ "$r" -lt {lose} ]; then {shlex.quote(real)} "$@" >/dev/null 2>&1; {say}; fi\n'
                             f'if [ "$r" -lt {lose + int(hang_percent)} ]; then sleep {hang_seconds}; fi\n'
                             f'exec {shlex.quote(real)} "$@"\n')
        return self

    def _real(self, command: str) -> str:
        old = os.environ.get("PATH", "") if self._old_path is None else self._old_path
        path = os.pathsep.join(p for p in old.split(os.pathsep) if os.path.abspath(p) != str(self.dir.absolute()))
        real = shutil.which(command, path=path)
        if real is None:
            raise FileNotFoundError(f"{command} is not on PATH; nothing to wrap")
        return real

    def _write(self, command: str, body: str) -> None:
        path = self.dir / command
        path.write_text("#!/bin/sh\n" + body)
        path.chmod(0o755)

    def calls(self) -> Counter[str]:
        """How often each shimmed command ran."""
        return Counter(line for line in self.log.read_text().splitlines() if line)

    def reset(self) -> None:
        self.log.write_text("")

    def __enter__(self) -> "ShimDir":
        self._old_path = os.environ.get("PATH", "")
        os.environ["PATH"] = f"{self.dir}{os.pathsep}{self._old_path}"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._old_path is not None:
            os.environ["PATH"] = self._old_path
