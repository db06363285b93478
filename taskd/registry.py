"""Named tasks: the `task` decorator, parameter models, and the registry loaded from modules."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from taskd.context import TaskContext
from taskd.errors import TaskdError


class Params(BaseModel):
    """Base of every task's parameter model: unknown parameters are refused, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


P = TypeVar("P", bound=Params)
TaskFunction = Callable[[TaskContext, P], Awaitable[Any]]


@dataclass(frozen=True)
class TaskSpec(Generic[P]):
    """A named task: what the catalog shows and what a worker runs."""

    name: str
    params: type[P]
    run: TaskFunction[P]
    description: str
    files: list[str] | None = None

    def catalog_entry(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "parameters": self.params.model_json_schema(),
            "files": self.files,
        }


def task(
    name: str, params: type[P], *, files: list[str] | None = None
) -> Callable[[TaskFunction[P]], TaskSpec[P]]:
    """Register an async function under `name`; its docstring's first line is the description."""

    def wrap(fn: TaskFunction[P]) -> TaskSpec[P]:
        doc = (fn.__doc__ or "").strip().splitlines()
        return TaskSpec(name, params, fn, doc[0] if doc else "", files)

    return wrap


class RegistryError(TaskdError):
    """Task modules could not be loaded."""


class Registry:
    """The named tasks of one process, by name."""

    def __init__(self, specs: Iterable[TaskSpec[Any]]) -> None:
        self.specs: dict[str, TaskSpec[Any]] = {}
        for spec in specs:
            if spec.name in self.specs:
                raise RegistryError(f"task {spec.name!r} is defined twice")
            self.specs[spec.name] = spec

    def __contains__(self, name: object) -> bool:
        return name in self.specs

    def __getitem__(self, name: str) -> TaskSpec[Any]:
        return self.specs[name]

    def catalog(self) -> list[dict[str, Any]]:
        return [self.specs[name].catalog_entry() for name in sorted(self.specs)]


def load_registry(modules: Iterable[str]) -> Registry:
    """Import each module (and, for a package, its submodules) and collect its tasks."""
    specs: list[TaskSpec[Any]] = []
    for name in modules:
        try:
            for module in walk(importlib.import_module(name)):
                specs.extend(v for v in vars(module).values() if isinstance(v, TaskSpec))
        except ImportError as exc:
            raise RegistryError(f"cannot load task module {name!r}: {exc}") from None
    return Registry(specs)


def walk(module: ModuleType) -> Iterator[ModuleType]:
    yield module
    if hasattr(module, "__path__"):
        for info in pkgutil.walk_packages(module.__path__, module.__name__ + "."):
            yield importlib.import_module(info.name)
