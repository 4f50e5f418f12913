"""Capture real slurmrestd JSON (REST API v0.0.38 / dbv0.0.38) for the REST parser tests, from the Slurm
and slurmrestd that ci/slurm/up.sh starts.

    python plugins/cluster_slurm/tests/capture_rest_fixtures.py [outdir]

Submits one job per scenario through the REST transport itself (cluster_slurm.rest.submit, so the
#SBATCH translation is exercised too), and saves the answers verbatim:

- rest-jobs-finished.json  GET /slurm/v0.0.38/jobs as the quick jobs have just ended (before MinJobAge)
- rest-jobs-live.json      GET /slurm/v0.0.38/jobs with running, pending, held, dependent and array jobs
- rest-db-jobs.json        GET /slurmdb/v0.0.38/jobs?step=<every id> once all have ended
- rest-errors.json         the answers to a refused submission, a cancel of an unknown id, an accounting
                           query for an unknown id and a request with a bad token
- rest-manifest.json       scenario -> job id

Not a test: run by hand when the API version or the Slurm version changes (about a minute).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

from cluster_slurm import rest

HERE = Path(__file__).parent
OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "fixtures"
WORK = Path(tempfile.mkdtemp(prefix="slurm-rest-capture-"))
client = rest.Client()
ids: dict[str, str] = {}


def submit(scenario: str, body: str, *directives: str) -> str:
    script = WORK / f"{scenario}.sh"
    lines = ["#!/bin/bash", f"#SBATCH --job-name={scenario}", f"#SBATCH --output={WORK}/%x-%A_%a.out",
             "#SBATCH --mem=100M", *(f"#SBATCH {d}" for d in directives), body]
    script.write_text("\n".join(lines) + "\n")
    ids[scenario] = rest.submit(script, {}, (), c=client)
    return ids[scenario]


def jobs() -> dict:
    return client.request("GET", f"/slurm/{rest.API}/jobs")


def states(doc: dict) -> dict[str, str]:
    return {str(j["job_id"]): j["job_state"] for j in doc["jobs"]}


def save(name: str, doc: dict) -> None:
    (OUT / name).write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    print("wrote", OUT / name)


def wait(what: str, condition, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


# 1. quick jobs, caught just after they end
quick = {
    "completed": submit("completed", "true"),
    "exit3": submit("exit3", "exit 3"),
    "segv": submit("segv", "kill -SEGV $$"),
    "oom": submit("oom", "python3 -c 'x = bytearray(300 << 20); import time; time.sleep(3)'", "--mem=50M"),
    "array_mixed": submit("array_mixed", 'exit "$SLURM_ARRAY_TASK_ID"', "--array=0-2"),
}


def quick_done():
    doc = jobs()
    mine = [j for j in doc["jobs"] if str(j.get("array_job_id") or j["job_id"]) in quick.values()]
    ended = [j for j in mine if j["job_state"] not in ("PENDING", "RUNNING", "COMPLETING", "CONFIGURING")]
    return doc if len(mine) >= 7 and len(ended) == len(mine) else None


save("rest-jobs-finished.json", wait("the quick jobs to end", quick_done))

# 2. live states: two 1-CPU sleepers fill the node; the rest pends
running = submit("running", "sleep 120")
submit("running2", "sleep 120")
wait("the sleepers to run", lambda: all(states(jobs()).get(ids[k]) == "RUNNING" for k in ("running", "running2")))
submit("pending_resources", "true", "--cpus-per-task=2")
submit("held", "true", "--hold")
submit("dependent", "true", f"--dependency=afterok:{running}", "--kill-on-invalid-dep=yes")
submit("array_pending", "true", "--array=0-5%2")
submit("begin", "true", "--begin=now+3600")
submit("cancelled", "sleep 60")
rest.cancel([ids["cancelled"]], c=client)
wait("the cancelled job", lambda: states(jobs()).get(ids["cancelled"]) == "CANCELLED")
save("rest-jobs-live.json", jobs())

# 3. end everything, then ask slurmdbd
rest.cancel([ids[k] for k in ("running", "running2", "pending_resources", "held", "dependent",
                              "array_pending", "begin")], c=client)
every = list(ids.values())


def in_db():
    query = urllib.parse.urlencode({"step": ",".join(every)})
    doc = client.request("GET", f"/slurmdb/{rest.DB_API}/jobs?{query}", ok=(rest.NOTHING_FOUND,))
    done = [j for j in doc.get("jobs", []) if j["state"]["current"] not in ("PENDING", "RUNNING")]
    return doc if len(done) >= len(every) + 2 else None  # the arrays add tasks


save("rest-db-jobs.json", wait("slurmdbd to hold every job as ended", in_db))

# 4. refusals, as slurmrestd answers them
errors = {}
script = WORK / "bad.sh"
script.write_text("#!/bin/bash\ntrue\n")
from cluster_slurm import rest_submit  # noqa: E402
import os  # noqa: E402
body = rest_submit.job_description(script.read_text(), "bad.sh", ["--partition=nope"], cwd=str(WORK),
                                   environ={"PATH": os.environ["PATH"]}, umask=0o022, host="vm")


def answer(method: str, path: str, body=None, token: str | None = None) -> dict:
    tok = client.tokens.get()
    conn = client.endpoint.connection(10)
    headers = {"X-SLURM-USER-NAME": tok.user, "X-SLURM-USER-TOKEN": token or tok.value,
               "Content-Type": "application/json"}
    conn.request(method, path, body=json.dumps(body) if body else None, headers=headers)
    resp = conn.getresponse()
    raw = resp.read()
    try:
        return {"status": resp.status, "body": json.loads(raw or b"{}")}
    except ValueError:  # slurmrestd answers an unknown path with plain text
        return {"status": resp.status, "text": raw.decode()}


errors["submit_bad_partition"] = answer("POST", f"/slurm/{rest.API}/job/submit", body)
errors["cancel_unknown"] = answer("DELETE", f"/slurm/{rest.API}/job/99999999")
errors["cancel_finished"] = answer("DELETE", f"/slurm/{rest.API}/job/{ids['completed']}")
errors["db_unknown"] = answer("GET", f"/slurmdb/{rest.DB_API}/jobs?step=99999999")
errors["bad_token"] = answer("GET", f"/slurm/{rest.API}/jobs", token="not-a-token")
errors["unknown_path"] = answer("GET", "/slurm/v0.0.99/jobs")
save("rest-errors.json", errors)

(OUT / "rest-manifest.json").write_text(json.dumps(ids, indent=1, sort_keys=True) + "\n")
print("wrote", OUT / "rest-manifest.json", ids)
