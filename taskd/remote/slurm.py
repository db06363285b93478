"""Slurm over SSH: submit a batch job, follow every job of a machine with one query per interval.

Following scales: a worker process has one `Follower` per machine, and each interval it runs
ONE `squeue` for all the jobs its tasks follow, then ONE `sacct` for those that left the
queue (`scontrol` when accounting is off), and fans the states out to the tasks. A task
sees each state change, then the job's end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import weakref
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from taskd.remote import RemoteError
from taskd.remote.commands import Output
from taskd.remote.machines import Machine

log = logging.getLogger(__name__)
TERMINAL = frozenset(
    {"COMPLETED", "FAILED", "TIMEOUT", "CANCELLED", "NODE_FAIL", "OUT_OF_MEMORY",
     "PREEMPTED", "BOOT_FAIL", "DEADLINE"}
)  # fmt: skip
# Intervals a job that left the queue may stay unknown to accounting (its record arrives
# about a second after the end) before scontrol's view of it is taken instead.
ACCOUNTING_PATIENCE = 5
# Intervals a job may be unknown to squeue, sacct and scontrol alike before it is given up.
UNKNOWN_PATIENCE = 30
JOB_ID = re.compile(r"[0-9]+(_[0-9]+)?")


class AccountingOff(RemoteError):
    """sacct cannot answer (accounting storage is off): scontrol is asked instead."""


@dataclass(frozen=True)
class JobEnd:
    state: str
    exit_code: int
    elapsed: float


@dataclass(frozen=True)
class Sbatch:
    script: str
    workdir: str
    name: str
    args: Sequence[str]
    idempotent = False

    def argv(self) -> list[str]:
        return [
            "sbatch", "--parsable", f"--job-name={self.name}", f"--chdir={self.workdir}",
            f"--output={self.workdir}/stdout", f"--error={self.workdir}/stderr",
            *self.args, self.script,
        ]  # fmt: skip

    def parse(self, output: Output) -> str:
        job_id = output.text.strip().split(";")[0]
        if output.exit_status != 0 or not JOB_ID.fullmatch(job_id):
            raise RemoteError(f"sbatch refused the job: {output.last_error_line or 'no job id'}")
        return job_id


@dataclass(frozen=True)
class Squeue:
    """States of the jobs still known to the controller (pending, running, just ended)."""

    jobs: Sequence[str]
    idempotent = True

    def argv(self) -> list[str]:
        return [
            "squeue", "--noheader", "--states=all", f"--jobs={','.join(self.jobs)}",
            "--format=%i|%T",
        ]  # fmt: skip

    def parse(self, output: Output) -> dict[str, str]:
        if output.exit_status != 0:
            if "Invalid job id" in output.last_error_line:
                return {}  # none of them is known any more
            raise RemoteError(f"squeue failed: {output.last_error_line}")
        states = {}
        for line in output.text.splitlines():
            job, _, state = line.strip().partition("|")
            if job and state:
                states[job] = state.split()[0]
        return states


@dataclass(frozen=True)
class FindJob:
    """The job a task submitted, by its name: for a re-run that has no stored job id."""

    name: str
    idempotent = True

    def argv(self) -> list[str]:
        return ["squeue", "--noheader", "--states=all", f"--name={self.name}", "--format=%i"]

    def parse(self, output: Output) -> str | None:
        jobs = output.text.split()
        return jobs[0] if output.exit_status == 0 and jobs else None


@dataclass(frozen=True)
class Sacct:
    jobs: Sequence[str]
    idempotent = True

    def argv(self) -> list[str]:
        return [
            "sacct", "--noheader", "--parsable2", "--allocations", f"--jobs={','.join(self.jobs)}",
            "--format=JobID,State,ExitCode,ElapsedRaw",
        ]  # fmt: skip

    def parse(self, output: Output) -> dict[str, JobEnd]:
        if output.exit_status != 0:
            raise AccountingOff(f"sacct failed: {output.last_error_line}")
        ends = {}
        for line in output.text.splitlines():
            fields = line.strip().split("|")
            if len(fields) == 4 and fields[1]:
                state = fields[1].split()[0]  # "CANCELLED by 0"
                if state in TERMINAL:
                    ends[fields[0]] = JobEnd(state, exit_code(fields[2]), float(fields[3] or 0))
        return ends


@dataclass(frozen=True)
class ScontrolJobs:
    """Every job the controller still holds, one line each: the end when accounting is off."""

    idempotent = True

    def argv(self) -> list[str]:
        return ["scontrol", "--oneliner", "show", "job"]

    def parse(self, output: Output) -> dict[str, JobEnd]:
        ends = {}
        for line in output.text.splitlines():
            fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
            state = fields.get("JobState", "")
            if "JobId" in fields and state in TERMINAL:
                ends[fields["JobId"]] = JobEnd(
                    state, exit_code(fields.get("ExitCode", "0:0")), run_time(fields)
                )
        return ends


@dataclass(frozen=True)
class Scancel:
    job: str
    idempotent = True

    def argv(self) -> list[str]:
        return ["scancel", self.job]

    def parse(self, output: Output) -> None:
        if output.exit_status != 0:
            raise RemoteError(f"scancel failed: {output.last_error_line}")


def exit_code(value: str) -> int:
    """Slurm's "code:signal": the code, or 128+signal for a job ended by a signal."""
    code, _, signal = value.partition(":")
    with contextlib.suppress(ValueError):
        if int(code) == 0 and signal and int(signal) > 0:
            return 128 + int(signal)
        return int(code)
    return -1


