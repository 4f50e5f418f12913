"""What the local backend's design costs with no library around it: ``python benchmarks/design_floor.py [N]``.

The shell row's target (1000 jobs in at most 2x ``xargs -P <cores> -n 1 bash -c``) asks how close the local
backend comes to a bare process pool. Part of the gap is the library's code; part is what the design asks
of every job whatever the code: a job script that records the exit code in a file, stdout and stderr files,
a job record another shell can find, a row in a state database, and a runner process that outlives the
submitter. This script measures that second part alone: the same work written as plainly as Python allows
(no options, no objects, no checks), in one run beside ``xargs``:

- the submitter, per job: writes the job script (the library's own, rendered once), inserts a row in one SQLite
  transaction (WAL, synchronous=NORMAL, as the local backend's store), writes a JSON job record (temporary
  name and rename) and pokes the runner over a Unix stream socket;
- the runner (a forked process): on each wake, reaps ended jobs and starts waiting ones up to the number of
  cores (opening their stdout and stderr files, ``posix_spawn`` of bash), and records both in one
  transaction;
- the waiter: polls the database, reads each ended job's exit file and writes its outcome beside its
  record (a symlink, as the registry does).

If this floor is already above the target on a machine, no work on the library's code can meet it there;
what the library adds over the floor is what its code costs. Prints both figures and their ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import settle_disk  # noqa: E402

CORES = os.cpu_count() or 1

EXIT_MARK, COMMAND_MARK = "/EXIT-FILE-PLACE", "COMMAND-PLACE"


def script_template(cwd: str) -> str:
    """The library's own job script for a shell job (rendered once, before the timing), with places for
    each job's exit file and command."""
    from cluster_core.script import render_script
    return render_script(COMMAND_MARK, exit_file=Path(EXIT_MARK), workdir=cwd, umask=0o022)


