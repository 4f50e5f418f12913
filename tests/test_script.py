import os
import pickle
import signal
import stat
import subprocess
import sys
import time

import psutil
import pytest

from cluster_core.script import (FILE_RE, atomic_write, function_command, job_files, payload_for,
                                 read_exit_file, render_script, safe_name)


def run_script(path, **kw):
    return subprocess.run(["/bin/bash", str(path)], capture_output=True, text=True, **kw)


def test_naming_convention(tmp_path):
    files = job_files(tmp_path, "my job; rm -rf /", token="0123abcd")
    assert files.script.name == "my_job_rm_-rf.0123abcd.cluster.sh"
    for path in files.all():
        assert FILE_RE.match(path.name), path.name
    assert not FILE_RE.match("notes.cluster.sh")
    assert not FILE_RE.match("x.0123abcd.cluster.sh.bak")
    assert safe_name("123") == "j123" and safe_name("") == "job"


@pytest.mark.parametrize("command,rc,out", [
    ("echo hello", 0, "hello\n"),
    ("echo partial; exit 3", 3, "partial\n"),
    ("false", 1, ""),
    ("set -e\nfalse\necho never", 1, ""),
    ("printf '%s\\n' \"$((6*7))\" '$(whoami)' ';' \"a'b\"", 0, "42\n$(whoami)\n;\na'b\n"),
])
def test_script_records_exit_status(tmp_path, command, rc, out):
    files = job_files(tmp_path, "t")
    files.script.write_text(render_script(command, exit_file=files.exit))
    proc = run_script(files.script)
    assert proc.returncode == rc
    assert proc.stdout == out
    record = read_exit_file(files.exit)
    assert record.returncode == rc
    assert record.runtime is not None and record.runtime >= 0
    assert files.exit.read_text().endswith(" end\n")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_job_killed_by_a_signal_records_it(tmp_path, sig):
    """A cancel or a time limit signals the job's processes: the exit file says 128 + the signal (bash
    alone would record the status of the last command that finished, 0 here) and the shell still dies
    by the signal, as its scheduler expects."""
    files = job_files(tmp_path, "t")
    files.script.write_text(render_script("true; sleep 300", exit_file=files.exit))
    proc = subprocess.Popen(["/bin/bash", str(files.script)], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def sleeping() -> bool:  # sleep itself runs (a signal sent while bash forks it may be missed)
        return any(c.name() == "sleep" for c in psutil.Process(proc.pid).children())
    try:
        for _ in range(3000):
            if sleeping() or proc.poll() is not None:
                break
            time.sleep(0.01)
        assert sleeping()
        os.killpg(proc.pid, sig)
        assert proc.wait(timeout=30) == -sig
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert read_exit_file(files.exit).returncode == 128 + sig


@pytest.mark.parametrize("parents,requires,runs,not_run", [
    # parent exit files ("" = none written: killed, or cancelled before it ran) and what the job wants
    ({"a": "0", "b": "0"}, [("afterok", ["a", "b"])], True, None),
    ({"a": "0", "b": "3"}, [("afterok", ["a", "b"])], False, "b.exit"),
    ({"a": ""}, [("afterok", ["a"])], False, "a.exit"),
    ({"a": "0"}, ["a"], True, None),                                     # a bare file: afterok
    ({"a": "2"}, [("afternotok", ["a"])], True, None),
    ({"a": ""}, [("afternotok", ["a"])], True, None),
    ({"a": "not-run x.exit"}, [("afternotok", ["a"])], True, None),     # cancelled: did not succeed
    ({"a": "0"}, [("afternotok", ["a"])], False, "a.exit succeeded"),
    ({"t0": "0", "t1": "1"}, [("afternotok", ["t0", "t1"])], True, None),  # an array: one task failed
    ({"t0": "0", "t1": "0"}, [("afternotok", ["t0", "t1"])], False, "t0.exit succeeded"),
    ({"a": "0", "b": "1"}, [("afterok", ["a"]), ("afternotok", ["b"])], True, None),
    ({"a": "0", "b": "0"}, [("afterok", ["a"]), ("afternotok", ["b"])], False, "b.exit succeeded"),
])
def test_required_outcomes(tmp_path, parents, requires, runs, not_run):
    """The script of a job on a backend that releases it once its dependencies ended however they ended
    (Grid Engine) checks their outcome itself: afterok wants every exit file to say 0, afternotok one that
    does not (per dependency: the exit files of an array's tasks)."""
    parent_dir = tmp_path / "parents $(x)"
    parent_dir.mkdir()
    for name, first in parents.items():
        if first:
            (parent_dir / f"{name}.exit").write_text(f"{first} 1.0 2.0 end\n")
    files = job_files(tmp_path, "t")
    req = [parent_dir / f"{r}.exit" if isinstance(r, str) else (r[0], [parent_dir / f"{n}.exit" for n in r[1]])
           for r in requires]
    files.script.write_text(render_script("echo ran", exit_file=files.exit, requires=req))
    proc = run_script(files.script)
    assert proc.returncode == 0
    record = read_exit_file(files.exit)
    if runs:
        assert proc.stdout == "ran\n" and record.returncode == 0 and record.not_run is None
    else:
        assert proc.stdout == "" and record.not_run == not_run
        assert "cluster-core: not run:" in proc.stderr


def test_script_quotes_what_the_library_adds(tmp_path):
    workdir = tmp_path / "dir with 'quotes' and $(x)"
    workdir.mkdir()
    files = job_files(tmp_path / "jobs dir", "t")
    files.jobdir.mkdir()
    text = render_script("pwd; echo \"$GREETING\"", exit_file=files.exit, workdir=str(workdir),
                         env={"GREETING": "hi; $(rm -rf /) `x`"}, directives=["#TOY --x"])
    assert text.startswith("#!/bin/bash\n#TOY --x\n")
    files.script.write_text(text)
    proc = run_script(files.script)
    assert proc.stdout == f"{workdir}\nhi; $(rm -rf /) `x`\n"
    assert read_exit_file(files.exit).returncode == 0


def test_missing_workdir_fails_the_job(tmp_path):
    files = job_files(tmp_path, "t")
    files.script.write_text(render_script("echo ran", exit_file=files.exit, workdir=str(tmp_path / "nope")))
    proc = run_script(files.script)
    assert proc.returncode == 1 and "ran" not in proc.stdout
    assert read_exit_file(files.exit).returncode == 1


def test_read_exit_file_edge_cases(tmp_path):
    assert read_exit_file(tmp_path / "missing") is None
    (tmp_path / "empty").write_text("")
    assert read_exit_file(tmp_path / "empty") is None
    (tmp_path / "short").write_text("7 end\n")
    rec = read_exit_file(tmp_path / "short")
    assert rec.returncode == 7 and rec.runtime is None
    (tmp_path / "half").write_text("13 1764000000.1")  # caught while the job was writing it
    assert read_exit_file(tmp_path / "half") is None


def test_atomic_write_mode_and_no_leftovers(tmp_path):
    target = tmp_path / "secret.pkl"
    atomic_write(target, b"data", mode=0o600)
    assert target.read_bytes() == b"data"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret.pkl"]


def _square_plus(x, offset=0):
    return x * x + offset


def test_runner_returns_value_and_exception(tmp_path):
    files = job_files(tmp_path, "f")
    atomic_write(files.pickle_in, payload_for(_square_plus, (7,), {"offset": 1}), mode=0o600)
    proc = subprocess.run(function_command(files), shell=True, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    result = pickle.loads(files.pickle_out.read_bytes())
    assert result == {"ok": True, "value": 50}
    assert stat.S_IMODE(files.pickle_out.stat().st_mode) == 0o600

    def broken(n):
        raise KeyError(f"missing {n}")

    atomic_write(files.pickle_in, payload_for(broken, (5,), {}), mode=0o600)
    proc = subprocess.run(function_command(files), shell=True, capture_output=True, text=True)
    assert proc.returncode == 1
    assert "KeyError" in proc.stderr
    result = pickle.loads(files.pickle_out.read_bytes())
    assert isinstance(result["error"], KeyError) and "in broken" in result["traceback"]


def test_runner_usage_error():
    proc = subprocess.run([sys.executable, "-m", "cluster_core.runner"], capture_output=True, text=True)
    assert proc.returncode == 2 and "usage" in proc.stderr


MAIN_SCRIPT = r'''
import pickle, subprocess, sys
from pathlib import Path
from cluster_core.script import atomic_write, function_command, job_files, payload_for

class Point:  # defined in __main__: the node has no such module attribute, so it travels by value
    def __init__(self, x):
        self.x = x

def make(x):
    return Point(x), (lambda: x * 2)

files = job_files(Path(sys.argv[1]), "main")
atomic_write(files.pickle_in, payload_for(make, (21,), {}), mode=0o600)
proc = subprocess.run(function_command(files), shell=True, capture_output=True, text=True)
assert proc.returncode == 0, proc.stderr
result = pickle.loads(files.pickle_out.read_bytes())
point, twice = result["value"]
assert isinstance(point, Point) and point.x == 21 and twice() == 42, result
print("ok")
'''


def test_runner_returns_values_of_classes_and_lambdas_defined_in_main(tmp_path):
    """The standard pickler refuses them on the node (no ``__main__.Point`` there); cloudpickle writes
    them by value, and the submitter gets instances of its own class back."""
    script = tmp_path / "submitter.py"
    script.write_text(MAIN_SCRIPT)
    proc = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout == "ok\n", proc.stderr


def test_runner_imports_no_cloudpickle_for_a_function_by_reference(tmp_path):
    """What every task pays: a function importable by name and a plain value need only the standard
    library on the node."""
    files = job_files(tmp_path, "f")
    atomic_write(files.pickle_in, payload_for(pow, (3, 4), {}), mode=0o600)
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "cluster_core.runner",
                           str(files.pickle_in), str(files.pickle_out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert pickle.loads(files.pickle_out.read_bytes()) == {"ok": True, "value": 81}
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time")}
    assert "pickle" in imported and "cloudpickle" not in imported


def test_write_script_new_and_existing(tmp_path):
    import os
    from cluster_core.script import write_script
    path = tmp_path / "a.cluster.sh"
    old = os.umask(0o077)
    try:
        assert write_script(path, "echo 1\n") is True
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o755 and path.read_text() == "echo 1\n"
    inode = path.stat().st_ino
    assert write_script(path, "echo 2\n") is False
    assert path.read_text() == "echo 2\n" and path.stat().st_ino != inode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.cluster.sh"]


def _explode():
    raise RuntimeError("this call was unpickled")


class _Bomb:
    """An argument that cannot be unpickled: a task that reads another task's call fails."""

    def __reduce__(self):
        return (_explode, ())


def test_an_array_task_reads_its_own_call_alone(tmp_path):
    """Each task unpickles only its own (args, kwargs): a call that cannot be loaded harms its task alone,
    and no task's cost or memory grows with the others' arguments."""
    from cluster_core import runner
    src = tmp_path / "in.pkl"
    src.write_bytes(payload_for(pow, calls=[((2, 3), {}), ((_Bomb(),), {}), ((5, 2), {"mod": 7})]))
    for task, expected in ((0, 8), (2, 4)):
        out = tmp_path / f"out{task}.pkl"
        assert runner.main([str(src), str(out), "--task", str(task)]) == 0
        assert pickle.loads(out.read_bytes())["value"] == expected
    out = tmp_path / "out1.pkl"
    assert runner.main([str(src), str(out), "--task", "1"]) == 1
    assert "this call was unpickled" in pickle.loads(out.read_bytes())["traceback"]
    out = tmp_path / "out3.pkl"
    assert runner.main([str(src), str(out), "--task", "3"]) == 1
    assert "task 3: this job's array has tasks 0 to 2" in pickle.loads(out.read_bytes())["traceback"]


def test_an_input_written_before_calls_were_stored_one_by_one_still_runs(tmp_path):
    import cloudpickle

    from cluster_core import runner
    src = tmp_path / "in.pkl"
    head = pickle.dumps({"sys_path": [], "cwd": str(tmp_path), "imports": []})
    src.write_bytes(head + cloudpickle.dumps({"function": pow, "args": (), "kwargs": {},
                                              "calls": [((2, 3), {}), ((3, 2), {})]}))
    out = tmp_path / "out.pkl"
    assert runner.main([str(src), str(out), "--task", "1"]) == 0
    assert pickle.loads(out.read_bytes())["value"] == 9