def run_time(fields: dict[str, str]) -> float:
    days, _, clock = fields.get("RunTime", "0:0:0").rpartition("-")
    seconds = 0.0
    for part in clock.split(":"):
        seconds = seconds * 60 + float(part or 0)
    return seconds + 86400 * int(days or 0)


class Followed:
    """One job as its task sees it: a queue of states, the last item being its JobEnd."""

    def __init__(self) -> None:
        self.updates: asyncio.Queue[str | JobEnd] = asyncio.Queue()
        self.state = ""
        self.unknown = 0  # intervals unknown to squeue and accounting alike
        self.out_of_queue = 0  # intervals since it left squeue without an accounting record

    def see(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.updates.put_nowait(state)


class Follower:
    """All the jobs the tasks of this process follow on one machine, polled together."""

    def __init__(self, machine: Machine) -> None:
        self.machine = machine
        self.jobs: dict[str, list[Followed]] = {}
        self.polls = 0  # intervals polled, for the tests and the logs
        self.accounting = True  # until sacct says it is off
        self._poller: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._last_error = ""

    async def follow(self, job: str) -> AsyncIterator[str | JobEnd]:
        """Each new state of `job`, then its JobEnd (the last item)."""
        followed = Followed()
        self.jobs.setdefault(job, []).append(followed)
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(
                self.poll_forever(), name=f"slurm-{self.machine.name}"
            )
            self.machine.background.add(self._poller)
        self._wake.set()  # look at the new job now, not an interval later
        try:
            while True:
                update = await followed.updates.get()
                yield update
                if isinstance(update, JobEnd):
                    return
        finally:
            watchers = self.jobs.get(job, [])
            if followed in watchers:
                watchers.remove(followed)
            if not watchers:
                self.jobs.pop(job, None)

    async def poll_forever(self) -> None:
        while self.jobs:
            try:
                await self.poll()
                self._last_error = ""
            except Exception as exc:  # the loop must outlive any one failure
                if not isinstance(exc, RemoteError):
                    log.exception("machine %s: following Slurm jobs failed", self.machine.name)
                elif str(exc) != self._last_error:  # once per kind of failure, not per interval
                    log.warning(
                        "machine %s: following Slurm jobs: %s; retrying", self.machine.name, exc
                    )
                    self._last_error = str(exc)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.machine.settings.poll_interval):
                    await self._wake.wait()

    async def poll(self) -> None:
        """One squeue for all jobs; one sacct (or scontrol) for those that left the queue."""
        jobs = list(self.jobs)
        if not jobs:
            return
        self.polls += 1
        states = await self.machine.run(Squeue(jobs))
        gone = []
        for job in jobs:
            state = states.get(job)
            if state is not None:
                self.publish(job, state)
            if state is None or state in TERMINAL:
                gone.append(job)
        if not gone:
            return
        ends = await self.ends(gone)
        for job in gone:
            end = ends.get(job)
            watchers = self.jobs.get(job, [])
            if end is not None:
                for followed in watchers:
                    followed.updates.put_nowait(end)
                continue
            for followed in watchers:
                followed.out_of_queue += 1
                if job not in states:
                    followed.unknown += 1
                    if followed.unknown > UNKNOWN_PATIENCE:
                        followed.updates.put_nowait(JobEnd("UNKNOWN", -1, 0.0))

    async def ends(self, jobs: list[str]) -> dict[str, JobEnd]:
        if self.accounting:
            try:
                ends = await self.machine.run(Sacct(jobs))
            except AccountingOff as exc:
                log.info("machine %s: %s; asking scontrol instead", self.machine.name, exc)
                self.accounting = False
            else:
                late = [
                    j
                    for j in jobs
                    if j not in ends
                    and any(f.out_of_queue >= ACCOUNTING_PATIENCE for f in self.jobs.get(j, []))
                ]
                if late:
                    ends.update(
                        (j, e)
                        for j, e in (await self.machine.run(ScontrolJobs())).items()
                        if j in late
                    )
                return ends
        return {j: e for j, e in (await self.machine.run(ScontrolJobs())).items() if j in jobs}

    def publish(self, job: str, state: str) -> None:
        for followed in self.jobs.get(job, []):
            if state not in TERMINAL:  # a terminal state is told with the job's end
                followed.see(state)


# One follower per machine of this process (a machine's own connection pool).
_followers: weakref.WeakKeyDictionary[Machine, Follower] = weakref.WeakKeyDictionary()


def follower_of(machine: Machine) -> Follower:
    """The process's follower for `machine`, made on first use."""
    follower = _followers.get(machine)
    if follower is None:
        follower = _followers[machine] = Follower(machine)
    return follower
