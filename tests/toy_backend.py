"""A minimal third-party backend, as a plugin author would write it: the core needs no change for it.

It runs each job script as a real child process of the test (no directives, no real scheduling).
"""

from __future__ import annotations

import itertools
import os
import subprocess

from cluster_core import BackendInfo, Detection, QueueJob, State, hookimpl
from cluster_core.options import array_indices, render_with


class ToyBackend:
    def __init__(self, name="toy", priority=5, available=True, arrays=False, max_array=None):
        self.name = name
        self.arrays = arrays
        self.max_array = max_array
        self.priority = priority
        self.available = available
        self.procs: dict[str, subprocess.Popen] = {}
        self.calls: list[str] = []
        self.cancelled: list[list[str]] = []  # the ids of each cancel call
        self._ids = itertools.count(1)

    @hookimpl
    def backend_info(self):
        return BackendInfo(name=self.name, description="toy backend for tests", directive_prefix="#TOY",
                           poll_interval=0.02, priority=self.priority, supports_arrays=self.arrays,
                           task_id_variable="TOY_MISSING_VAR TOY_TASK_ID" if self.arrays else None,
                           job_id_variable="TOY_JOB_ID", array_id_variable="TOY_JOB_ID" if self.arrays else None)

    @hookimpl
    def max_array_size(self):
        return self.max_array

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
        tasks = [None]
        if "array" in options:
            assert self.arrays, "the core must not send arrays to a backend without them"
            tasks = array_indices(options["array"])[0]
        for task in tasks:
            env = dict(os.environ, TOY_JOB_ID=job_id, **({"TOY_TASK_ID": str(task)} if task is not None else {}))
            key = job_id if task is None else f"{job_id}[{task}]"
            with open(options["outfile"], "ab") as out, open(options["errfile"], "ab") as err:
                self.procs[key] = subprocess.Popen(["/bin/bash", str(script)], stdout=out, stderr=err, env=env,
                                                   cwd=options.get("workdir"), start_new_session=True)
        return job_id

    @hookimpl
    def parse_queue(self, job_ids, user, partition):
        self.calls.append("parse_queue")
        out = []
        wanted = set(job_ids) if job_ids is not None else None
        for key, proc in self.procs.items():
            parent, _, task = key.partition("[")
            if wanted is not None and key not in wanted and parent not in wanted:
                continue
            rc = proc.poll()
            state = State.RUNNING if rc is None else State.COMPLETED if rc == 0 else State.FAILED
            out.append(QueueJob(id=key, state=state, exitcode=rc, array_id=parent if task else None,
                                task_id=int(task.rstrip("]")) if task else None))
        return out

    @hookimpl
    def cancel(self, job_ids):
        self.calls.append("cancel")
        self.cancelled.append(list(job_ids))
        for key, proc in self.procs.items():  # an array's id cancels its every task, as schedulers do
            if (key in job_ids or key.partition("[")[0] in job_ids) and proc.poll() is None:
                proc.kill()
        return True
