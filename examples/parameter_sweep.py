"""A parameter sweep with map: one array submission, one task per (rate, seed) pair, results in order.

Run it as it is (the local backend, a few seconds), or with CLUSTER_BACKEND=slurm on a cluster.
"""

import random

import cluster_core as cc


def simulate(rate: float, seed: int) -> tuple[float, int, int]:
    """A toy model: how many of 1000 steps succeed at this rate. Runs in a job; the return value comes back."""
    rng = random.Random(seed)
    return rate, seed, sum(rng.random() < rate for _ in range(1000))


def main() -> None:
    grid = [(rate, seed) for rate in (0.1, 0.5, 0.9) for seed in range(3)]
    tasks = cc.map(simulate, grid, star=True, cores=1, mem="200M", time="5m", name="sweep")
    print(f"submitted {len(tasks)} tasks as array {tasks[0].job.id}")
    for rate, seed, hits in cc.get(tasks):          # waits for every task, values in the order of grid
        print(f"rate={rate} seed={seed} hits={hits}")
    best = max(cc.get(tasks), key=lambda r: r[2])
    print(f"best: rate={best[0]} seed={best[1]}")
    cc.clean(tasks[0].job, clean_outputs=True)


if __name__ == "__main__":
    main()
