"""Log set-up: text for people, one JSON object per line for collectors."""

from __future__ import annotations

import logging

import orjson
import pytest

from taskd.context import TaskLogger
from taskd.logs import setup_logging
from taskd.settings import LogSettings


@pytest.fixture
def restore_logging() -> object:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield None
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_logging")
def test_json_lines_carry_the_task_key(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(LogSettings(level="debug", format="json"), "worker")
    TaskLogger(logging.getLogger("tasks.demo"), {"task_key": "K" * 26}).info("step %d", 3)
    entry = orjson.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert entry["level"] == "info"
    assert entry["logger"] == "tasks.demo"
    assert entry["message"] == f"task {'K' * 26}: step 3"
    assert entry["task_key"] == "K" * 26


@pytest.mark.usefixtures("restore_logging")
def test_text_lines_name_the_process_and_respect_the_level(
    capsys: pytest.CaptureFixture[str],
) -> None:
    setup_logging(LogSettings(level="warning", format="text"), "serve")
    logging.getLogger("taskd.x").info("hidden")
    logging.getLogger("taskd.x").warning("shown")
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert " serve WARNING taskd.x: shown" in lines[0]
