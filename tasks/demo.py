"""hello and sleep: the smallest tasks, to try the API and to measure it."""

from __future__ import annotations

import asyncio
from typing import Annotated

from pydantic import Field

from taskd.tasks import Params, TaskContext, task


class HelloParams(Params):
    name: str


@task("hello", HelloParams)
async def hello(ctx: TaskContext, params: HelloParams) -> str:
    """Greets `name`."""
    return f"Hello {params.name}"


class SleepParams(Params):
    seconds: Annotated[float, Field(ge=0, le=3600)]
    steps: Annotated[int, Field(ge=1, le=10000)] = 10


@task("sleep", SleepParams)
async def sleep(ctx: TaskContext, params: SleepParams) -> float:
    """Sleeps `seconds`, reporting progress from 0 to 100 in `steps` steps."""
    await ctx.progress(0)
    for step in range(1, params.steps + 1):
        await asyncio.sleep(params.seconds / params.steps)
        await ctx.progress(round(100 * step / params.steps))
    return params.seconds
