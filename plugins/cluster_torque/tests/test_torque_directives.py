"""A user's own #PBS lines read into job keywords (the parse_directives hook), both dialects' forms."""

import pytest

from cluster_torque.directives import parse_directives


@pytest.mark.parametrize("line,expected", [
    ("#PBS -l walltime=1:00:00", {"time": "1:00:00"}),
    ("#PBS -l nodes=1:ppn=4,walltime=12:30:00,mem=4gb", {"nodes": "1", "cores": "4", "time": "12:30:00",
                                                        "mem": "4gb"}),
    ("#PBS -l select=2:ncpus=8:mem=16gb:mpiprocs=8", {"nodes": "2", "cores": "8", "mem": "16gb",
                                                     "tasks_per_node": "8"}),
    ("#PBS -l select=1:ncpus=2\n#PBS -l walltime=00:05:00", {"nodes": "1", "cores": "2", "time": "00:05:00"}),
    ("#PBS -l nodes=node01+node02:ppn=2", {"cores": "2"}),  # host names, not a count
])
def test_resource_lists(line, expected):
    assert parse_directives("#!/bin/bash\n" + line + "\necho hi\n") == expected
