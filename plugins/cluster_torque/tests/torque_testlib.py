"""Shared helpers of the torque backend's tests (a unique module name: plugins' test dirs share sys.path)."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(rel: str) -> str:
    return (FIXTURES / rel).read_text()


class Shim:
    """A fake scheduler command: answers by the first rule whose words all occur in its argv, and logs
    every call. A rule is (words, stdout, stderr, exit code); a list of answers is used in turn."""

    def __init__(self, directory: Path, name: str):
        self.name = name
        self.path = directory / name
        self.rules_file = directory / f"{name}.rules.json"
        self.log = directory / f"{name}.calls.jsonl"
        self.rules: list = []
        self.path.write_text(textwrap.dedent(f"""\
            #!{sys.executable}
            import json, sys
            args = sys.argv[1:]
            rules = json.load(open({str(self.rules_file)!r}))
            with open({str(self.log)!r}, "a") as fh:
                fh.write(json.dumps(args) + "\\n")
            calls = sum(1 for _ in open({str(self.log)!r}))
            for words, answers in rules:
                if all(w in args for w in words):
                    answer = answers[min(calls - 1, len(answers) - 1)] if isinstance(answers[0], list) else answers
                    out, err, rc = answer[:3]
                    if len(answer) > 3:
                        import time
                        time.sleep(answer[3])
                    sys.stdout.write(out)
                    sys.stderr.write(err)
                    sys.exit(rc)
            sys.stderr.write("shim: no rule for %r\\n" % (args,))
            sys.exit(99)
            """))
        self.path.chmod(0o755)
        self._save()

    def on(self, words, stdout="", stderr="", rc=0, sleep=0.0):
        self.rules.append([list(words), [stdout, stderr, rc, sleep]])
        self._save()
        return self

    def sequence(self, words, answers):
        """Answer the n-th call with answers[n] (the last one repeats)."""
        self.rules.append([list(words), [list(a) for a in answers]])
        self._save()
        return self

    def _save(self):
        self.rules_file.write_text(json.dumps(self.rules))

    @property
    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]


# --- the real servers of ci/torque/up.sh and ci/openpbs/up.sh ------------------------------------------

REAL_SERVERS = {
    # key: (name, bin dir, dialect, version qstat --version reports, bring-up script)
    "torque": ("Torque", "/opt/torque/bin", "torque", "6.1.3", "ci/torque/up.sh"),
    "openpbs": ("OpenPBS", "/opt/pbs/bin", "pbspro", "23.06.06", "ci/openpbs/up.sh"),
}


def in_ci() -> bool:
    import os
    return os.environ.get("CI", "").lower() == "true"


def server_status(key: str, timeout: float = 10.0) -> tuple[bool, str]:
    """(up, one-line reason) for a real server: its qstat installed and ``qstat -B`` answering."""
    import os
    import subprocess
    name, bindir, _, _, script = REAL_SERVERS[key]
    qstat = os.path.join(bindir, "qstat")
    if not os.access(qstat, os.X_OK):
        return False, f"{name} is not installed ({qstat} missing; run {script} as root)"
    try:
        proc = subprocess.run([qstat, "-B"], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"{name}'s server did not answer `qstat -B` within {timeout:g} s"
    if proc.returncode != 0:
        said = (proc.stderr + proc.stdout).strip().splitlines()
        return False, f"{name}'s server does not answer ({said[0] if said else f'exit {proc.returncode}'}; run {script})"
    return True, f"{name} is up"
