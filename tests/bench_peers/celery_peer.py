"""Celery 5, Redis broker and result backend.

The worker: `celery -A celery_peer worker -P threads -c 10`.
"""

from __future__ import annotations

import os
import sys

from celery import Celery

app = Celery(
    "celery_peer",
    broker=os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/0"),
    backend=os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/0"),
)
app.conf.update(worker_prefetch_multiplier=4, task_ignore_result=False, result_expires=3600)


@app.task
def hello(name: str) -> str:
    return f"Hello {name}"


def one() -> None:
    hello.delay("x").get(timeout=30)


def batch(k: int) -> None:
    results = [hello.delay(str(i)) for i in range(k)]
    for result in results:
        result.get(timeout=120)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(__file__))
    from drive import drive

    drive(one, batch)
