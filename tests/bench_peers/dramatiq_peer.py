"""Dramatiq, Redis broker, Results middleware; the worker: `dramatiq dramatiq_peer -p 1 -t 10`."""

from __future__ import annotations

import os
import sys

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend

URL = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/0")
broker = RedisBroker(url=URL)
broker.add_middleware(Results(backend=RedisBackend(url=URL)))
dramatiq.set_broker(broker)


@dramatiq.actor(store_results=True)
def hello(name: str) -> str:
    return f"Hello {name}"


def one() -> None:
    hello.send("x").get_result(block=True, timeout=30_000)


def batch(k: int) -> None:
    messages = [hello.send(str(i)) for i in range(k)]
    for message in messages:
        message.get_result(block=True, timeout=120_000)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(__file__))
    from drive import drive

    drive(one, batch)
