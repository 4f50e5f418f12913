"""Function jobs in the runner's warm workers (worker.py), through the public API: real runner, real
workers, real scripts where they fall back; no mocks. Functions are defined inside the tests so that
cloudpickle sends them by value (a function from this module would be imported by the worker)."""

from __future__ import annotations

import os
import re
import signal
import site
import stat
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

import cluster_core as cc
import cluster_local
from cluster_core import State
from cluster_core.script import read_exit_file
from local_helpers import gone, until


@pytest.fixture
def warm(local):
    """The local fixture, plus a fresh tracker (ids restart in each state dir) and the runner's pid."""
    from cluster_core.queue import reset_trackers
    reset_trackers("local")
    yield local
    reset_trackers("local")


def runner_pid() -> int:
    return until(cluster_local.runner_status, 10, "the runner to answer")["pid"]


def test_a_function_job_runs_warm_and_leaves_what_its_script_would(warm, monkeypatch, tmp_path):
    def job(x):
        import os
        import sys
        print("to stdout", x)
        print("to stderr", x, file=sys.stderr)
        return {"value": x * 2, "ppid": os.getppid(), "cwd": os.getcwd(), "mine": os.environ.get("WARM_TEST"),
                "job_id": os.environ["CLUSTER_JOB_ID"], "pwd": os.environ["PWD"], "argv0": sys.argv[0],
                "path0": sys.path[0], "marker": os.environ["CLUSTER_LOCAL_JOB"]}

    (tmp_path / "wd").mkdir()
    monkeypatch.setenv("WARM_TEST", "from the submitter")
    j = cc.submit(job, (21,), backend="local", workdir=str(tmp_path / "wd"))
    out = j.get(timeout=30)
    assert out["value"] == 42
    assert out["ppid"] == runner_pid()  # a worker forked by the runner, not an interpreter under bash
    assert out["cwd"] == out["pwd"] == out["path0"] == str(tmp_path / "wd")
    assert out["mine"] == "from the submitter" and out["job_id"] == j.id
    assert out["argv0"].endswith(os.path.join("cluster_core", "runner.py"))
    assert out["marker"].endswith(f":{j.id}")
    assert j.state is State.COMPLETED and j.exitcode == 0
    assert j.stdout == "to stdout 21\n" and j.stderr == "to stderr 21\n"
    text = j.files.exit.read_text()
    assert re.fullmatch(r"0 \d+\.\d+ \d+\.\d+ end\n", text), text
    ended = read_exit_file(j.files.exit)
    assert ended.returncode == 0 and 0 <= ended.runtime < 30
    assert stat.S_IMODE(j.files.pickle_out.stat().st_mode) == 0o600


def test_an_exception_is_reraised_with_the_remote_traceback(warm):
    def job(key):
        def deeper():
            raise LookupError(f"no such key: {key}")
        deeper()

    j = cc.submit(job, ("k",), backend="local")
    with pytest.raises(LookupError, match="no such key: k") as info:
        j.get(timeout=30)
    assert "in deeper" in info.value.__cause__.tb
    assert j.state is State.FAILED and j.exitcode == 1
    assert "LookupError: no such key: k" in j.stderr
    assert read_exit_file(j.files.exit).returncode == 1


def test_a_worker_runs_the_next_job_only_when_the_last_left_nothing_behind(warm, tmp_path):
    def pid():
        import os
        import sys
        return os.getpid(), os.getcwd(), os.environ.get("LEAKED"), "colorsys" in sys.modules

    def leaves_environment_and_directory():
        import os
        os.environ["LEAKED"] = "yes"
        os.chdir("/")
        return os.getpid()

    def imports_a_python_module():
        import colorsys  # noqa: F401  (plain Python, not loaded in the runner)
        import os
        return os.getpid()

    def imports_an_extension_module():
        import mmap  # noqa: F401  (an extension module, not loaded in the runner)
        import os
        return os.getpid()

    def leaves_a_process(path):
        import os
        import subprocess
        child = subprocess.Popen(["sleep", "300"])
        with open(path, "w") as fh:
            fh.write(str(child.pid))
        return os.getpid()

    first, cwd, leaked, colorsys = cc.submit(pid, backend="local").get(timeout=30)
    assert cwd == str(tmp_path) and leaked is None and not colorsys
    assert cc.submit(leaves_environment_and_directory, backend="local").get(timeout=30) == first
    # the same worker: its environment and directory are the next job's again
    assert cc.submit(pid, backend="local").get(timeout=30) == (first, str(tmp_path), None, False)
    # a plain Python module is unloaded after the job: the next one imports it afresh
    assert cc.submit(imports_a_python_module, backend="local").get(timeout=30) == first
    assert cc.submit(pid, backend="local").get(timeout=30) == (first, str(tmp_path), None, False)
    # an extension module stays loaded in a process: that worker leaves, a fresh one runs the next job
    assert cc.submit(imports_an_extension_module, backend="local").get(timeout=30) == first
    second = cc.submit(pid, backend="local").get(timeout=30)[0]
    assert second != first
    until(lambda: gone(first), 10, "the used worker to exit")
    # what a job leaves running is killed when it returns, and that worker leaves too
    assert cc.submit(leaves_a_process, (str(tmp_path / "child"),), backend="local").get(timeout=30) == second
    until(lambda: gone(int((tmp_path / "child").read_text())), 10, "the job's child to be killed")
    assert cc.submit(pid, backend="local").get(timeout=30)[0] not in (first, second)