def connect(db: str) -> sqlite3.Connection:
    conn = sqlite3.connect(db, isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def begin(conn: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE with short retries (SQLite's own handler sleeps a millisecond at once)."""
    delay = 0.00002
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError:
            time.sleep(delay)
            delay = min(2 * delay, 0.001)


def runner(work: str, pokes: socket.socket, slots: int) -> None:
    """The forked runner's life: never returns."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    conn = connect(os.path.join(work, "jobs.db"))
    conn.execute("PRAGMA busy_timeout=0")
    sel = selectors.DefaultSelector()
    sel.register(pokes, selectors.EVENT_READ, "poke")
    sel.register(wake_r, selectors.EVENT_READ, "signal")
    devnull = os.open(os.devnull, os.O_RDONLY)
    envs: dict[str, dict[str, str]] = {}
    running: dict[int, int] = {}
    while True:
        for key, _ in sel.select():
            if key.data == "poke":
                data = pokes.recv(1 << 16)
                if not data or b"quit" in data:
                    os._exit(0)
            else:
                os.read(wake_r, 4096)
        ends = []
        while running:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            ends.append((time.time(), os.waitstatus_to_exitcode(status), running.pop(pid)))
        free = slots - len(running)
        if not ends and not free:
            continue
        begin(conn)
        conn.executemany("UPDATE jobs SET state='DONE', end_time=?, code=? WHERE id=?", ends)
        rows = conn.execute("SELECT id, script, env, outfile, errfile FROM jobs WHERE state='PENDING' ORDER BY id "
                            "LIMIT ?", (free,)).fetchall() if free else []
        starts = []
        for job_id, script, env_text, out_path, err_path in rows:
            env = envs.get(env_text)
            if env is None:
                env = envs[env_text] = json.loads(env_text)
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
            out, err = os.open(out_path, flags, 0o666), os.open(err_path, flags, 0o666)
            pid = os.posix_spawn("/bin/bash", ["/bin/bash", script], dict(env, CLUSTER_JOB_ID=str(job_id)),
                                 setsid=True, file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 0),
                                                            (os.POSIX_SPAWN_DUP2, out, 1),
                                                            (os.POSIX_SPAWN_DUP2, err, 2)])
            os.close(out)
            os.close(err)
            running[pid] = job_id
            starts.append((time.time(), pid, job_id))
        conn.executemany("UPDATE jobs SET state='RUNNING', start_time=?, pid=? WHERE id=?", starts)
        conn.execute("COMMIT")


def floor(n: int, work: str) -> dict:
    jobs, records = os.path.join(work, "jobs"), os.path.join(work, "records")
    os.mkdir(jobs)
    os.mkdir(records)
    db = os.path.join(work, "jobs.db")
    conn = connect(db)
    conn.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY, name TEXT, script TEXT, env TEXT, outfile TEXT, "
                 "errfile TEXT, state TEXT, submit_time REAL, start_time REAL, end_time REAL, pid INT, code INT)")
    conn.execute("PRAGMA busy_timeout=0")
    # the runner's socket: a connected pair (a Unix socket the runner listens on costs the same per poke)
    poke, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    before = os.times()  # the children's part: this run's runner and its jobs only
    pid = os.fork()
    if pid == 0:
        poke.close()
        runner(work, theirs, CORES)
    theirs.close()
    env = json.dumps(dict(os.environ))
    template = script_template(work)
    submitted = []
    for i in range(n):
        base = os.path.join(jobs, f"echo.{i:08x}.cluster")
        fd = os.open(base + ".sh", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o755)
        os.write(fd, template.replace(EXIT_MARK, base + ".exit").replace(COMMAND_MARK, f"echo job {i}").encode())
        os.close(fd)
        begin(conn)
        job_id = conn.execute("INSERT INTO jobs (name, script, env, outfile, errfile, state, submit_time) "
                              "VALUES ('echo', ?, ?, ?, ?, 'PENDING', ?)",
                              (base + ".sh", env, base + ".out", base + ".err", time.time())).lastrowid
        conn.execute("COMMIT")
        record = os.path.join(records, f"{job_id}.json")
        fd = os.open(record + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, json.dumps({"id": job_id, "backend": "local", "name": "echo", "script": base + ".sh",
                                 "outfile": base + ".out", "errfile": base + ".err"}).encode())
        os.close(fd)
        os.replace(record + ".tmp", record)
        poke.send(b"wake\n")
        submitted.append((job_id, base))
    t1 = time.perf_counter()
    cpu1 = time.process_time()
    waiting = dict(submitted)
    while waiting:
        for (job_id,) in conn.execute("SELECT id FROM jobs WHERE state='DONE'").fetchall():
            base = waiting.pop(job_id, None)
            if base is None:
                continue
            with open(base + ".exit") as fh:
                code, start, end, _ = fh.read().split()
            os.symlink(json.dumps({"code": int(code), "start": float(start), "end": float(end)}),
                       os.path.join(records, f"{job_id}.end"))
        if waiting:
            time.sleep(0.01)
    t2 = time.perf_counter()
    cpu2 = time.process_time()
    poke.send(b"quit\n")
    os.waitpid(pid, 0)
    after = os.times()
    with open(submitted[-1][1] + ".out") as fh:
        if fh.read() != f"job {n - 1}\n":
            raise AssertionError("the last job's output is wrong")
    return {"seconds": t2 - t0, "submit_seconds": t1 - t0,
            "cpu_ms_per_job": {"submitter": (cpu1 - cpu0) / n * 1e3, "waiter": (cpu2 - cpu1) / n * 1e3,
                               "runner and jobs": (after.children_user + after.children_system
                                                   - before.children_user - before.children_system) / n * 1e3}}


def xargs(n: int, work: str) -> float:
    lines = "".join(f"echo job {i}\n" for i in range(n)).encode()
    with open(os.path.join(work, "xargs.out"), "wb") as out:
        t0 = time.perf_counter()
        subprocess.run(["xargs", "-P", str(CORES), "-d", "\n", "-n", "1", "bash", "-c"], input=lines, stdout=out,
                       check=True)
        return time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("n", type=int, nargs="?", default=1000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--scratch", type=Path, default=Path(__file__).resolve().parent / "results",
                   help="where the runs' files go (removed at the end; default %(default)s)")
    p.add_argument("--settle", type=float, default=120.0,
                   help="longest wait for a quiet disk before each run, in seconds (default %(default)s)")
    a = p.parse_args(argv)
    a.scratch.mkdir(parents=True, exist_ok=True)
    top = tempfile.mkdtemp(prefix="design-floor-", dir=a.scratch)
    try:
        floors, bases = [], []
        for _ in range(a.repeats):  # alternated, so a disturbance of the machine hits both; each on a quiet
            # disk (see run.settle_disk), and nothing deleted before the end
            settle_disk(Path(top), limit=a.settle)
            bases.append(xargs(a.n, tempfile.mkdtemp(dir=top)))
            settle_disk(Path(top), limit=a.settle)
            floors.append(floor(a.n, tempfile.mkdtemp(dir=top)))
        best = min(floors, key=lambda f: f["seconds"])
        base = min(bases)
        print(f"N={a.n}, {CORES} cores, best of {a.repeats}:")
        print(f"  xargs -P {CORES} -n 1 bash -c: {base:.3f} s")
        print(f"  the design with no library (script, out/err, exit file, record, outcome, SQLite row, runner): "
              f"{best['seconds']:.3f} s ({best['seconds'] / base:.2f}x xargs; "
              f"submitting {best['submit_seconds']:.3f} s)")
        print("  CPU per job: " + ", ".join(f"{k} {v:.3f} ms" for k, v in best["cpu_ms_per_job"].items()))
        with open(os.path.join(a.scratch, "design_floor.json"), "w") as fh:
            json.dump({"n": a.n, "cores": CORES, "xargs_seconds": bases, "floor": floors,
                       "ratio": best["seconds"] / base}, fh, indent=1)
    finally:
        shutil.rmtree(top, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
