"""slurm.submit against real Slurm daemons (with accounting) behind a real sshd."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from taskd.remote.machines import Machine
from taskd.remote.slurm import ScontrolJobs, Squeue
from taskd.settings import MachineSettings
from tests.conftest import SECRET, ApiFactory, Client, SettingsFactory, WorkerFactory
from tests.helpers import create, create_ok, read_lines
from tests.remote_servers import Slurm, Sshd

pytestmark = pytest.mark.remote
POLL = 0.5


@pytest.fixture
def machine_config(remote: tuple[Sshd, Slurm], workdir: Path) -> dict[str, Any]:
    sshd, _ = remote
    return sshd.machine(scheduler="slurm", workdir=str(workdir), poll_interval=POLL)


@pytest.fixture
async def cluster(make_api: ApiFactory, machine_config: dict[str, Any]) -> Client:
    return await make_api(machines={"hpc": machine_config})


def job(script: str, **extra: Any) -> dict[str, Any]:
    return {"task_name": "slurm.submit", "machine": "hpc", "script": script, **extra}


async def stream(client: Client, key: str) -> list[dict[str, Any]]:
    response = await client.get("/v1/status_stream", params={"tasks": key})
    lines = await read_lines(response)
    return [lines[0][0], *lines[1:]]


async def blocked(client: Client, key: str) -> dict[str, Any]:
    response = await client.get("/v1/status", params={"tasks": key, "block": "true"})
    [status] = await response.json()
    return dict(status)


async def until_running(client: Client, key: str) -> None:
    """Follow the task's stream until Slurm runs its job."""
    response = await client.get("/v1/status_stream", params={"tasks": key})
    async for line in response.content:
        if b'"RUNNING"' in line:
            break
    response.close()


async def until_cancelled(slurm: Slurm, key: str) -> None:
    """Until Slurm's accounting has the task's job CANCELLED."""
    deadline = time.monotonic() + 20
    while not any("CANCELLED" in j for j in jobs_named(slurm, key)):
        assert time.monotonic() < deadline, jobs_named(slurm, key)
        await asyncio.sleep(0.3)


def jobs_named(slurm: Slurm, key: str) -> list[str]:
    """Every job Slurm's accounting knows under the task's job name."""
    out = slurm.run("sacct", "-n", "-X", "-P", f"--name=taskd-{key}", "--format=JobID,State")
    return [line for line in out.splitlines() if line]


async def accounted(slurm: Slurm, key: str) -> list[str]:
    """jobs_named, once accounting has the task's job (its record lands about 1 s late)."""
    deadline = time.monotonic() + 15
    while not (jobs := jobs_named(slurm, key)) and time.monotonic() < deadline:
        await asyncio.sleep(0.3)
    return jobs


async def test_a_job_streams_its_states_and_ends_with_its_outputs(
    cluster: Client, workdir: Path, remote: tuple[Sshd, Slurm]
) -> None:
    script = "#!/bin/sh\necho hello from $SLURM_JOB_ID\necho warning >&2\nsleep 2\n"
    [status] = await create_ok(cluster, job(script))
    statuses = await stream(cluster, status["key"])
    progress = [s["progress"] for s in statuses if s["status"] == "executing" and "progress" in s]
    assert "RUNNING" in progress
    assert progress[-1] == "COMPLETED"
    assert len(progress) == len(set(progress))  # one line per change, no repeats
    final = statuses[-1]
    assert final["progress"] == "COMPLETED"
    assert final["status"] == "success", final
    result = final["result"]
    assert set(result) == {"job_id", "state", "exit_code", "elapsed"}
    assert (result["state"], result["exit_code"]) == ("COMPLETED", 0)
    assert isinstance(result["job_id"], str)
    assert result["job_id"].isdigit()
    assert 2 <= result["elapsed"] < 30
    assert sorted(final["files"]) == ["stderr", "stdout"]
    out = await cluster.get("/v1/file/stdout", params={"task": status["key"]})
    assert await out.text() == f"hello from {result['job_id']}\n"
    err = await cluster.get("/v1/file/stderr", params={"task": status["key"]})
    assert await err.text() == "warning\n"
    # The script went to the per-task workdir, and Slurm ran exactly one job for the task.
    assert (workdir / status["key"] / "job.sh").read_text() == script
    assert await accounted(remote[1], status["key"]) == [f"{result['job_id']}|COMPLETED"]


async def test_a_failing_job_succeeds_with_its_state_unless_check(cluster: Client) -> None:
    script = "#!/bin/sh\necho 'input missing' >&2\nexit 3\n"
    [plain, checked] = await create_ok(cluster, [job(script), job(script, check=True)])
    ended = await blocked(cluster, plain["key"])
    assert ended["status"] == "success"
    assert ended["result"]["state"] == "FAILED"
    assert ended["result"]["exit_code"] == 3
    failed = await blocked(cluster, checked["key"])
    assert failed["status"] == "error"
    job_id = await_job_id(failed)
    assert failed["result"] == f"job {job_id} FAILED, exit status 3: input missing"


def await_job_id(status: dict[str, Any]) -> str:
    # An error's result is its message: the job id is its second word.
    return str(status["result"].split()[1])


async def test_sbatch_refusing_the_script_is_an_error(cluster: Client) -> None:
    [status] = await create_ok(
        cluster, job("#!/bin/sh\ntrue\n", sbatch_args=["--partition=nowhere"])
    )
    ended = await blocked(cluster, status["key"])
    assert ended["status"] == "error"
    assert ended["result"] == (
        "sbatch refused the job: sbatch: error: Batch job submission failed:"
        " Invalid partition name specified"
    )


