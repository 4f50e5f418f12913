"""Helpers for the local backend's tests (a uniquely named module: conftest names clash across plugins)."""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import psutil

from cluster_core import plugins
from cluster_core.options import check_arguments
from cluster_core.records import State


def until(predicate, timeout: float = 15.0, what: str = "a condition"):
    """Wait for ``predicate()`` to be truthy (checked every 10 ms); fail after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.01)


def gone(pid: int) -> bool:
    """True when no live process has this pid (a zombie left to an init that does not reap counts)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


class Local:
    """The local backend through the real entry-point dispatch, plus helpers to write and watch jobs."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.backend = plugins.backend("local")
        self.count = 0

    def path(self, name: str) -> Path:
        return self.tmp / name

    def q(self, name: str) -> str:
        """A path in the test dir, quoted for a job script."""
        return shlex.quote(str(self.tmp / name))

    def gate(self, name: str) -> str:
        """Script lines that block until the test creates the file ``name`` (or 60 s pass)."""
        return f"for _ in $(seq 6000); do [ -e {self.q(name)} ] && break; sleep 0.01; done\n"

    def open_gate(self, name: str) -> None:
        self.path(name).touch()

    def script(self, body: str, name: str | None = None) -> Path:
        self.count += 1
        path = self.tmp / f"{name or 'job'}{self.count}.sh"
        path.write_text("#!/bin/bash\n" + body)
        return path

    def submit(self, body: str, name: str | None = None, **keywords) -> str:
        script = self.script(body, name)
        keywords.setdefault("outfile", str(script) + ".out")
        keywords.setdefault("errfile", str(script) + ".err")
        keywords.setdefault("cores", 1)
        if name:
            keywords.setdefault("name", name)
        return self.backend.submit(script, check_arguments(keywords), directives_in_script=True)

    def jobs(self, ids) -> dict:
        return {j.id: j for j in self.backend.parse_queue(list(ids))}

    def job(self, job_id: str):
        return self.jobs([job_id])[job_id]

    def state(self, job_id: str) -> str:
        return self.job(job_id).state.value

    def wait(self, ids, timeout: float = 20.0) -> dict:
        """Wait until the backend reports every job ended (or lost: UNKNOWN, which the core settles from
        the job's exit file)."""
        ids = list(ids)

        def settled():
            jobs = self.jobs(ids)
            done = len(jobs) == len(ids) and all(j.state.finished or j.state is State.UNKNOWN
                                                 for j in jobs.values())
            return jobs if done else None
        return until(settled, timeout, f"jobs {ids} to finish")

    def wait_state(self, job_id: str, state: str, timeout: float = 15.0):
        return until(lambda: self.state(job_id) == state, timeout, f"job {job_id} to be {state}")

    def out(self, job_id_or_script) -> str:
        return Path(str(job_id_or_script)).read_text()


def marked_processes(state_dir: Path) -> list:
    from cluster_local import proctools
    from cluster_local.settings import state_key
    return [p for procs in proctools.marked(state_key(state_dir.resolve())).values() for p in procs]
