"""The REST transport against the real slurmrestd that ci/slurm/up.sh starts (JWT from scontrol token).

Waits poll with a deadline, never a fixed sleep. A client that counts its requests checks "one query
per poll"; nothing is mocked.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from cluster_core.backend import ConfigError, SchedulerError, State, SubmitError
from cluster_core.options import check_arguments
from cluster_core.rendering import directive_lines
from cluster_slurm import render, rest

pytestmark = pytest.mark.slurm

TIMEOUT = 180.0  # the node is shared with other tests: a job may wait for a free CPU
SOCKET = "/run/slurmrestd/slurmrestd.socket"


class CountingClient(rest.Client):
    """A real client that also records each request it makes (method, path)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[str, str]] = []

    def _once(self, method, path, *args, **kwargs):
        self.calls.append((method, path.split("?")[0]))
        return super()._once(method, path, *args, **kwargs)


@pytest.fixture
def client(cluster_config, monkeypatch):
    monkeypatch.delenv("SLURM_JWT", raising=False)
    c = CountingClient()
    found = rest.detect(c)
    if not found.available:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"slurmrestd must run in CI (ci/slurm/up.sh): {found.reason}")
        pytest.skip(found.reason)
    c.calls.clear()
    return c


def write_script(path: Path, body: str, **keywords) -> tuple[Path, dict]:
    """A job script as the core writes one: #SBATCH lines from the plugin's rendering, quoted by the core."""
    options = check_arguments({"outfile": str(path.with_suffix(".out")), "errfile": str(path.with_suffix(".err")),
                               **keywords})
    lines = ["#!/bin/bash", *directive_lines(render.render(options), "#SBATCH", escape_backslash=True), body]
    path.write_text("\n".join(lines) + "\n")
    return path, options


def submit(c, tmp_path: Path, body: str, stem: str = "job", **keywords) -> str:
    script, options = write_script(tmp_path / f"{stem}.sh", body, **keywords)
    return rest.submit(script, options, (), c=c)


def wait_for(c, job_id: str, done=lambda job: job.state.finished, timeout: float = TIMEOUT, what="it to end"):
    deadline = time.monotonic() + timeout
    while True:
        job = {j.id: j for j in rest.parse_queue([job_id], None, None, c=c)}.get(job_id)
        if job is not None and done(job):
            return job
        if time.monotonic() > deadline:
            pytest.fail(f"job {job_id}: timed out after {timeout:g} s waiting for {what}; last seen {job}")
        time.sleep(0.3)


def test_detect_and_both_addresses(client):
    assert rest.detect(client).available
    by_socket = rest.Client(f"unix:{SOCKET}")
    found = rest.detect(by_socket)
    assert found.available and SOCKET in found.reason


def test_directives_workdir_umask_and_environment_like_sbatch(client, tmp_path, monkeypatch):
    here = tmp_path / "from here"
    here.mkdir()
    monkeypatch.chdir(here)
    monkeypatch.setenv("CLUSTER_REST_PROBE", "a value; with $pace")
    old = os.umask(0o027)
    try:
        job_id = submit(client, tmp_path, 'pwd; umask; printf "%s\\n" "$CLUSTER_REST_PROBE" "$SLURM_JOB_NAME"',
                        stem="env", name="it's a \"name\"")
    finally:
        os.umask(old)
    job = wait_for(client, job_id)
    assert (job.state, job.exitcode, job.name) == (State.COMPLETED, 0, "it's a \"name\"")
    out = (tmp_path / "env.out").read_text().splitlines()
    assert out == [str(here), "0027", "a value; with $pace", "it's a \"name\""]


@pytest.mark.parametrize("code, state", [(0, State.COMPLETED), (3, State.FAILED)])
def test_exit_code_and_state(client, tmp_path, code, state):
    job = wait_for(client, submit(client, tmp_path, f"exit {code}", stem=f"exit{code}"))
    assert (job.state, job.exitcode) == (state, code)


