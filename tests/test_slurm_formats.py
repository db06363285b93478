"""What taskd reads from Slurm's commands, on lines as this Slurm (22.05) prints them.

States that a single-node test cluster cannot produce quickly (TIMEOUT is enforced by
slurmctld's periodic check, 60-90 s here; OUT_OF_MEMORY needs cgroup memory limits;
NODE_FAIL a lost node) are read here from the lines sacct prints for them.
"""

from __future__ import annotations

import pytest

from taskd.remote import RemoteError
from taskd.remote.commands import Output
from taskd.remote.slurm import JobEnd, Sacct, Sbatch, ScontrolJobs, Squeue, exit_code


def output(stdout: str, stderr: str = "", status: int = 0) -> Output:
    return Output(stdout.encode(), stderr.encode(), status)


def test_sacct_lines_give_each_terminal_state() -> None:
    lines = "\n".join(
        [
            "11|TIMEOUT|0:0|87",  # as sacct printed it for a job past --time=0:01
            "12|OUT_OF_MEMORY|0:125|4",
            "13|NODE_FAIL|0:0|30",
            "14|CANCELLED by 0|0:15|2",
            "15|FAILED|3:0|1",
            "16|COMPLETED|0:0|5",
            "17|RUNNING|0:0|3",  # not ended: not an end
        ]
    )
    ends = Sacct(["11", "12", "13", "14", "15", "16", "17"]).parse(output(lines + "\n"))
    assert ends == {
        "11": JobEnd("TIMEOUT", 0, 87.0),
        "12": JobEnd("OUT_OF_MEMORY", 128 + 125, 4.0),
        "13": JobEnd("NODE_FAIL", 0, 30.0),
        "14": JobEnd("CANCELLED", 128 + 15, 2.0),
        "15": JobEnd("FAILED", 3, 1.0),
        "16": JobEnd("COMPLETED", 0, 5.0),
    }


def test_sacct_refusing_means_accounting_is_off() -> None:
    refused = output("", "sacct: error: Slurm accounting storage is disabled", 1)
    with pytest.raises(RemoteError, match="accounting storage is disabled"):
        Sacct(["1"]).parse(refused)


def test_squeue_states_and_no_known_job() -> None:
    assert Squeue(["1", "2"]).parse(output("1|RUNNING\n2|PENDING\n")) == {
        "1": "RUNNING",
        "2": "PENDING",
    }
    gone = output("", "slurm_load_jobs error: Invalid job id specified", 1)
    assert Squeue(["9"]).parse(gone) == {}
    with pytest.raises(RemoteError, match=r"squeue failed: .*Connection refused"):
        Squeue(["9"]).parse(output("", "squeue: error: Connection refused", 1))


def test_scontrol_one_liners() -> None:
    line = (
        "JobId=7 JobName=wrap UserId=root(0) JobState=TIMEOUT Reason=TimeLimit "
        "ExitCode=0:15 RunTime=1-00:01:02 TimeLimit=00:00:01"
    )
    running = "JobId=8 JobName=wrap JobState=RUNNING ExitCode=0:0 RunTime=00:00:03"
    assert ScontrolJobs().parse(output(f"{line}\n{running}\n")) == {
        "7": JobEnd("TIMEOUT", 143, 86400 + 62.0)
    }


def test_sbatch_answers() -> None:
    job = Sbatch("/w/job.sh", "/w", "taskd-K", ["--time=1"])
    assert job.argv() == [
        "sbatch", "--parsable", "--job-name=taskd-K", "--chdir=/w", "--output=/w/stdout",
        "--error=/w/stderr", "--time=1", "/w/job.sh",
    ]  # fmt: skip
    assert job.parse(output("42\n")) == "42"
    assert job.parse(output("42;cluster\n")) == "42"
    with pytest.raises(RemoteError, match=r"^sbatch refused the job: sbatch: error: nope$"):
        job.parse(output("", "sbatch: error: nope\n", 1))


def test_exit_codes() -> None:
    assert exit_code("0:0") == 0
    assert exit_code("2:0") == 2
    assert exit_code("0:9") == 137
    assert exit_code("junk") == -1
