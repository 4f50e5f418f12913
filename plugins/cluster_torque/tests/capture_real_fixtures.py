"""Capture qstat output for the parser tests from the real servers of ci/torque/up.sh and ci/openpbs/up.sh.

    runuser -u pbstest -- python plugins/cluster_torque/tests/capture_real_fixtures.py torque|openpbs [outdir]

Run as a normal user (Torque's qsub refuses root) from a directory that user may write. Submits a few
jobs straight with qsub (not through the backend: the captures must not depend on the code they test),
waits for them, and saves each qstat answer verbatim as ``<scenario>.out`` (stdout) with its command,
exit status and stderr in ``manifest.json``. Scenarios: a job whose working directory is full of shell
metacharacters, ``exit 3``, an array of two tasks exiting 0 and 3, a job waiting for its start time and
a held one (asked for together, then deleted), one job asked for in two spellings. Takes about 30 s.
Not a test: run by hand when a server version or a qstat format changes.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
SERVERS = {"torque": ("/opt/torque/bin", "PBS_ARRAYID"), "openpbs": ("/opt/pbs/bin", "PBS_ARRAY_INDEX")}
KEY = sys.argv[1]
BIN, INDEX = SERVERS[KEY]
OUT = Path(sys.argv[2]) if len(sys.argv) > 2 else HERE / "fixtures" / KEY / "real"
TORQUE = KEY == "torque"
WORK = Path(tempfile.mkdtemp(prefix=f"{KEY}-capture-"))
ODD = WORK / "dir with space; $(touch pwned) 'quote' \"dq\" \\back"
manifest: dict = {"server": KEY, "captured": dt.datetime.now().isoformat(timespec="seconds"),
                  "user": os.environ.get("USER") or str(os.getuid()), "jobs": {}, "commands": {}}


def run(*args: str, cwd: Path = WORK, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([f"{BIN}/{args[0]}", *args[1:]], capture_output=True, text=True, cwd=cwd,
                          input=stdin, timeout=60)


def qsub(scenario: str, body: str, *args: str, cwd: Path = WORK) -> str:
    proc = run("qsub", "-N", scenario, "-o", str(WORK / f"{scenario}.o"), "-e", str(WORK / f"{scenario}.e"),
               *args, cwd=cwd, stdin=f"#!/bin/bash\n{body}\n")
    if proc.returncode:
        raise SystemExit(f"qsub {scenario}: {proc.stderr}")
    manifest["jobs"][scenario] = job_id = proc.stdout.strip().splitlines()[-1]
    return job_id


def qstat_args(*ids: str, text: bool = False) -> list[str]:
    if TORQUE:
        return ["qstat", "-x", "-t", *ids]
    return ["qstat", "-f", "-w" if text else "-F", *([] if text else ["json"]), "-x", "-t", *ids]


def capture(scenario: str, args: list[str]) -> str:
    proc = run(*args)
    (OUT / f"{scenario}.out").write_text(proc.stdout)
    manifest["commands"][scenario] = {"argv": args, "rc": proc.returncode, "stderr": proc.stderr}
    return proc.stdout


def state(job_id: str) -> str:
    out = run(*(["qstat", "-x", "-t", job_id] if TORQUE else ["qstat", "-f", "-F", "json", "-x", "-t", job_id])).stdout
    if TORQUE:
        import re
        return "".join(re.findall(r"<job_state>(\w)</job_state>", out))
    return "".join(j["job_state"] for j in json.loads(out).get("Jobs", {}).values())


def wait(job_ids: list[str], done: str = "CF", timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not all(s and set(s) <= set(done + "X") for s in map(state, job_ids)):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {job_ids}: {[state(j) for j in job_ids]}")
        time.sleep(1)


OUT.mkdir(parents=True, exist_ok=True)
ODD.mkdir()
capture("qstat_version", ["qstat", "--version"])
odd = qsub("odd", "pwd", *(["-d", str(ODD)] if TORQUE else []), cwd=ODD)
fail = qsub("fail3", "exit 3")
array = qsub("arr", f"echo task ${INDEX}; exit $(( ${INDEX} * 3 ))", "-t" if TORQUE else "-J", "0-1")
later = (dt.datetime.now() + dt.timedelta(hours=2)).strftime("%Y%m%d%H%M.%S")
waiting = qsub("waiting", "true", "-a", later)
held = qsub("held", "true", "-h")
# each task by its own id too: a finished parent does not mean its tasks' records are final (PBS Pro)
wait([odd, fail, array] + [array.replace("[]", f"[{i}]", 1) for i in (0, 1)])
capture("two_queued_asked_together", qstat_args(waiting, held))
if not TORQUE:
    capture("two_queued_asked_together_text", qstat_args(waiting, held, text=True))
capture("odd_workdir", qstat_args(odd))
seq = fail.split(".", 1)[0]
capture("one_job_two_spellings", qstat_args(fail, seq))
capture("array_finished", qstat_args(array))
proc = run("qdel", waiting, held)
manifest["commands"]["qdel_queued_and_held"] = {"argv": ["qdel", waiting, held], "rc": proc.returncode,
                                                "stderr": proc.stderr, "stdout": proc.stdout}
wait([waiting, held])
capture("two_deleted_asked_together", qstat_args(waiting, held))
if not TORQUE:
    capture("two_deleted_asked_together_text", qstat_args(waiting, held, text=True))
(OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
print(f"captured into {OUT} (work directory {WORK})")
