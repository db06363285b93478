"""The event hub: ONE Redis pub/sub connection per process, fanned out to every waiting request.

A waiter subscribes to its tasks' channels and waits for Redis to confirm, *then* reads the
records, so no change is missed between the two. Every published status carries the record's
version, so a waiter drops anything not newer than what it already has.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from taskd.connections import COMMAND_TIMEOUT, REDIS_UNAVAILABLE
from taskd.keys import Keys
from taskd.records import Snapshot, is_terminal

log = logging.getLogger(__name__)

CATCH_UP_WAIT = 10.0  # seconds to wait for resubscription before reading anyway
RECONNECT_WAIT = 2.0  # seconds a new waiter waits for a reconnecting hub before a 503
Resync = Callable[[Sequence[str]], Awaitable[list[Snapshot | None]]]


class Listener:
    """One waiting request: the changes of its tasks it has not taken yet, oldest first.

    At most one unread change is kept per task: a newer one replaces it. So a slow reader
    (or a burst of changes) costs no more memory than its keys, and may skip a superseded
    intermediate status, never a task's newest (terminal) one.
    """

    def __init__(self, keys: Sequence[str]) -> None:
        self.keys = list(dict.fromkeys(keys))
        # Newest version known per key: anything not newer is dropped on arrival.
        self.newest: dict[str, int] = {}
        # What the request has seen (seeded, or returned by next_change) per key.
        self.seen: dict[str, Snapshot] = {}
        self.unread: dict[str, Snapshot] = {}
        self.ready = asyncio.Event()
        self.closed = False  # the server is stopping: waiting ends now

    def close(self) -> None:
        self.closed = True
        self.ready.set()

    def offer(self, key: str, snapshot: Snapshot) -> None:
        """Keep `snapshot` if it is newer than anything known for `key`."""
        if self.newest.get(key, 0) >= snapshot.version:
            return
        self.newest[key] = snapshot.version
        self.unread[key] = snapshot
        self.ready.set()

    def seed(self, key: str, snapshot: Snapshot) -> None:
        """The status read after subscribing: the baseline, not a change."""
        self.newest[key] = max(self.newest.get(key, 0), snapshot.version)
        self.take(key, snapshot)

    async def next_change(self, timeout: float | None = None) -> tuple[str, bytes] | None:
        """The next change not seen yet, or None after `timeout` seconds of silence (or at
        once when closed)."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    while not self.unread:
                        if self.closed:
                            return None
                        self.ready.clear()
                        await self.ready.wait()
                    key = next(iter(self.unread))
                    snapshot = self.unread.pop(key)
                    if self.take(key, snapshot):
                        return key, snapshot.json
        except TimeoutError:
            return None

    def drain(self) -> None:
        """Take in every change already arrived, without waiting."""
        while self.unread:
            key = next(iter(self.unread))
            self.take(key, self.unread.pop(key))

    def take(self, key: str, snapshot: Snapshot) -> bool:
        """Mark `snapshot` seen if it is newer than what was seen of `key`."""
        known = self.seen.get(key)
        if known is not None and known.version >= snapshot.version:
            return False
        self.seen[key] = snapshot
        return True

    def all_terminal(self) -> bool:
        return all(k in self.seen and is_terminal(self.seen[k].json) for k in self.keys)


@dataclass
class Subscription:
    listeners: set[Listener] = field(default_factory=set)
    # Set once Redis has confirmed the subscription: then a waiter may read the records.
    confirmed: asyncio.Event = field(default_factory=asyncio.Event)


