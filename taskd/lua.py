"""The Lua scripts behind every transition, each sent with the shared status prelude."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from taskd.keys import Keys


def source(name: str) -> str:
    files = resources.files("taskd") / "scripts"
    return (files / "status.lua").read_text() + "\n" + (files / f"{name}.lua").read_text()


class Script:
    """One script, bound to a deployment's channels (its ARGV[1] and ARGV[2])."""

    def __init__(self, redis: Redis, keys: Keys, name: str) -> None:
        self._script = redis.register_script(source(name))
        self._channels = [keys.channel_prefix, keys.wake]

    async def __call__(
        self, keys: Sequence[str], args: Sequence[Any], client: Pipeline | None = None
    ) -> Any:
        return await self._script(keys=keys, args=[*self._channels, *args], client=client)