def test_job_that_left_the_controller_is_found_in_accounting(client, tmp_path):
    """After MinJobAge (5 s) slurmctld forgets a job: slurmdbd's answer, through slurmrestd, tells."""
    job_id = submit(client, tmp_path, "exit 4", stem="gone")
    wait_for(client, job_id)

    def forgotten():
        doc = client.request("GET", f"/slurm/{rest.API}/jobs")
        return not any(str(j["job_id"]) == job_id for j in doc["jobs"])

    deadline = time.monotonic() + TIMEOUT
    while not forgotten():
        assert time.monotonic() < deadline, "slurmctld kept the job past MinJobAge"
        time.sleep(0.5)
    client.calls.clear()
    job = {j.id: j for j in rest.parse_queue([job_id], None, None, c=client)}[job_id]
    # state from slurmdbd; its exit code for a plain non-zero exit is wrong in 22.05, so "not known"
    assert (job.state, job.exitcode) == (State.FAILED, None)
    assert client.calls == [("GET", f"/slurm/{rest.API}/jobs"), ("GET", f"/slurmdb/{rest.DB_API}/jobs")]


def test_array_tasks(client, tmp_path):
    array = submit(client, tmp_path, 'exit "$SLURM_ARRAY_TASK_ID"', stem="arr", array="0-2")

    def all_ended(_job):
        tasks = [j for j in rest.parse_queue([array], None, None, c=client) if j.array_id == array]
        return len(tasks) == 3 and all(t.state.finished for t in tasks)

    deadline = time.monotonic() + TIMEOUT
    while not all_ended(None):
        assert time.monotonic() < deadline
        time.sleep(0.3)
    tasks = {j.id: j for j in rest.parse_queue([array], None, None, c=client)}
    assert {k: (v.task_id, v.exitcode) for k, v in tasks.items()} == {
        f"{array}_0": (0, 0), f"{array}_1": (1, 1), f"{array}_2": (2, 2)}


def test_many_jobs_one_request_per_poll(client, tmp_path):
    ids = [submit(client, tmp_path, "sleep 30", stem=f"many{i}", hold=True) for i in range(20)]
    try:
        client.calls.clear()
        jobs = rest.parse_queue(ids, None, None, c=client)
        assert {j.id for j in jobs} == set(ids) and {j.state for j in jobs} == {State.HELD}
        assert client.calls == [("GET", f"/slurm/{rest.API}/jobs")]
    finally:
        rest.cancel(ids, c=client)


def test_cancel_running_pending_and_already_gone(client, tmp_path):
    running = submit(client, tmp_path, "sleep 60", stem="run")
    wait_for(client, running, lambda j: j.state is State.RUNNING, what="it to run")
    pending = submit(client, tmp_path, "sleep 60", stem="pend", hold=True)
    assert rest.cancel([running, pending, "99999999"], c=client) is True
    assert wait_for(client, running).state is State.CANCELLED
    assert wait_for(client, pending).state is State.CANCELLED
    assert rest.cancel([running], c=client) is True  # again: already ended, no error


@pytest.mark.parametrize("keywords, keyword", [({"partition": "no-such-partition"}, "partition"),
                                                ({"mem": 10_000_000}, "mem"),
                                                ({"account": "no-such-account"}, "account")])
def test_refused_submission_names_the_keyword(client, tmp_path, keywords, keyword):
    with pytest.raises(SubmitError) as info:
        submit(client, tmp_path, "true", stem="bad", **keywords)
    assert info.value.keyword == keyword and not info.value.transient
    assert "Slurm refused job bad.sh" in str(info.value)
    assert [m for m, _ in client.calls] == ["POST"]  # refused: never asked again


def test_words_for_a_users_own_script(client, tmp_path):
    """submit_file's case: the script has its own #SBATCH lines, the caller's words come on top."""
    script = tmp_path / "own.sh"
    script.write_text(f"#!/bin/bash\n#SBATCH -J theirs -o {tmp_path}/own-%j.out\necho from-own\n")
    job_id = rest.submit(script, {}, ["--job-name=ours"], c=client)
    job = wait_for(client, job_id)
    assert (job.state, job.name) == (State.COMPLETED, "ours")
    assert (tmp_path / f"own-{job_id}.out").read_text() == "from-own\n"


