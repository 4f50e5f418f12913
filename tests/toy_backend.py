"""A minimal third-party backend, as a plugin author would write it: the core needs no change for it.

It runs each job script as a real child process of the test (no directives, no real scheduling).
"""

from __future__ import annotations

import itertools
import subprocess

from cluster_core import BackendInfo, Detection, QueueJob, State, hookimpl
from cluster_core.options import render_with


class ToyBackend:
    def __init__(self, name="toy", priority=5, available=True):
        self.name = name
        self.priority = priority
        self.available = available
        self.procs: dict[str, subprocess.Popen] = {}
        self.calls: list[str] = []
        self._ids = itertools.count(1)

    @hookimpl
    def backend_info(self):
        return BackendInfo(name=self.name, description="toy backend for tests", directive_prefix="#TOY",
                           poll_interval=0.02, priority=self.priority)

    @hookimpl
    def detect(self):
        return Detection(self.available, "toy is here" if self.available else "toy is switched off")

    @hookimpl
    def render_options(self, options):
        return render_with({"cores": lambda v, o: [(f"--cores={v}",)],
                            "name": lambda v, o: [("--name", v)]}, options, self.name)

    @hookimpl
    def submit(self, script, options, directives_in_script):
        self.calls.append("submit")
        job_id = f"{next(self._ids)}.toy"
        with open(options["outfile"], "wb") as out, open(options["errfile"], "wb") as err:
            self.procs[job_id] = subprocess.Popen(["/bin/bash", str(script)], stdout=out, stderr=err,
                                                  cwd=options.get("workdir"), start_new_session=True)
        return job_id

    @hookimpl
    def parse_queue(self, job_ids, user, partition):
        self.calls.append("parse_queue")
        out = []
        for job_id in (job_ids if job_ids is not None else list(self.procs)):
            proc = self.procs.get(job_id)
            if proc is None:
                continue
            rc = proc.poll()
            if rc is None:
                out.append(QueueJob(id=job_id, state=State.RUNNING))
            else:
                out.append(QueueJob(id=job_id, state=State.COMPLETED if rc == 0 else State.FAILED, exitcode=rc))
        return out

    @hookimpl
    def cancel(self, job_ids):
        self.calls.append("cancel")
        for job_id in job_ids:
            proc = self.procs.get(job_id)
            if proc is not None and proc.poll() is None:
                proc.kill()
        return True
