"""Arrays and map(): one submission per chunk where the backend has arrays, one per element where not."""

import pytest

import cluster_core as cc
from cluster_core import OptionError, State


def cube(x):
    if x == 3:
        raise ArithmeticError("three is unlucky")
    return x ** 3


def add(a, b):
    return a + b


def test_map_on_native_arrays_chunks_at_the_limit(toy_arrays):
    tasks = cc.map(cube, [0, 1, 2, 4, 5, 6, 7, 8, 9, 10])
    assert toy_arrays.calls.count("submit") == 3  # 10 elements, at most 4 per array
    assert len(tasks) == 10
    assert cc.wait(tasks) is True
    assert cc.get(tasks) == [0, 1, 8, 64, 125, 216, 343, 512, 729, 1000]
    assert [t.index for t in tasks[:5]] == [0, 1, 2, 3, 0]
    assert tasks[4].id == "2.toy[0]" and tasks[4].state is State.COMPLETED


def test_per_task_state_exit_code_output_and_exception(toy_arrays):
    tasks = cc.map(cube, [1, 3], name="cubes")
    assert cc.wait(tasks) is False
    ok, bad = tasks
    assert ok.get() == 1 and ok.exitcode == 0
    assert bad.state is State.FAILED and bad.exitcode == 1
    with pytest.raises(ArithmeticError, match="unlucky") as err:
        bad.get()
    assert "in cube" in err.value.__cause__.tb
    assert "ArithmeticError" in bad.stderr and ok.stderr == ""


def test_map_star_and_fallback_without_arrays(toy):
    tasks = cc.map(add, [(1, 2), (3, 4), (5, 6)], star=True)
    assert toy.calls.count("submit") == 3  # one job per element
    assert [t.id for t in tasks] == ["1.toy", "2.toy", "3.toy"]
    assert cc.get(tasks) == [3, 7, 11]


@pytest.mark.parametrize("fixture", ["toy", "toy_arrays"])
def test_shell_array_sees_its_index(fixture, request):
    request.getfixturevalue(fixture)
    job = cc.submit('echo "task $CLUSTER_TASK_ID"; exit $((CLUSTER_TASK_ID % 2))', array="0-4:2,7")
    assert [t.index for t in job.tasks] == [0, 2, 4, 7]
    assert job.wait() is False
    assert [t.stdout for t in job.tasks] == ["task 0\n", "task 2\n", "task 4\n", "task 7\n"]
    assert [t.exitcode for t in job.tasks] == [0, 0, 0, 1]
    assert job.state is State.FAILED
    job.clean(delete_outputs=True)
    assert not list(job.files.jobdir.glob("*.cluster.*"))


def test_array_of_one_function_repeats_the_call(toy_arrays):
    job = cc.submit(add, (2, 3), array=3)
    assert job.get() == [5, 5, 5]


def test_map_rejects_array_keyword_and_handles_empty(toy):
    assert cc.map(cube, []) == []
    with pytest.raises(OptionError, match="drop array="):
        cc.map(cube, [1], array="0-1")


def _sleep_long(_x):
    import time
    time.sleep(300)


def test_cancelling_every_task_of_a_map_cancels_each_array_by_its_id(toy_arrays):
    tasks = cc.map(_sleep_long, range(6))  # two native arrays: 4 tasks, then 2
    arrays = list(dict.fromkeys(t.job.id for t in tasks))
    assert len(arrays) == 2
    cc.cancel(tasks)
    assert toy_arrays.cancelled == [arrays]  # one word per array, not one per task
    cc.wait(tasks, timeout=60)
    assert {t.state for t in tasks} == {State.CANCELLED}
    more = cc.map(_sleep_long, range(3))
    cc.cancel(more[:2])  # not every task: the tasks' own ids
    assert toy_arrays.cancelled[-1] == [more[0].id, more[1].id]
    cc.cancel(more[2])
