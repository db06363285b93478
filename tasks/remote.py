"""remote.*: run a command on a machine, list a directory, stage files in and out over SFTP."""

from __future__ import annotations

import asyncio
import posixpath
import tempfile
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, model_validator

from taskd.remote.commands import last_line
from taskd.remote.execution import run_command
from taskd.remote.staging import get_file, list_dir, put_stream
from taskd.storage import check_name
from taskd.tasks import MachineName, Params, TaskContext, TaskFailed, task

Seconds = Annotated[float, Field(gt=0, le=30 * 86400)]
TASK_KEY = r"^[A-Z2-7]{26}$"


class RunParams(Params):
    machine: MachineName
    # An argv list (quoted for the remote shell), or a shell string run as it is.
    command: (
        Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]
        | Annotated[str, Field(min_length=1)]
    )
    timeout: Seconds | None = None
    check: bool = False
    # Where it runs: absolute, or relative to the machine's workdir (default: the workdir).
    cwd: str | None = None


def tail_text(data: bytes) -> str:
    return data.decode(errors="replace")


@task("remote.run", RunParams, files=["stdout", "stderr"])
async def run(ctx: TaskContext, params: RunParams) -> dict[str, Any]:
    """Runs a command on a machine over SSH; stdout and stderr are kept as files."""
    machine = ctx.machine(params.machine)
    cwd = machine.path(params.cwd) if params.cwd else (machine.settings.workdir or None)
    with tempfile.TemporaryDirectory(prefix="taskd-run-") as temp:
        out, err = Path(temp) / "stdout", Path(temp) / "stderr"
        try:
            async with asyncio.timeout(params.timeout):
                finished = await run_command(machine, params.command, out, err, cwd)
        except TimeoutError:
            raise TaskFailed(f"timeout after {params.timeout:g} s") from None
        if params.check and finished.exit_status != 0:
            raise TaskFailed(
                f"exit status {finished.exit_status}: {last_line(finished.stderr_tail)}"
            )
        await ctx.add_file("stdout", out, "text/plain")
        await ctx.add_file("stderr", err, "text/plain")
    result: dict[str, Any] = {
        "exit_status": finished.exit_status,
        "stdout": tail_text(finished.stdout_tail),
        "stderr": tail_text(finished.stderr_tail),
    }
    if finished.truncated:
        result["truncated"] = True
    return result


class LsParams(Params):
    machine: MachineName
    path: str = "."


@task("remote.ls", LsParams)
async def ls(ctx: TaskContext, params: LsParams) -> list[dict[str, Any]]:
    """Lists a directory on a machine (or describes one file)."""
    return await list_dir(ctx.machine(params.machine), params.path)


class UploadParams(Params):
    machine: MachineName
    target_path: Annotated[str, Field(min_length=1)]
    source_url: str | None = None
    source_task: Annotated[str, Field(pattern=TASK_KEY)] | None = None
    source_file: str | None = None

    @model_validator(mode="after")
    def one_source(self) -> UploadParams:
        if (self.source_url is None) == (self.source_task is None):
            raise ValueError("give either source_url or source_task (with source_file)")
        if self.source_file is not None and self.source_task is None:
            raise ValueError("source_file names a file of source_task")
        return self


@task("remote.upload", UploadParams)
async def upload(ctx: TaskContext, params: UploadParams) -> dict[str, Any]:
    """Copies a URL's body or another task's output file onto a machine."""
    machine = ctx.machine(params.machine)
    if params.source_task is not None:
        chunks = await ctx.output_of(params.source_task, params.source_file)
        return await put_stream(machine, chunks, params.target_path)
    assert params.source_url is not None
    async with ctx.fetch_stream(params.source_url) as body:
        return await put_stream(machine, body, params.target_path)


class DownloadParams(Params):
    machine: MachineName
    source_path: Annotated[str, Field(min_length=1)]


@task("remote.download", DownloadParams)
async def download(ctx: TaskContext, params: DownloadParams) -> dict[str, Any]:
    """Makes a file on a machine this task's output file, named after its basename."""
    machine = ctx.machine(params.machine)
    name = posixpath.basename(params.source_path.rstrip("/"))
    try:
        check_name(name)
    except ValueError as exc:
        raise TaskFailed(str(exc)) from None
    with tempfile.TemporaryDirectory(prefix="taskd-download-") as temp:
        local = Path(temp) / name
        size = await get_file(machine, params.source_path, local)
        await ctx.add_file(name, local)
    return {"path": machine.path(params.source_path), "size": size}
