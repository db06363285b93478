"""Typed application state: what the handlers share, opened and closed in one cleanup context."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from taskd.auth import Accounts
from taskd.callbacks import Callbacks
from taskd.connections import redis_client
from taskd.events import EventHub
from taskd.fetch import Fetcher
from taskd.keys import Keys
from taskd.metrics import ServerMetrics
from taskd.records import Records
from taskd.registry import Registry
from taskd.settings import Settings
from taskd.storage import Storage, open_storage
from taskd.web.hits import RecentHits

SETTINGS = web.AppKey("settings", Settings)
ACCOUNTS = web.AppKey("accounts", Accounts)
REGISTRY = web.AppKey("registry", Registry)
CATALOG = web.AppKey("catalog", bytes)
RECORDS = web.AppKey("records", Records)
HUB = web.AppKey("hub", EventHub)
STORAGE = web.AppKey("storage", Storage)
CALLBACKS = web.AppKey("callbacks", Callbacks)
HITS = web.AppKey("hits", RecentHits)
METRICS = web.AppKey("metrics", ServerMetrics)
OPENAPI = web.AppKey("openapi", bytes)


async def resources_context(app: web.Application) -> AsyncIterator[None]:
    """Redis and its event hub, the storage, the fetcher for callbacks: opened, then closed."""
    settings = app[SETTINGS]
    keys = Keys(settings.redis.prefix)
    # Two connections, whatever the load: one for commands (each a short script or read,
    # sent in turn), one for the event hub's subscriptions.
    redis = redis_client(settings.redis, connections=1)
    listener = redis_client(settings.redis, connections=1, listening=True)
    records = Records(redis, keys, settings.worker.result_ttl)
    hub = EventHub(listener, keys, records.read)
    await hub.start()
    app[RECORDS], app[HUB] = records, hub
    try:
        async with (
            open_storage(settings.storage, redis, keys) as storage,
            Fetcher(settings.fetch) as fetcher,
        ):
            app[STORAGE], app[CALLBACKS] = storage, Callbacks(fetcher)
            try:
                yield
            finally:
                await app[CALLBACKS].close()
    finally:
        await hub.close()
        await listener.aclose(close_connection_pool=True)
        await redis.aclose(close_connection_pool=True)
