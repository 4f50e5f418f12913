"""An array in which one task fails: how the failure is reported, and the other results kept.

cc.get(tasks) waits for every task, then raises the first failure (the remote traceback and a note naming
the other failed tasks); cc.get(tasks, return_exceptions=True) puts each task's exception in its place.
"""

import cluster_core as cc


def invert(x: float) -> float:
    return 1 / x                                   # x == 0 fails with ZeroDivisionError, in its own task


def main() -> None:
    tasks = cc.map(invert, [4, 2, 0, 1], cores=1, mem="200M", time="5m", name="invert")

    try:
        cc.get(tasks)
    except ZeroDivisionError as exc:                # the job's own exception type, re-raised here
        print(f"get raised {type(exc).__name__}: {exc}")
        for note in getattr(exc, "__notes__", []):
            print(f"  note: {note}")

    results = cc.get(tasks, return_exceptions=True)  # nothing raised: values and exceptions, in order
    for task, result in zip(tasks, results):
        if isinstance(result, Exception):
            print(f"task {task.index}: {task.state.value}, exit code {task.exitcode}: {type(result).__name__}")
        else:
            print(f"task {task.index}: {task.state.value}, result {result}")
    kept = [r for r in results if not isinstance(r, Exception)]
    print(f"kept {len(kept)} of {len(tasks)} results: {kept}")
    cc.clean(tasks[0].job, clean_outputs=True)


if __name__ == "__main__":
    main()
