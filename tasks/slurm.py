"""slurm.submit: a batch job on a Slurm cluster, each state change published as progress."""

from __future__ import annotations

import asyncio
import logging
import posixpath
import tempfile
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from taskd.context import cancelled_by_client
from taskd.remote import RemoteError
from taskd.remote.commands import last_line
from taskd.remote.machines import Machine
from taskd.remote.slurm import FindJob, JobEnd, Sbatch, Scancel, follower_of
from taskd.remote.staging import get_if_exists, put_bytes
from taskd.tasks import MachineName, Params, TaskContext, TaskFailed, task

log = logging.getLogger(__name__)
SCRIPT = "job.sh"


class SubmitParams(Params):
    machine: MachineName
    script: Annotated[str, Field(min_length=1, max_length=1024 * 1024)]
    # Absolute, or relative to the machine's workdir; default `<workdir>/<task key>`.
    workdir: str | None = None
    sbatch_args: tuple[str, ...] = ()
    # Seconds until the job is cancelled and the task ends "timeout after N s".
    timeout: Annotated[float, Field(gt=0)] | None = None
    check: bool = False


def job_name(key: str) -> str:
    return f"taskd-{key}"


@task("slurm.submit", SubmitParams, files=["stdout", "stderr"], bounded=False)
async def submit(ctx: TaskContext, params: SubmitParams) -> dict[str, Any]:
    """Submits a batch script with sbatch and follows the job to its end."""
    machine = ctx.machine(params.machine)
    workdir = machine.path(params.workdir or ctx.key)
    job = await ctx.recall("job_id")
    if job is None and ctx.attempt > 1:
        # An earlier attempt may have submitted and died before it stored the id.
        job = await machine.run(FindJob(job_name(ctx.key)))
    if job is None:
        await put_bytes(machine, params.script.encode(), posixpath.join(workdir, SCRIPT))
        job = await machine.run(
            Sbatch(posixpath.join(workdir, SCRIPT), workdir, job_name(ctx.key), params.sbatch_args)
        )
        ctx.logger.info("submitted Slurm job %s on %s", job, machine.name)
    else:
        ctx.logger.info("following Slurm job %s again on %s", job, machine.name)
    await ctx.remember("job_id", job)  # before following: a re-run never submits again
    try:
        async with asyncio.timeout(params.timeout):
            end = await follow(ctx, machine, job)
    except TimeoutError:
        await cancel(machine, job)
        raise TaskFailed(f"timeout after {params.timeout:g} s") from None
    except asyncio.CancelledError as exc:
        if cancelled_by_client(exc):  # not on a shutdown: the job is followed again
            await asyncio.shield(cancel(machine, job))
        raise
    with tempfile.TemporaryDirectory(prefix="taskd-slurm-") as temp:
        for name in ("stdout", "stderr"):
            local = Path(temp) / name
            await get_if_exists(machine, posixpath.join(workdir, name), local)
            await ctx.add_file(name, local, "text/plain")
        if params.check and end.state != "COMPLETED":
            last = last_line((Path(temp) / "stderr").read_bytes())
            raise TaskFailed(f"job {job} {end.state}, exit status {end.exit_code}: {last}")
    return {"job_id": job, "state": end.state, "exit_code": end.exit_code, "elapsed": end.elapsed}


async def follow(ctx: TaskContext, machine: Machine, job: str) -> JobEnd:
    async for update in follower_of(machine).follow(job):
        if isinstance(update, JobEnd):
            if update.state == "UNKNOWN":
                raise TaskFailed(f"job {job} is unknown to Slurm on {machine.name}")
            await ctx.progress(update.state)
            return update
        await ctx.progress(update)
    raise TaskFailed(f"job {job}: following ended without its end")


async def cancel(machine: Machine, job: str) -> None:
    try:
        await machine.run(Scancel(job))
    except RemoteError as exc:
        log.warning("machine %s: could not cancel job %s: %s", machine.name, job, exc)