async def test_cancel_runs_scancel(cluster: Client, remote: tuple[Sshd, Slurm]) -> None:
    [status] = await create_ok(cluster, job("#!/bin/sh\nsleep 300\n"))
    await until_running(cluster, status["key"])
    cancel = await cluster.post(
        "/v1/cancel", data=orjson.dumps({"secret": SECRET, "tasks": [status["key"]]})
    )
    [cancelled] = await cancel.json()
    assert cancelled["result"] == "cancelled"
    await until_cancelled(remote[1], status["key"])


async def test_the_timeout_parameter_cancels_the_job(
    cluster: Client, remote: tuple[Sshd, Slurm]
) -> None:
    [status] = await create_ok(cluster, job("#!/bin/sh\nsleep 300\n", timeout=2))
    ended = await blocked(cluster, status["key"])
    assert ended["status"] == "error"
    assert ended["result"] == "timeout after 2 s"
    await until_cancelled(remote[1], status["key"])


async def test_slurm_submit_is_not_bound_by_job_timeout(
    make_api: ApiFactory, machine_config: dict[str, Any]
) -> None:
    client = await make_api(worker={"job_timeout": 1}, machines={"hpc": machine_config})
    [status] = await create_ok(client, [job("#!/bin/sh\nsleep 3\n")])
    ended = await blocked(client, status["key"])
    assert ended["status"] == "success", ended
    assert ended["result"]["state"] == "COMPLETED"
    assert ended["result"]["elapsed"] >= 3


async def test_following_twenty_jobs_is_one_squeue_per_interval(
    cluster: Client, remote: tuple[Sshd, Slurm]
) -> None:
    sshd, _ = remote
    keys = [s["key"] for s in await create_ok(cluster, [job("#!/bin/sh\nsleep 8\n")] * 20)]
    response = await cluster.get("/v1/status_stream", params={"tasks": keys})
    running: set[str] = set()
    async for line in response.content:  # until Slurm runs all twenty
        status = orjson.loads(line)
        if isinstance(status, dict) and status.get("progress") == "RUNNING":
            running.add(status["key"])
            if len(running) == 20:
                break
    response.close()
    before = sshd.sessions()
    started = time.monotonic()
    await asyncio.sleep(3)
    commands = sshd.sessions() - before
    intervals = (time.monotonic() - started) / POLL
    # One squeue per interval for all twenty (unbatched, it would be twenty per interval).
    print(f"following 20 jobs: {commands} SSH commands in {intervals:.1f} intervals")
    assert commands <= intervals + 2, (commands, intervals)
    for key in keys:
        assert (await blocked(cluster, key))["result"]["state"] == "COMPLETED"


async def test_a_dropped_ssh_connection_mid_job_changes_nothing_but_a_delay(
    cluster: Client, remote: tuple[Sshd, Slurm]
) -> None:
    sshd, slurm = remote
    [status] = await create_ok(cluster, job("#!/bin/sh\nsleep 4\necho done\n"))
    await until_running(cluster, status["key"])
    connections = sshd.connection_pids()
    assert connections
    for pid in connections:  # the per-connection sshd processes: every SSH connection drops
        os.kill(pid, signal.SIGKILL)
    ended = await blocked(cluster, status["key"])
    assert ended["status"] == "success", ended
    assert ended["result"]["state"] == "COMPLETED"
    out = await cluster.get("/v1/file/stdout", params={"task": status["key"]})
    assert await out.text() == "done\n"
    assert len(await accounted(slurm, status["key"])) == 1


async def test_a_handed_back_job_is_followed_again_not_resubmitted(
    make_settings: SettingsFactory,
    start_worker: WorkerFactory,
    make_api: ApiFactory,
    machine_config: dict[str, Any],
    remote: tuple[Sshd, Slurm],
) -> None:
    settings = make_settings(machines={"hpc": machine_config})
    first = await start_worker(settings)
    client = await make_api(with_worker=False, machines={"hpc": machine_config})
    [status] = await create_ok(client, job("#!/bin/sh\nsleep 4\n"))
    await until_running(client, status["key"])
    await first.stop()  # what SIGTERM does: the task goes back to the queue, the job runs on
    await start_worker(settings)
    ended = await blocked(client, status["key"])
    assert ended["status"] == "success", ended
    assert ended["result"]["state"] == "COMPLETED"
    assert await accounted(remote[1], status["key"]) == [f"{ended['result']['job_id']}|COMPLETED"]


async def test_scontrol_tells_the_end_when_accounting_cannot(
    remote: tuple[Sshd, Slurm], machine_config: dict[str, Any]
) -> None:
    """The fallback parser on what this cluster's scontrol prints for a job that ended."""
    _, slurm = remote
    job_id = slurm.run("sbatch", "--parsable", "--wrap=exit 4").strip()
    machine = Machine("hpc", MachineSettings.model_validate(machine_config))
    try:
        deadline = time.monotonic() + 20
        while job_id not in (ends := await machine.run(ScontrolJobs())):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.3)
        assert ends[job_id].state == "FAILED"
        assert ends[job_id].exit_code == 4
        assert (await machine.run(Squeue([job_id]))).get(job_id) == "FAILED"
    finally:
        await machine.close()


async def test_unknown_machine_or_bad_script_args_are_400s(cluster: Client) -> None:
    response = await create(
        cluster, [job("#!/bin/sh\n", machine="nowhere"), job("#!/bin/sh\n", sbatch_args="-N 2")]
    )
    assert response.status == 400
    names = [e["name"] for e in (await response.json())["errors"]]
    assert names == ["tasks.0.machine", "tasks.1.sbatch_args"]