def test_a_refused_token_is_replaced(client, monkeypatch):
    """A token the server refuses (forged here; expired in life) is replaced from scontrol once."""
    class Forged(rest.Tokens):
        handed = 0

        def get(self):
            if not Forged.handed:
                Forged.handed += 1
                return rest.Token("eyJhbGciOiJIUzI1NiJ9.eyJzdW4iOiJyb290In0.forged", "root", time.time() + 999)
            return super().get()

    c = CountingClient(tokens=Forged())
    assert isinstance(rest.parse_queue(["99999999"], None, None, c=c), list)
    assert c.calls[:2] == [("GET", f"/slurm/{rest.API}/jobs")] * 2


def test_token_from_the_environment(client, monkeypatch):
    token = subprocess.run(["scontrol", "token", "lifespan=120"], capture_output=True, text=True,
                           check=True).stdout.strip().split("=", 1)[1]
    monkeypatch.setenv("SLURM_JWT", token)
    c = rest.Client()
    assert c.tokens.get().value == token and c.tokens.get().renewable is False
    assert rest.detect(c).available
    monkeypatch.setenv("SLURM_JWT", token[:-4] + "AAAA")
    with pytest.raises(SchedulerError, match=r"\$SLURM_JWT may have expired"):
        rest.Client().request("GET", f"/slurm/{rest.API}/jobs", retries=0)


def test_unreachable_slurmrestd_is_a_transient_error_naming_it(cluster_config, tmp_path):
    c = rest.Client("http://127.0.0.1:1")
    with pytest.raises(SchedulerError, match="cannot connect to slurmrestd at 127.0.0.1:1") as info:
        c.request("GET", f"/slurm/{rest.API}/jobs", retries=1, backoff=0.01)
    assert info.value.transient
    gone = rest.Client(f"unix:{tmp_path}/no-socket")
    assert not rest.detect(gone).available
    script = tmp_path / "s.sh"
    script.write_text("#!/bin/bash\ntrue\n")
    # never reached slurmrestd: tried again without asking whether the job exists, then refused
    with pytest.raises(SubmitError, match="slurmrestd could not submit") as info:
        rest.submit(script, {}, (), c=CountingClient("http://127.0.0.1:1"))
    assert info.value.transient


def set_config(path: Path, **values: str) -> None:
    path.write_text("[slurm]\n" + "".join(f"{k} = {v}\n" for k, v in values.items()))


def test_transport_setting(cluster_config, monkeypatch):
    monkeypatch.delenv(rest.URL_ENV, raising=False)
    rest._found.clear()
    assert rest.transport() == "commands" and rest.use_rest() is False
    set_config(cluster_config, transport="sideways")
    with pytest.raises(ConfigError, match="slurm.transport='sideways': expected one of commands, rest, auto"):
        rest.use_rest()
    set_config(cluster_config, transport="auto", rest_url="http://127.0.0.1:1")
    assert rest.use_rest() is False  # auto: the commands, when slurmrestd does not answer
    set_config(cluster_config, transport="rest", rest_url="http://127.0.0.1:1")
    with pytest.raises(SchedulerError, match="slurm.transport=rest, but slurmrestd cannot be used"):
        rest.use_rest()
    set_config(cluster_config, transport="rest", rest_url="unix:relative")
    with pytest.raises(ConfigError, match="absolute path"):
        rest.configured_url() and rest.Client()
    set_config(cluster_config, transport="auto")
    monkeypatch.setenv(rest.URL_ENV, f"unix:{SOCKET}")
    found = rest.detect()
    if found.available:  # up in CI
        assert rest.use_rest() is True
        assert rest.client().endpoint.socket_path == SOCKET
    rest._found.clear()


