"""A first run on the local backend: one shell job and one Python function job, outputs printed."""

import math
import socket

import cluster_core as cc


def norm(values: list[float]) -> tuple[float, str]:
    """Runs in a separate job process; its return value comes back pickled."""
    return math.sqrt(sum(v * v for v in values)), socket.gethostname()


def main() -> None:
    cc.setup_logging("info")
    shell = cc.submit("echo \"hello from job $CLUSTER_JOB_ID on $(hostname)\"; uname -sr", backend="local",
                      name="hello", cores=1, mem="100M", time="5m")
    func = cc.submit(norm, ([3, 4, 12],), backend="local", cores=1)
    print(f"submitted shell job {shell.id} and function job {func.id} to the local backend")
    print("shell job output:\n" + cc.get(shell))
    value, host = cc.get(func)
    print(f"function job returned {value} (computed on {host}), exit code {func.exitcode}, "
          f"ran {func.runtime:.2f} s")
    cc.clean([shell, func])


if __name__ == "__main__":
    main()
