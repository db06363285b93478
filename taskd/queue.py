"""The queue as workers see it: settle-and-claim in one round trip, leases, reaping, hand-back.

A task is in the queue (a sorted set of keys, oldest first) until a worker removes it there,
which makes that worker's attempt the one holding its lease. The lease lives in the
`leases` sorted set (key by expiry) and the record's `lease` field (the attempt number):
only that attempt may report progress or settle the task, so a worker that lost it
changes nothing, and a task ends exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson
from redis.asyncio import Redis

from taskd.jobs import Job, claimed_job
from taskd.keys import Keys
from taskd.lua import Script
from taskd.records import now_iso, now_ms
from taskd.settings import WorkerSettings

# How much of `lease` a renewal grants, and how often a worker renews and reaps: a renewal
# may be missed three times before a living worker loses its tasks, and a dead worker's
# task is back in the queue within lease * (2/3 + 1/6).
LEASE_SHARE = 2 / 3
TICKS_PER_LEASE = 6
REAP_BATCH = 100


@dataclass(frozen=True)
class Outcome:
    """How an attempt ended, until it is settled; `result` is JSON."""

    job: Job
    status: str
    result: bytes
    files: Sequence[str] = ()
    completed: str = field(default_factory=now_iso)


@dataclass(frozen=True)
class Step:
    """What one step did: per outcome the final status JSON (None where this attempt no
    longer held the task), the jobs it claimed, and the keys now first in the queue."""

    settled: list[bytes | None]
    claimed: list[Job]
    candidates: list[str]


class Queue:
    def __init__(self, redis: Redis, keys: Keys, settings: WorkerSettings) -> None:
        self.redis = redis
        self.keys = keys
        self.settings = settings
        self._step = Script(redis, keys, "step")
        self._renew = Script(redis, keys, "renew")
        self._reap = Script(redis, keys, "reap")
        self._hand_back = Script(redis, keys, "hand_back")

    @property
    def tick(self) -> float:
        """Seconds between lease renewals (and reaps)."""
        return self.settings.lease / TICKS_PER_LEASE

    def expiry_ms(self) -> int:
        return now_ms() + int(self.settings.lease * LEASE_SHARE * 1000)

    async def step(self, outcomes: Sequence[Outcome], candidates: Sequence[str], want: int) -> Step:
        """Settle `outcomes`, claim what of `candidates` is still queued, list `want` more."""
        keys = [self.keys.queue, self.keys.leases, self.keys.expiring]
        args: list[bytes | str | int] = [
            now_ms(),
            self.expiry_ms(),
            now_iso(),
            self.settings.result_ttl,
            len(outcomes),
            len(candidates),
            want,
        ]
        for o in outcomes:
            record = self.keys.task(o.job.key)
            keys += [record, self.keys.pending(o.job.account), o.job.cache or record]
            files = orjson.dumps(list(o.files)) if o.files else b""
            args += [o.job.key, o.job.attempt, o.status, o.completed, o.result]
            args += [files, "1" if o.job.cache else "0"]
        keys += [self.keys.task(key) for key in candidates]
        args += candidates
        settled, claimed, following = await self._step(keys, args)
        return Step(
            [json or None for json in settled],
            [claimed_job(*claimed[i : i + 6]) for i in range(0, len(claimed), 6)],
            [key.decode() for key in following],
        )

    async def renew(self, held: Sequence[Job]) -> list[str]:
        """Extend the leases of `held`; the keys whose lease this worker no longer holds."""
        if not held:
            return []
        keys = [self.keys.leases, *(self.keys.task(job.key) for job in held)]
        args: list[str | int] = [self.expiry_ms()]
        for job in held:
            args += [job.key, job.attempt]
        return [key.decode() for key in await self._renew(keys, args)]

    async def reap(self) -> tuple[list[str], list[str]]:
        """Take back the tasks whose lease ran out: (queued again, ended "worker lost")."""
        expired = await self.redis.zrangebyscore(
            self.keys.leases, "-inf", now_ms(), start=0, num=REAP_BATCH
        )
        if not expired:
            return [], []
        async with self.redis.pipeline(transaction=False) as pipe:
            for raw in expired:
                pipe.hmget(self.keys.task(raw.decode()), ["account", "cache"])
            owners = await pipe.execute()
        keys = [self.keys.leases, self.keys.queue]
        args: list[str | int] = [
            now_ms(),
            self.settings.max_tries,
            now_iso(),
            self.settings.result_ttl,
        ]
        for raw, (account, cache) in zip(expired, owners, strict=True):
            key = raw.decode()
            record = self.keys.task(key)
            # A record gone already (expired) has no account: its lease entry is just dropped.
            keys += [
                record,
                self.keys.pending((account or b"").decode()),
                (cache or b"").decode() or record,
            ]
            args += [key, "1" if cache else "0"]
        requeued, ended = await self._reap(keys, args)
        return [k.decode() for k in requeued], [k.decode() for k in ended]

    async def hand_back(self, held: Sequence[Job]) -> int:
        """Put `held` back at the head of the queue now; how many were still ours."""
        if not held:
            return 0
        keys = [self.keys.leases, self.keys.queue, *(self.keys.task(job.key) for job in held)]
        args: list[str | int] = []
        for job in held:
            args += [job.key, job.attempt]
        return int(await self._hand_back(keys, args))