def test_plugin_says_why_rest_cannot_be_used(cluster_config):
    """Through the core's dispatch: slurm.transport=rest with slurmrestd away is a clear detection failure."""
    from cluster_core import plugins
    set_config(cluster_config, transport="rest", rest_url="http://127.0.0.1:1")
    rest._found.clear()
    found = plugins.backend("slurm").detect()
    assert not found.available and "cannot connect to slurmrestd at 127.0.0.1:1" in found.reason
    rest._found.clear()


# --- a slurmrestd of the test's own, restarted under a client ----------------------------------------------

@pytest.fixture
def own_restd():
    """Start and stop a second slurmrestd (the CI one's command line, on a unix socket of its own), so a
    restart can be tested without disturbing the shared one. Needs root, as ci/slurm/up.sh does."""
    if os.geteuid() != 0:
        pytest.skip("starting slurmrestd as its own user needs root")
    # pytest's tmp_path is root's alone (0700): the daemon's own user needs a directory it can reach
    sock_dir = Path(tempfile.mkdtemp(prefix="cc-restd-"))
    os.chmod(sock_dir, 0o755)
    shutil.chown(sock_dir, "slurmrestd", "slurmrestd")
    sock = sock_dir / "restd.socket"
    procs: list[subprocess.Popen] = []

    def start() -> None:
        sock.unlink(missing_ok=True)
        procs.append(subprocess.Popen(
            ["slurmrestd", "-u", "slurmrestd", "-g", "slurmrestd", "-a", "rest_auth/jwt",
             "-s", f"openapi/{rest.API},openapi/db{rest.API}", f"unix:{sock}"],
            env={**os.environ, "SLURM_JWT": "daemon"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def stop() -> None:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(10)

    start.socket = sock
    start.stop = stop
    try:
        yield start
    finally:
        stop()
        shutil.rmtree(sock_dir, ignore_errors=True)


def test_a_request_rides_out_a_slurmrestd_restart(client, own_restd):
    """Connection refused / no socket while slurmrestd restarts is retried, as the commands retry."""
    import threading
    own_restd()
    c = CountingClient(f"unix:{own_restd.socket}")
    deadline = time.monotonic() + 30
    while not rest.detect(c).available:
        assert time.monotonic() < deadline, "the test's slurmrestd did not come up"
        time.sleep(0.1)
    own_restd.stop()
    c.calls.clear()
    answer: dict = {}
    asker = threading.Thread(target=lambda: answer.update(
        doc=c.request("GET", f"/slurm/{rest.API}/jobs", retries=6, backoff=0.5)))
    asker.start()
    while not c.calls:  # the first try has met the stopped daemon
        assert asker.is_alive()
        time.sleep(0.05)
    own_restd()
    asker.join(60)
    assert "jobs" in answer.get("doc", {}) and len(c.calls) >= 2


def test_a_submission_that_never_reached_slurmrestd_is_sent_again_once(client, own_restd, tmp_path):
    """No socket: nothing was sent, so it is submitted again without asking, and exactly one job exists."""
    import threading
    script, options = write_script(tmp_path / "again.sh", "true", name="again")
    c = CountingClient(f"unix:{own_restd.socket}")
    result: dict = {}
    submitter = threading.Thread(target=lambda: result.update(id=rest.submit(script, options, (), c=c)))
    submitter.start()
    while not c.calls:  # the first try has met the missing socket
        assert submitter.is_alive(), result
        time.sleep(0.05)
    own_restd()  # comes up during the back-off
    submitter.join(60)
    job_id = result["id"]
    # the first try found no socket, so the second is a POST with no question before it; a later try
    # that met the daemon still starting may have asked first (GET), as it must when it cannot tell
    submit_path = f"/slurm/{rest.API}/job/submit"
    assert c.calls[:2] == [("POST", submit_path)] * 2
    comment = next(j["comment"] for j in client.request("GET", f"/slurm/{rest.API}/jobs")["jobs"]
                   if str(j["job_id"]) == job_id)
    same = [j for j in client.request("GET", f"/slurm/{rest.API}/jobs")["jobs"] if j["comment"] == comment]
    assert len(same) == 1
    assert wait_for(client, job_id).state is State.COMPLETED
