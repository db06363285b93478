"""Workers' heartbeats in Redis: who is alive, what each runs, what it saw of its machines.

Each worker writes its beat every `lease`/6 seconds (with its lease renewals) into one hash,
field = worker id; a stopping worker removes its own. A beat older than `lease` is a dead
worker's: readers skip it, and delete it once it is ten leases old.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from redis.asyncio import Redis

from taskd.keys import Keys


def new_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"


@dataclass(frozen=True)
class Beat:
    id: str
    host: str
    jobs: list[str]
    last_seen: float  # unix s
    machines: dict[str, dict[str, Any]] = field(default_factory=dict)
    metrics: list[Any] = field(default_factory=list)

    def as_json(self) -> bytes:
        return orjson.dumps(self.__dict__)


class Heartbeats:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.key = keys.workers

    async def beat(self, beat: Beat) -> None:
        await self.redis.hset(self.key, beat.id, beat.as_json())  # type: ignore[misc, arg-type]

    async def forget(self, worker: str) -> None:
        await self.redis.hdel(self.key, worker)  # type: ignore[misc]

    async def alive(self, max_age: float) -> list[Beat]:
        """Beats younger than `max_age` seconds, sorted by worker id."""
        now = time.time()
        raw: dict[bytes, bytes] = await self.redis.hgetall(self.key)  # type: ignore[misc]
        beats, dead = [], []
        for worker, value in raw.items():
            try:
                beat = Beat(**orjson.loads(value))
            except (TypeError, ValueError):  # another version's beat: not ours to read
                continue
            if now - beat.last_seen <= max_age:
                beats.append(beat)
            elif now - beat.last_seen > 10 * max_age:
                dead.append(worker)
        if dead:
            await self.redis.hdel(self.key, *dead)  # type: ignore[misc, arg-type]
        return sorted(beats, key=lambda b: b.id)