def test_each_job_on_a_worker_sees_exactly_its_own_environment(warm, monkeypatch):
    """A worker sets the next job's environment from the last one's by what differs: a variable the last
    job had and this one lacks is gone, one that changed has its new value, the job's own ids are its own."""
    def env():
        import os
        return os.getpid(), os.environ.get("ONLY_FIRST"), os.environ.get("CHANGES"), os.environ["CLUSTER_JOB_ID"]

    monkeypatch.setenv("ONLY_FIRST", "1")
    monkeypatch.setenv("CHANGES", "a")
    first = cc.submit(env, backend="local")
    pid, only_first, changes, job_id = first.get(timeout=30)
    assert (only_first, changes, job_id) == ("1", "a", first.id)
    monkeypatch.delenv("ONLY_FIRST")
    monkeypatch.setenv("CHANGES", "b")
    second = cc.submit(env, backend="local")
    assert second.get(timeout=30) == (pid, None, "b", second.id)  # the same worker
    monkeypatch.setenv("ONLY_FIRST", "again")
    third = cc.submit(env, backend="local")
    assert third.get(timeout=30) == (pid, "again", "b", third.id)


def test_a_function_from_the_users_module_sees_that_module_as_it_is_now(warm, tmp_path, monkeypatch):
    """A function of an importable module goes by reference: the worker imports the module, and
    unloads it after the job, so a changed module is read again (the worker itself stays)."""
    import importlib
    (tmp_path / "warm_user_module.py").write_text("import os\ndef f(x):\n    return ('v1', x, os.getpid())\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("warm_user_module")
    try:
        version, x, first = cc.submit(module.f, (1,), backend="local").get(timeout=30)
        assert (version, x) == ("v1", 1)
        (tmp_path / "warm_user_module.py").write_text(
            "import os\ndef f(x):\n    return ('version 2', x, os.getpid())\n")
        assert cc.submit(module.f, (2,), backend="local").get(timeout=30) == ("version 2", 2, first)
    finally:
        sys.modules.pop("warm_user_module", None)


def test_one_worker_per_job_when_asked(warm, monkeypatch):
    monkeypatch.setenv("CLUSTER_LOCAL_WORKER_JOBS", "1")

    def pid():
        import os
        return os.getpid(), os.getppid()

    runs = [cc.submit(pid, backend="local").get(timeout=30) for _ in range(3)]
    assert len({p for p, _ in runs}) == 3 and {pp for _, pp in runs} == {runner_pid()}


def test_no_workers_when_asked(warm, monkeypatch):
    monkeypatch.setenv("CLUSTER_LOCAL_WORKER_JOBS", "0")

    def ppid():
        import os
        return os.getppid()

    assert cc.submit(ppid, backend="local").get(timeout=30) != runner_pid()  # bash ran the script


def test_cancel_and_time_limit_of_warm_jobs(warm, tmp_path):
    def sleeper(path):
        import os
        import time
        with open(path, "w") as fh:
            fh.write(str(os.getpid()))
        time.sleep(300)

    cancelled = cc.submit(sleeper, (str(tmp_path / "a"),), backend="local")
    until(lambda: (tmp_path / "a").exists() and (tmp_path / "a").read_text(), 30, "the job to start")
    worker = int((tmp_path / "a").read_text())
    assert psutil.Process(worker).ppid() == runner_pid()
    cancelled.cancel()
    assert cancelled.wait(timeout=30) is False
    assert cancelled.state is State.CANCELLED and cancelled.exitcode == 128 + signal.SIGTERM
    assert read_exit_file(cancelled.files.exit).returncode == 128 + signal.SIGTERM
    until(lambda: gone(worker), 10, "the cancelled job's worker to be gone")

    timed = cc.submit(sleeper, (str(tmp_path / "b"),), backend="local", time="1s")
    assert timed.wait(timeout=30) is False
    assert timed.state is State.TIMEOUT and timed.exitcode == 128 + signal.SIGTERM
    assert "time limit" in timed.record.reason

    def fine():
        return "still serving"
    assert cc.submit(fine, backend="local").get(timeout=30) == "still serving"


def test_a_function_that_ends_its_interpreter(warm):
    def exits():
        import os
        print("bye", flush=True)
        os._exit(7)

    j = cc.submit(exits, backend="local")
    assert j.wait(timeout=30) is False
    assert j.state is State.FAILED and j.exitcode == 7 and j.stdout == "bye\n"
    assert read_exit_file(j.files.exit).returncode == 7
    with pytest.raises(cc.JobFailedError, match="exit code 7"):
        j.get()


def test_map_runs_each_task_warm(warm):
    def task(x):
        import os
        print("task", x)
        return x * x, int(os.environ["CLUSTER_TASK_ID"]), os.getppid()

    tasks = cc.map(task, range(5), backend="local")
    results = cc.get(tasks, timeout=60)
    assert [r[:2] for r in results] == [(x * x, x) for x in range(5)]
    assert {r[2] for r in results} == {runner_pid()}
    assert [t.stdout for t in tasks] == [f"task {x}\n" for x in range(5)]
    assert all(read_exit_file(t.files.exit).returncode == 0 for t in tasks)


def test_another_interpreter_runs_the_script(warm, tmp_path):
    """A venv's python is a symlink to this very interpreter, but another environment: the job runs its
    script with it."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    # the new environment sees this one's packages (cluster_core, cloudpickle) through a .pth that adds
    # this environment's site-packages as a site directory (so its own .pth files, editable installs
    # among them, run too), wherever they are installed: --system-site-packages would only reach the base
    # interpreter's, which has none of them in a clean checkout's venv
    site_dir = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              capture_output=True, text=True, check=True).stdout.strip()
    ours = [p for p in site.getsitepackages() if os.path.isdir(p)]
    Path(site_dir, "_parent_env.pth").write_text(
        "".join(f"import site; site.addsitedir({p!r})\n" for p in ours))
    assert os.path.realpath(python) == os.path.realpath(sys.executable)

    def where():
        import os
        import sys
        return sys.prefix, os.getppid()

    cc.set_option("core.python", str(python))
    prefix, ppid = cc.submit(where, backend="local").get(timeout=60)
    assert prefix == str(venv) and ppid != runner_pid()
    cc.set_option("core.python", None)
    prefix, ppid = cc.submit(where, backend="local").get(timeout=60)
    assert prefix == sys.prefix and ppid == runner_pid()


def test_environment_modules_run_the_script(warm, tmp_path, monkeypatch):
    # a `module` command for the script's bash (non-interactive bash reads $BASH_ENV)
    (tmp_path / "modules.sh").write_text(f'module() {{ echo "$@" >> {tmp_path / "loaded"}; }}\n')
    monkeypatch.setenv("BASH_ENV", str(tmp_path / "modules.sh"))

    def ppid():
        import os
        return os.getppid()

    assert cc.submit(ppid, backend="local", modules=["gcc/12"]).get(timeout=30) != runner_pid()
    assert (tmp_path / "loaded").read_text() == "load gcc/12\n"


def test_other_interpreter_settings_run_the_script(warm, monkeypatch):
    def hash_seed():
        import os
        return os.environ.get("PYTHONHASHSEED"), os.getppid()

    assert cc.submit(hash_seed, backend="local").get(timeout=30)[1] == runner_pid()
    monkeypatch.setenv("PYTHONHASHSEED", "123")  # the runner started without it
    assert cc.submit(hash_seed, backend="local").get(timeout=30) != ("123", runner_pid())
    seed, ppid = cc.submit(hash_seed, backend="local").get(timeout=30)
    assert seed == "123" and ppid != runner_pid()


def test_runner_killed_while_a_warm_job_runs(warm, tmp_path):
    def gated(path):
        import os
        import time
        with open(path, "w") as fh:
            fh.write(str(os.getpid()))
        while os.path.exists(path):
            time.sleep(0.01)
        return "finished without its runner"

    gate = tmp_path / "gate"
    j = cc.submit(gated, (str(gate),), backend="local")
    until(lambda: gate.exists() and gate.read_text(), 30, "the job to start")
    worker = int(gate.read_text())
    old = runner_pid()
    os.kill(old, signal.SIGKILL)
    until(lambda: gone(old), 10, "the runner to die")
    # the next runner finds the worker by the marker it shows and adopts the job
    cluster_local.ensure_runner()
    until(lambda: int(j.id) in cluster_local.runner_status()["running"], 10, "the job to be adopted")
    assert runner_pid() != old and not gone(worker)
    gate.unlink()
    assert j.get(timeout=30) == "finished without its runner"  # from its result and exit file
    assert read_exit_file(j.files.exit).returncode == 0
    until(lambda: gone(worker), 10, "the orphaned worker to leave")

    def fine():
        return "ok"
    assert cc.submit(fine, backend="local").get(timeout=30) == "ok"


def test_the_interpreter_check():
    from cluster_local.pool import interpreter
    assert interpreter(sys.executable) is not None
    assert interpreter("python3") is None and interpreter("/no/such/python") is None


def test_cancel_a_warm_job_while_no_runner_runs(warm, tmp_path):
    def sleeper(path):
        import os
        import subprocess
        import time
        child = subprocess.Popen(["sleep", "300"])
        with open(path, "w") as fh:
            fh.write(f"{os.getpid()} {child.pid}")
        time.sleep(300)

    j = cc.submit(sleeper, (str(tmp_path / "pids"),), backend="local")
    until(lambda: (tmp_path / "pids").exists() and (tmp_path / "pids").read_text(), 30, "the job to start")
    pids = [int(p) for p in (tmp_path / "pids").read_text().split()]
    old = runner_pid()
    os.kill(old, signal.SIGKILL)
    until(lambda: gone(old), 10, "the runner to die")
    j.cancel()  # no runner: the cancelling process finds the worker by its marker and kills it
    assert j.wait(timeout=30) is False and j.state is State.CANCELLED
    until(lambda: all(gone(p) for p in pids), 10, "the worker and the job's child to be gone")


def test_a_warm_job_whose_files_cannot_be_opened_fails_as_its_script_would(warm, tmp_path):
    def never():
        return "ran"

    (tmp_path / "gone").mkdir()
    j = cc.submit(never, backend="local", hold=True, outfile=str(tmp_path / "gone" / "out"))
    (tmp_path / "gone").rmdir()
    cluster_local.release([j.id])
    assert j.wait(timeout=30) is False
    assert j.state is State.FAILED and "could not start" in j.record.reason
    assert not j.files.exit.exists()

    def fine():
        return "the worker serves on"
    assert cc.submit(fine, backend="local").get(timeout=30) == "the worker serves on"


def test_a_worker_killed_while_idle_is_replaced(warm):
    def pid():
        import os
        return os.getpid()

    first = cc.submit(pid, backend="local").get(timeout=30)
    assert first in cluster_local.runner_status()["workers"]
    os.kill(first, signal.SIGKILL)
    until(lambda: first not in cluster_local.runner_status()["workers"], 10, "the runner to forget the worker")
    assert cc.submit(pid, backend="local").get(timeout=30) != first


LEFTOVERS = {
    "a signal handler": "import signal; signal.signal(signal.SIGUSR1, lambda *a: None)",
    "a daemon thread": "import threading, time; threading.Thread(target=time.sleep, args=(300,), daemon=True).start()",
    "an open file": "import os; os.open('/dev/null', os.O_RDONLY)",
    "an atexit function": "import atexit; atexit.register(print, 'at exit')",
    "a logging handler": "import logging; logging.getLogger().addHandler(logging.NullHandler())",
    "a warnings filter": "import warnings; warnings.simplefilter('error')",
    "the recursion limit": "import sys; sys.setrecursionlimit(sys.getrecursionlimit() + 1)",
    "a patched builtin": "import builtins; builtins.print = lambda *a, **k: None",
    "a lower priority": "import os; os.nice(1)",
    "a resource limit": "import resource; s, h = resource.getrlimit(resource.RLIMIT_NOFILE); "
                        "resource.setrlimit(resource.RLIMIT_NOFILE, (s - 1, h))",
}


@pytest.mark.parametrize("what", sorted(LEFTOVERS))
def test_a_job_that_leaves_something_changed_gets_a_fresh_worker_after_it(warm, what):
    def changes(code):
        import os
        exec(code, {})
        return os.getpid()

    def pid():
        import os
        return os.getpid()

    first = cc.submit(pid, backend="local").get(timeout=30)
    assert cc.submit(changes, (LEFTOVERS[what],), backend="local").get(timeout=30) == first
    assert cc.submit(pid, backend="local").get(timeout=30) != first


def test_a_warm_job_submits_and_waits_for_jobs_of_its_own(warm):
    """A worker forked from the runner does not inherit its open SQLite database: a function job that submits
    jobs itself works warm (it failed with SQLite's "locking protocol" before the runner closed the database
    around the fork)."""
    def outer(n):
        import os

        import cluster_core as inner_cc
        jobs = [inner_cc.submit(f"echo inner {i}", backend="local") for i in range(n)]
        return os.getppid(), inner_cc.get(jobs, timeout=60)

    parent, outputs = cc.submit(outer, (3,), backend="local").get(timeout=90)
    assert parent == runner_pid()  # it ran in a warm worker
    assert outputs == ["inner 0\n", "inner 1\n", "inner 2\n"]
    again = cc.submit(lambda: 7, backend="local").get(timeout=30)  # the runner's database is open again
    assert again == 7
