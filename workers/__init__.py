"""The worker side: the engine that claims, runs and settles tasks, and its process."""

from workers.worker import Worker, run_worker

__all__ = ["Worker", "run_worker"]
