"""Capture the Grid Engine output the parser tests read, from the real cell ci/sge/up.sh starts.

    python plugins/cluster_sge/tests/capture_fixtures.py

Submits one job per scenario (about 90 s), polls ``qstat -xml -r -u '*'`` every 0.2 s meanwhile and keeps
the first snapshot in which each state code appears, then writes every file under tests/fixtures/ again
(see its README) and manifest.json, which maps each scenario to its job number. Needs root (min_uid 0
on the CI cell) or any user allowed to submit; suspends and resumes the queue all.q for a moment.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).parent / "fixtures"
SUBMIT = ["qsub", "-terse", "-S", "/bin/bash", "-j", "n"]


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(args), capture_output=True, text=True, env={"LC_ALL": "C", **_env()})
    if check and proc.returncode != 0:
        raise RuntimeError(f"{args} failed: {proc.stderr or proc.stdout}")
    return proc


def _env() -> dict:
    import os
    return dict(os.environ)


class Observer(threading.Thread):
    """Polls qstat and keeps the first full snapshot in which each state code shows up."""

    def __init__(self):
        super().__init__(daemon=True)
        self.seen: dict[str, str] = {}
        self.stop = threading.Event()

    def run(self):
        import xml.etree.ElementTree as ET
        while not self.stop.is_set():
            text = sh("qstat", "-xml", "-r", "-u", "*", check=False).stdout
            try:
                codes = {el.findtext("state") for el in ET.fromstring(text).iter("job_list")}
            except ET.ParseError:
                codes = set()
            for code in codes - set(self.seen) - {None}:
                self.seen[code] = text
            time.sleep(0.2)


def wait_until(what: str, condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


def state_of(number: str) -> str:
    text = sh("qstat", "-u", "*", check=False).stdout
    for line in text.splitlines()[2:]:
        words = line.split()
        if words and words[0] == number:
            return words[4]
    return ""


def in_qacct(number: str) -> bool:
    return sh("qacct", "-j", number, check=False).returncode == 0


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="sge-capture-"))
    work.chmod(0o755)
    manifest: dict[str, str] = {}
    version = sh("qstat", "-help").stdout.splitlines()[0]

    def script(name: str, body: str) -> Path:
        path = work / f"{name}.sh"
        path.write_text(f"#!/bin/bash\n{body}\n")
        return path

    def qsub(scenario: str, body: str, *opts: str) -> str:
        out = sh(*SUBMIT, "-N", scenario[:40], "-o", str(work / f"{scenario}.out"),
                 "-e", str(work / f"{scenario}.err"), "-wd", str(work), *opts,
                 str(script(scenario, body))).stdout.strip()
        number = out.split(".")[0]
        manifest[scenario] = number
        (HERE / "qsub-terse.txt").open("a").write(f"{' '.join(opts) or '(plain)'}\t{out}\n")
        return number

    HERE.mkdir(exist_ok=True)
    (HERE / "qsub-terse.txt").write_text("# qsub -terse options<TAB>stdout\n")
    observer = Observer()
    observer.start()

    # ---- phase 1: live states ----
    bad = qsub("bad_wd", "true", "-wd", "/nonexistent/dir")  # first: it needs a free slot to fail in
    wait_until("the bad_wd job to reach error state", lambda: "E" in state_of(bad))
    run = qsub("running", "sleep 120", "-r", "y")
    wait_until("the first job to run", lambda: state_of(run) == "r")
    arr = qsub("array", "sleep 120", "-t", "1-4", "-tc", "1")
    wait_until("the array's first task to run", lambda: "r" in state_of(arr))
    qsub("held", "true", "-h")
    qsub("after_running", "true", "-hold_jid", run)
    qsub("pe2", "true", "-pe", "smp", "2")
    qsub("name'with\"quotes$(x)", "true", "-h")
    qsub("second_queue", "true", "-q", "second.q", "-h")
    (HERE / "qstat-live.xml").write_text(sh("qstat", "-xml", "-r", "-u", "*").stdout)
    (HERE / "qstat-plain-live.txt").write_text(sh("qstat", "-u", "*").stdout)
    (HERE / "qstat-j-error.xml").write_text(sh("qstat", "-xml", "-j", bad, check=False).stdout)
    sh("qmod", "-sj", run)
    wait_until("a suspended job", lambda: state_of(run) == "s")
    (HERE / "qstat-suspended.xml").write_text(sh("qstat", "-xml", "-r", "-u", "*").stdout)
    sh("qmod", "-usj", run)
    sh("qmod", "-sq", "all.q")
    wait_until("a job in a suspended queue", lambda: state_of(run) == "S", timeout=20)
    (HERE / "qstat-queue-suspended.xml").write_text(sh("qstat", "-xml", "-r", "-u", "*").stdout)
    sh("qmod", "-usq", "all.q")
    wait_until("the queue to resume", lambda: state_of(run) == "r", timeout=20)
    sh("qmod", "-rj", run)  # rerun a restartable job: Rq, then Rr
    wait_until("the rerun job to run again", lambda: state_of(run) in ("Rr", "r"), timeout=30)
    sh("qdel", *manifest.values(), check=False)
    wait_until("the queue to empty", lambda: not sh("qstat", "-u", "*").stdout.strip(), timeout=60)

    # ---- phase 2: how jobs end ----
    start = time.time() - 60
    qsub("exit0", "echo out; echo err >&2")
    qsub("exit3", "exit 3")
    qsub("array_exits", "exit $((SGE_TASK_ID - 1))", "-t", "1-3")
    qsub("h_rt", "sleep 60", "-l", "h_rt=0:0:3")
    qsub("s_rt", "sleep 60", "-l", "s_rt=0:0:2,h_rt=0:0:30")
    qsub("self_kill9", "kill -9 $$")
    qsub("h_vmem", "python3 -c 'x = bytearray(500 * 1024 * 1024)'", "-l", "h_vmem=100M")
    qsub("pe2_done", "true", "-pe", "smp", "2")
    deleted = qsub("deleted_running", "sleep 120")
    wd = qsub("bad_wd_done", "true", "-wd", "/nonexistent/dir")
    e100 = qsub("exit100", "exit 100")
    wait_until("deleted_running to start", lambda: state_of(deleted) == "r", timeout=60)
    sh("qdel", deleted)
    wait_until("the error states", lambda: "E" in state_of(wd) and "E" in state_of(e100), timeout=60)
    (HERE / "qstat-j-error-after-run.xml").write_text(sh("qstat", "-xml", "-j", f"{wd},{e100}").stdout)
    sh("qdel", wd, e100)
    numbers = [n for s, n in manifest.items() if s in ("exit0", "exit3", "array_exits", "h_rt", "s_rt",
                                                       "self_kill9", "h_vmem", "pe2_done", "deleted_running",
                                                       "bad_wd_done", "exit100")]
    wait_until("every job to leave qstat", lambda: not sh("qstat", "-u", "*").stdout.strip(), timeout=120)
    wait_until("accounting to know them", lambda: all(in_qacct(n) for n in numbers), timeout=60)
    observer.stop.set()
    begin = time.strftime("%Y%m%d%H%M.%S", time.localtime(start))
    (HERE / "qacct-all.txt").write_text(sh("qacct", "-j", "*", "-b", begin).stdout)
    (HERE / "qacct-one.txt").write_text(sh("qacct", "-j", manifest["exit3"]).stdout)
    (HERE / "h_vmem.err").write_text((work / "h_vmem.err").read_text())

    # ---- messages ----
    lines = []
    for opts in (["-q", "nosuch.q"], ["-l", "h_vmem=abc"], ["-l", "nosuch=1"], ["-pe", "nosuch", "2"],
                 ["-P", "nosuch"], ["-t", "0-3"], ["-a", "2099"], ["-ar", "99"], ["-p", "2000"],
                 ["-l", "h_rt=1:00:00:00"], ["-l", "exclusive=TRUE"], ["-l", "gpu=1"], ["-N", "1abc"],
                 ["-N", "a b"], ["-o", "/tmp/a:b"], ["-o", "/tmp/a,b"], ["-hold_jid", "99999999"],
                 ["-nosuchoption"], ["-w", "e", "-pe", "smp", "99"]):
        proc = sh(*SUBMIT, "-h", "-o", "/dev/null", "-e", "/dev/null", *opts, str(script("err", "true")),
                  check=False)
        lines.append(f"## qsub {' '.join(opts)}\nrc={proc.returncode}\n{proc.stdout}{proc.stderr}")
        if proc.returncode == 0:
            sh("qdel", proc.stdout.strip().split(".")[0], check=False)
    (HERE / "qsub-errors.txt").write_text("\n".join(lines))
    lines = []
    for args in (["qacct", "-j", "99999999"], ["qdel", "99999999"], ["qdel", f"{manifest['array_exits']}.9"],
                 ["qstat", "-j", "99999999"], ["qstat", "-g", "c"], ["qstat", "-help"]):
        proc = sh(*args, check=False)
        out = proc.stdout if args != ["qstat", "-help"] else proc.stdout.splitlines()[0] + "\n"
        lines.append(f"## {' '.join(args)}\nrc={proc.returncode}\n{out}{proc.stderr}")
    (HERE / "commands.txt").write_text("\n".join(lines))

    observed = HERE / "observed"
    observed.mkdir(exist_ok=True)
    for old in observed.glob("*.xml"):
        old.unlink()
    for code, text in sorted(observer.seen.items()):
        (observed / f"qstat-{code}.xml").write_text(text)
    manifest["_version"] = version
    manifest["_timezone"] = time.strftime("%Z")
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"captured {len(manifest) - 2} scenarios; state codes seen: {', '.join(sorted(observer.seen))}")


if __name__ == "__main__":
    sys.exit(main())
