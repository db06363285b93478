"""Remote machines over SSH: pooled connections, commands, SFTP staging and Slurm jobs.

`machines` holds one lazily opened asyncssh connection per configured machine and worker
process; `commands` are small argv-builder + parser objects run on it; `execution` runs a
user's command to its end (or kills it); `staging` moves files over SFTP; `slurm` submits
jobs and follows all of a machine's jobs with one `squeue` per interval.
"""

from __future__ import annotations

from taskd.errors import TaskFailed


class RemoteError(TaskFailed):
    """A machine could not be used, or a command on it failed: a one-line `error`."""


class ConnectionDropped(RemoteError):
    """The connection went away while a command ran: it may or may not have run."""
