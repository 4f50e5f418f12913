"""A dependency chain: prepare -> two analyses -> merge, each a job that starts when its parents succeed.

`depends=` takes Jobs or job ids (afterok by default; "afterany:<id>" and the other types as sbatch spells
them). If a parent fails, its afterok children never run and end failed or cancelled, depending on the backend.
"""

import os
import shutil

import cluster_core as cc


def main() -> None:
    os.makedirs("chain", exist_ok=True)
    prepare = cc.submit("seq 1 100 > chain/numbers.txt", name="prepare", time="5m")
    total = cc.submit("awk '{s += $1} END {print s}' chain/numbers.txt > chain/total.txt",
                      name="total", depends=prepare)
    evens = cc.submit("awk '$1 % 2 == 0' chain/numbers.txt | wc -l > chain/evens.txt",
                      name="evens", depends=[prepare])
    merge = cc.submit("echo \"sum $(cat chain/total.txt), even numbers $(cat chain/evens.txt)\"",
                      name="merge", depends=[total, evens])
    print(f"submitted prepare={prepare.id} total={total.id} evens={evens.id} merge={merge.id}")
    print("merge says: " + cc.get(merge).strip())    # waits for the whole chain
    for job in (prepare, total, evens, merge):
        print(f"{job.name}: {job.state.value}, exit code {job.exitcode}")
    cc.clean([prepare, total, evens, merge], clean_outputs=True)
    shutil.rmtree("chain")                          # the files the jobs wrote


if __name__ == "__main__":
    main()
