"""Prometheus metrics: each process's own, and the workers' pushed through Redis.

Workers listen on no port and may run on many machines, so each worker puts a snapshot of
its metrics in its heartbeat (every `lease`/6 seconds) and `GET /metrics` on any front end
answers its own metrics plus every living worker's, labelled `worker`: one scrape sees the
whole deployment, at the price of worker figures up to one heartbeat old.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

# `_created` series would double every counter for little use.
disable_created_metrics()  # type: ignore[no-untyped-call]
# Seconds: from a few ms (hello) to hours (a Slurm job).
DURATIONS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200)


class WorkerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.finished = Counter(
            "taskd_tasks_finished", "Tasks settled by this worker", ["name", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.run_seconds = Histogram(
            "taskd_task_run_seconds", "Time an attempt ran", ["name"],
            buckets=DURATIONS, registry=self.registry,
        )  # fmt: skip
        self.wait_seconds = Histogram(
            "taskd_task_queue_wait_seconds", "Time a task waited in the queue before it started",
            ["name"], buckets=DURATIONS, registry=self.registry,
        )  # fmt: skip
        self.slots_busy = Gauge(
            "taskd_worker_slots_busy", "Tasks this worker runs now", registry=self.registry
        )
        self.slots = Gauge("taskd_worker_slots", "max_jobs of this worker", registry=self.registry)
        # `labels()` costs a lock and a tuple per call: each task name's children, kept.
        self._by_name: dict[str, tuple[Any, Any]] = {}
        self._by_outcome: dict[tuple[str, str], Any] = {}

    def _named(self, name: str) -> tuple[Any, Any]:
        children = self._by_name.get(name)
        if children is None:
            children = (self.wait_seconds.labels(name), self.run_seconds.labels(name))
            self._by_name[name] = children
        return children

    def waited(self, name: str, seconds: float) -> None:
        self._named(name)[0].observe(seconds)

    def ran(self, name: str, seconds: float) -> None:
        self._named(name)[1].observe(seconds)

    def settled(self, name: str, status: str) -> None:
        child = self._by_outcome.get((name, status))
        if child is None:
            child = self._by_outcome[(name, status)] = self.finished.labels(name, status)
        child.inc()

    def snapshot(self) -> list[Any]:
        """The registry's samples as JSON-ready lists, for the heartbeat."""
        return [
            [m.name, m.type, m.documentation, [[s.name, s.labels, s.value] for s in m.samples]]
            for m in self.registry.collect()
        ]


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "taskd_http_requests", "HTTP requests answered", ["route", "method", "code"],
            registry=self.registry,
        )  # fmt: skip
        self.created = Counter(
            "taskd_tasks_created", "Tasks created through this server", ["name"],
            registry=self.registry,
        )  # fmt: skip
        self.open_streams = Gauge(
            "taskd_open_streams", "NDJSON and SSE streams open now", registry=self.registry
        )
        self.queue_depth = Gauge(
            "taskd_queue_depth", "Tasks waiting in the queue", registry=self.registry
        )
        self.workers = WorkerSamples()
        self.registry.register(self.workers)


class WorkerSamples(Collector):
    """The living workers' snapshots, merged into one family per metric, labelled `worker`."""

    def __init__(self) -> None:
        self.snapshots: dict[str, list[Any]] = {}

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        for worker, snapshot in sorted(self.snapshots.items()):
            try:
                for name, kind, documentation, samples in snapshot:
                    family = families.get(name)
                    if family is None:
                        family = families[name] = Metric(name, documentation, kind)
                    for sample, labels, value in samples:
                        family.add_sample(sample, {**labels, "worker": worker}, value)
            except (TypeError, ValueError):  # a snapshot in another shape: skip that worker
                continue
        yield from families.values()

    def describe(self) -> Iterable[Metric]:
        return []  # unknown until workers report: never checked for clashes at registration
