"""Commands run on a machine: an argv builder and a parser of what came back.

A command line is always `shlex.join` of an argv list, never strings glued together, so no
parameter can smuggle shell syntax onto a machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeVar

T_co = TypeVar("T_co", covariant=True)


@dataclass(frozen=True)
class Output:
    stdout: bytes
    stderr: bytes
    exit_status: int

    @property
    def text(self) -> str:
        return self.stdout.decode(errors="replace")

    @property
    def last_error_line(self) -> str:
        """Where a failing program says why: the last non-blank line of stderr (else stdout)."""
        return last_line(self.stderr) or last_line(self.stdout)


def last_line(data: bytes) -> str:
    """The last non-blank line (at most 500 characters): where a program says what failed."""
    lines = [line for line in data.decode(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip()[:500] if lines else ""


class Command(Protocol[T_co]):
    """What a machine runs for taskd itself (`sbatch`, `squeue`, …)."""

    # Safe to run again when the connection dropped while it ran (a query, not a submit).
    idempotent: bool

    def argv(self) -> list[str]: ...

    def parse(self, output: Output) -> T_co: ...
