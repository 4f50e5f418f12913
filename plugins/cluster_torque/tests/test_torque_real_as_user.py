"""Run test_torque_real.py and test_torque_faults.py as the normal user pbstest, from a test suite
running as root (CI runs pytest as root: .ci/run -> ci/test.sh). Torque's qsub refuses root and OpenPBS
mishandles root jobs, so the real-server tests must submit as a normal user; ci/torque/up.sh and
ci/openpbs/up.sh create pbstest.

For each server that is up, one child ``pytest test_torque_real.py::Test<Server>Conformance
test_torque_faults.py::Test<Server>Faults`` runs as pbstest (both children at once: the servers are
independent), with $CLUSTER_TORQUE_BIN naming the server's commands, $CI passed through, and a private
work directory for pytest's tmp_path, config and state. Its python is one pbstest can run: the
interpreter running this test when pbstest can, else a small venv of the system python of the same
version that reads the site-packages of this one (the repository's .venv: pyenv's interpreters under
/root are closed to other users). Function jobs run that python on the node too. The test passes when
the child passes, and shows the child's output when not.

Outside CI, a server that is not up skips with its reason; under CI=true it fails. As a normal user,
these tests skip: the modules run directly.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from torque_testlib import REAL_SERVERS, in_ci, server_status

USER = os.environ.get("CLUSTER_TEST_PBS_USER", "pbstest")
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
# the modules the child runs, and each one's test class per server
MODULES = {
    HERE / "test_torque_real.py": {"torque": "TestTorqueConformance", "openpbs": "TestOpenPBSConformance"},
    HERE / "test_torque_faults.py": {"torque": "TestTorqueFaults", "openpbs": "TestOpenPBSFaults"},
}
CHILD_TIMEOUT = 900.0
TAIL_LINES = 150


def _as_user(*argv: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", USER, "--", *argv], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def _site_dirs() -> list[str]:
    """The site-packages of the running interpreter, then those of the repository's .venv."""
    dirs = [d for d in site.getsitepackages() if os.path.isdir(d)]
    v = f"python{sys.version_info.major}.{sys.version_info.minor}"
    venv = REPO / ".venv" / "lib" / v / "site-packages"
    if venv.is_dir() and str(venv) not in dirs:
        dirs.append(str(venv))
    return dirs


_IMPORTS = "import cluster_core, cluster_torque, cloudpickle, pytest"


def _python_for_user(workdir: Path) -> str:
    """An interpreter the user can run that imports cluster_core, this plugin and pytest."""
    if _as_user(sys.executable, "-c", _IMPORTS).returncode == 0:
        return sys.executable
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    base = shutil.which(f"python{version}", path="/usr/local/bin:/usr/bin:/bin")
    if base is None:
        pytest.fail(f"{USER} cannot run {sys.executable}, and there is no system python{version} to build "
                    "a venv from", pytrace=False)
    venv = workdir / "venv"
    subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
    pth = venv / "lib" / f"python{version}" / "site-packages" / "_cluster_core_tests.pth"
    pth.write_text("".join(f"import site; site.addsitedir({d!r})\n" for d in _site_dirs()))
    python = str(venv / "bin" / "python")
    check = _as_user(python, "-c", _IMPORTS)
    if check.returncode != 0:
        pytest.fail(f"{USER} cannot import the packages under test with {python} (reading "
                    f"{', '.join(_site_dirs())}): {check.stderr.strip()[-1500:]}\nThe repository and its .venv "
                    f"must be readable by {USER} (run the suite through ci/test.sh)", pytrace=False)
    return python


