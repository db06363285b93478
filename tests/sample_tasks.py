"""Tasks that exist only for the tests: failures of every kind."""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
from pathlib import Path

from taskd.tasks import Params, TaskContext, TaskFailed, task


class NoParams(Params):
    pass


class MessageParams(Params):
    message: str = "it did not work"


@task("test.fail", MessageParams)
async def fail(ctx: TaskContext, params: MessageParams) -> None:
    """Ends in error with the given message."""
    raise TaskFailed(params.message)


@task("test.crash", NoParams)
async def crash(ctx: TaskContext, params: NoParams) -> float:
    """Raises an unexpected exception with a multi-line message."""
    raise ValueError("first line\nsecond line\n  File 'x.py', line 1")


@task("test.unserializable", NoParams)
async def unserializable(ctx: TaskContext, params: NoParams) -> object:
    """Returns something that is not JSON."""
    return object()


class ProgressParams(Params):
    values: list[object]
    pause: float = 0.05


@task("test.progress", ProgressParams)
async def progress(ctx: TaskContext, params: ProgressParams) -> int:
    """Reports each value as progress, pausing between them."""
    for value in params.values:
        await ctx.progress(value)
        await asyncio.sleep(params.pause)
    return len(params.values)


@task("test.log", MessageParams)
async def log_line(ctx: TaskContext, params: MessageParams) -> str:
    """Writes one line to its logger."""
    ctx.logger.warning("%s", params.message)
    return params.message


class FilesParams(Params):
    text: str
    fail: bool = False


@task("test.files", FilesParams, files=["notes.txt", "data.bin"])
async def files(ctx: TaskContext, params: FilesParams) -> int:
    """Writes `text` as notes.txt (from bytes) and data.bin (from a file on disk)."""
    await ctx.add_file("notes.txt", params.text.encode())
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "data"
        path.write_bytes(params.text.encode() * 1000)
        await ctx.add_file("data.bin", path, "application/x-test")
    if params.fail:
        raise TaskFailed("failed after writing files")
    return len(params.text)


class RaiseParams(Params):
    kind: str


class Interrupt(BaseException):
    """Not an Exception: what a careless task might raise."""


RAISED: dict[str, BaseException] = {
    "timeout": TimeoutError("the task's own timeout"),
    "cancelled": asyncio.CancelledError(),
    "base": Interrupt("a BaseException"),
    "exit": SystemExit(3),
    "keyboard": KeyboardInterrupt(),
}


@task("test.raise", RaiseParams)
async def raise_(ctx: TaskContext, params: RaiseParams) -> None:
    """Raises one of the exceptions a task must never escape with (see RAISED)."""
    await asyncio.sleep(0)
    raise RAISED[params.kind]


class RunsParams(Params):
    path: str
    seconds: float = 0
    rerun_seconds: float | None = None  # how long a re-run sleeps (default: `seconds`)


@task("test.runs", RunsParams)
async def runs(ctx: TaskContext, params: RunsParams) -> int:
    """Appends a line (its process id) to `path` each time it starts, then sleeps; returns
    how many times it started."""
    runs = note_run(params.path)
    await ctx.progress("running")
    rerun = params.seconds if params.rerun_seconds is None else params.rerun_seconds
    await asyncio.sleep(params.seconds if runs == 1 else rerun)
    return runs


@task("test.kill_worker", RunsParams)
async def kill_worker(ctx: TaskContext, params: RunsParams) -> None:
    """Kills the worker process running it (SIGKILL), every time: for worker processes only."""
    note_run(params.path)
    os.kill(os.getpid(), signal.SIGKILL)


def note_run(path: str) -> int:
    """Add this run to the file at `path`; how many runs it lists now."""
    with Path(path).open("a+") as file:
        file.write(f"{os.getpid()}\n")
        file.seek(0)
        return len(file.read().splitlines())
