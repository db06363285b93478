"""The arq entry: a worker built from taskd settings and the task registry."""

from workers.settings import WorkerSettings, build_worker, run_worker

__all__ = ["WorkerSettings", "build_worker", "run_worker"]