class Child:
    """One ``pytest <module>::<class> ...`` running as the user; output in a log file."""

    def __init__(self, key: str, workdir: Path, python: str):
        self.key = key
        self.workdir = workdir
        self.log = workdir / f"{key}.log"
        account = pwd.getpwnam(USER)
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": account.pw_dir, "USER": USER, "LOGNAME": USER,
            "LANG": os.environ.get("LANG", "C.UTF-8"), "TMPDIR": str(workdir / "tmp"),
            "XDG_CONFIG_HOME": str(workdir / "config"), "XDG_STATE_HOME": str(workdir / "state"),
            "XDG_CACHE_HOME": str(workdir / "cache"), "XDG_RUNTIME_DIR": str(workdir / "run"),
            "PYTHONDONTWRITEBYTECODE": "1", "CLUSTER_TORQUE_BIN": REAL_SERVERS[key][1],
        }
        if "CI" in os.environ:
            env["CI"] = os.environ["CI"]
        argv = ["runuser", "-u", USER, "--", "env", "-i", *(f"{k}={v}" for k, v in env.items()),
                python, "-m", "pytest", *(f"{module}::{classes[key]}" for module, classes in MODULES.items()),
                "-p", "no:cacheprovider",
                "--basetemp", str(workdir / f"pytest-{key}"), "-o", "addopts=", "-q", "-rfEs",
                "--durations=5", "--color=no"]
        self.argv = argv
        self.started = time.monotonic()
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(argv, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        self.seconds = None

    def wait(self, timeout: float) -> tuple[int, str]:
        try:
            rc = self.proc.wait(timeout=max(1.0, timeout - (time.monotonic() - self.started)))
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the child's own process group (runuser and pytest)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            rc = None
        self.seconds = time.monotonic() - self.started
        text = self.log.read_text(errors="replace")
        if rc is None:
            text += f"\n[killed after {timeout:g} s]"
        return rc, text


_children: dict[str, Child] = {}


def _private_dir(path: Path, account: pwd.struct_passwd) -> Path:
    path.mkdir(mode=0o700)
    os.chown(path, account.pw_uid, account.pw_gid)
    return path


@pytest.fixture(scope="module")
def children():
    """Start the child run of every server that is up, all at once; yield {key: Child or reason}."""
    if os.geteuid() != 0:
        pytest.skip("not root: test_torque_real.py runs the real-server tests directly")
    try:
        account = pwd.getpwnam(USER)
    except KeyError:
        reason = f"user {USER} does not exist (ci/torque/up.sh and ci/openpbs/up.sh create it)"
        if in_ci():
            pytest.fail(f"CI=true but {reason}", pytrace=False)
        pytest.skip(reason)
    status = {key: server_status(key) for key in REAL_SERVERS}
    started: dict[str, object] = {key: reason for key, (up, reason) in status.items() if not up}
    if len(started) == len(REAL_SERVERS):
        yield started
        return
    workdir = Path(tempfile.mkdtemp(prefix=f"cluster-core-{USER}-", dir="/tmp"))
    os.chown(workdir, account.pw_uid, account.pw_gid)
    python = _python_for_user(workdir)
    for key, (up, _) in status.items():
        if up:
            sub = _private_dir(workdir / key, account)
            for name in ("tmp", "config", "state", "cache", "run"):
                _private_dir(sub / name, account)
            started[key] = Child(key, sub, python)
    yield started
    for child in started.values():
        if isinstance(child, Child) and child.proc.poll() is None:
            child.wait(0)
    if all(isinstance(c, Child) and c.proc.returncode == 0 for c in started.values() if isinstance(c, Child)):
        shutil.rmtree(workdir, ignore_errors=True)


def _summary(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


@pytest.mark.parametrize("key", [pytest.param("torque", marks=pytest.mark.torque),
                                 pytest.param("openpbs", marks=pytest.mark.openpbs)])
def test_real_server_as_normal_user(children, key):
    child = children[key]
    name = REAL_SERVERS[key][0]
    if not isinstance(child, Child):
        if in_ci():
            pytest.fail(f"CI=true but {child}", pytrace=False)
        pytest.skip(str(child))
    rc, text = child.wait(CHILD_TIMEOUT)
    tail = "\n".join(text.splitlines()[-TAIL_LINES:])
    print(f"{name} as {USER}: {_summary(text)} ({child.seconds:.0f} s)")
    assert rc == 0, (f"the {name} tests run as {USER} failed (exit {rc}); log {child.log}; command:\n"
                     f"  {' '.join(child.argv)}\n---- last {TAIL_LINES} lines ----\n{tail}")
    if in_ci():  # in CI nothing may be skipped silently
        assert " skipped" not in _summary(text), f"{name}: tests skipped in CI:\n{tail}"