class EventHub:
    def __init__(self, redis: Redis, keys: Keys, resync: Resync) -> None:
        self.redis = redis  # its pool makes our one connection; it must have no read timeout
        self.prefix = keys.channel_prefix.encode()
        self.resync = resync
        self.subscriptions: dict[bytes, Subscription] = {}
        # SUBSCRIBE/UNSUBSCRIBE commands sent per channel and not answered yet. Redis answers
        # in order, so when this drops to zero Redis is in the state we last asked for.
        self._inflight: dict[bytes, int] = {}
        self._conn: AbstractConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._connected = False
        self._up = asyncio.Event()  # set while connected
        self._leaving: set[bytes] = set()  # channels to unsubscribe from, sent together
        self._flush: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Open the connection; if Redis is not up yet, keep trying in the background."""
        self._conn = self.redis.connection_pool.make_connection()  # type: ignore[no-untyped-call]
        try:
            await self._conn.connect()
            self._connected = True
            self._up.set()
        except REDIS_UNAVAILABLE as exc:
            log.warning("event hub: redis unavailable (%s); retrying", exc)
        self._reader = asyncio.create_task(self._read_forever(), name="taskd-event-hub")

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._conn is not None:
            await self._conn.disconnect()

    def close_listeners(self) -> None:
        """The server is stopping: every waiter answers with what it has now."""
        for sub in self.subscriptions.values():
            for listener in sub.listeners:
                listener.close()

    @contextlib.asynccontextmanager
    async def watch(self, keys: Sequence[str]) -> AsyncIterator[Listener]:
        """Subscribe a new listener to `keys`; on exit (even by cancellation) release it."""
        listener = Listener(keys)
        try:
            await self._subscribe(listener)
            yield listener
        finally:
            await self._unsubscribe(listener)

    async def _subscribe(self, listener: Listener) -> None:
        new: list[bytes] = []
        waits: list[asyncio.Event] = []
        for key in listener.keys:
            name = self.prefix + key.encode()
            sub = self.subscriptions.get(name)
            if sub is None:
                sub = self.subscriptions[name] = Subscription()
                new.append(name)
            sub.listeners.add(listener)
            waits.append(sub.confirmed)
        if not self._connected:
            # Reconnecting: wait a little, then answer (503) rather than wait for Redis.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(RECONNECT_WAIT):
                    await self._up.wait()
        if not self._connected:
            raise RedisConnectionError("the event hub is not connected to redis")
        if new:
            await self._send(b"SUBSCRIBE", new)
        try:
            async with asyncio.timeout(COMMAND_TIMEOUT):
                for event in waits:
                    await event.wait()
        except TimeoutError:
            raise RedisTimeoutError("redis did not confirm a subscription") from None

    async def _unsubscribe(self, listener: Listener) -> None:
        gone: list[bytes] = []
        for key in listener.keys:
            name = self.prefix + key.encode()
            sub = self.subscriptions.get(name)
            if sub is None:
                continue
            sub.listeners.discard(listener)
            if not sub.listeners:
                del self.subscriptions[name]
                gone.append(name)
        if gone:
            # Many streams end together (a burst of terminal statuses): one UNSUBSCRIBE for
            # all the channels left in this turn of the event loop.
            if not self._leaving:
                self._flush = asyncio.get_running_loop().create_task(self._leave())
            self._leaving.update(gone)

    async def _leave(self) -> None:
        await asyncio.sleep(0)
        # A channel wanted again meanwhile stays subscribed.
        names = [n for n in self._leaving if n not in self.subscriptions]
        self._leaving.clear()
        if names:
            await self._send(b"UNSUBSCRIBE", names)

    async def _send(self, command: bytes, names: list[bytes]) -> None:
        if self._conn is None or not self._connected:
            return  # the reconnect subscribes to every channel wanted by then
        for name in names:
            self._inflight[name] = self._inflight.get(name, 0) + 1
        try:
            await self._conn.send_command(command, *names, check_health=False)
        except REDIS_UNAVAILABLE:
            log.warning("event hub: sending %s failed; reconnecting", command.decode())

    async def _read_forever(self) -> None:
        assert self._conn is not None
        if not self._connected:
            await self._reconnect()
        while True:
            try:
                reply = await self._conn.read_response(disconnect_on_error=False, push_request=True)
            except REDIS_UNAVAILABLE as exc:
                log.warning("event hub: connection lost (%s); reconnecting", exc)
                await self._reconnect()
                continue
            if isinstance(reply, list) and len(reply) == 3:
                self._dispatch(reply[0], reply[1], reply[2])

    def _dispatch(self, kind: bytes, name: bytes, data: object) -> None:
        if kind == b"message" and isinstance(data, bytes):
            sub = self.subscriptions.get(name)
            if sub is None:
                return
            version, _, json = data.partition(b" ")
            snapshot = Snapshot(int(version), json)
            key = name[len(self.prefix) :].decode()
            for listener in sub.listeners:
                listener.offer(key, snapshot)
        elif kind in (b"subscribe", b"unsubscribe"):
            left = self._inflight.get(name, 0) - 1
            if left > 0:
                self._inflight[name] = left
                return
            self._inflight.pop(name, None)
            sub = self.subscriptions.get(name)
            if sub is not None and kind == b"subscribe":
                sub.confirmed.set()

    async def _reconnect(self) -> None:
        assert self._conn is not None
        self._connected = False
        self._up.clear()
        delay = 0.05
        while True:
            await self._conn.disconnect()
            try:
                await self._conn.connect()  # type: ignore[no-untyped-call]
            except REDIS_UNAVAILABLE:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            # No await from here to `_connected = True`: a channel wanted meanwhile is either
            # in `names` or sent by its own _subscribe on the new connection.
            self._inflight.clear()
            names = list(self.subscriptions)
            for sub in self.subscriptions.values():
                sub.confirmed.clear()
            self._connected = True
            self._up.set()
            if names:
                await self._send(b"SUBSCRIBE", names)
            break
        log.info("event hub: reconnected, %d channels", len(names))
        catch_up = asyncio.create_task(self._catch_up(names))
        self._background.add(catch_up)
        catch_up.add_done_callback(self._background.discard)

    async def _catch_up(self, names: list[bytes]) -> None:
        """Changes published while we were away: read the records once resubscribed."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CATCH_UP_WAIT):
                for name in names:
                    sub = self.subscriptions.get(name)
                    if sub is not None:
                        await sub.confirmed.wait()
        keys = [name[len(self.prefix) :].decode() for name in names]
        try:
            snapshots = await self.resync(keys)
        except REDIS_UNAVAILABLE as exc:
            log.warning("event hub: catching up failed (%s)", exc)
            return
        for key, snapshot in zip(keys, snapshots, strict=True):
            sub = self.subscriptions.get(self.prefix + key.encode())
            if sub is not None and snapshot is not None:
                for listener in sub.listeners:
                    listener.offer(key, snapshot)
