"""The live page and the JavaScript client, driven in headless Chromium (Debian's, by Playwright).

taskd runs as real `serve` and `worker` processes; the page is loaded from `serve` itself,
as a user would open it, and used through its form and buttons.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.async_api import Browser, Page, async_playwright

from tests.conftest import API_KEY, ConfigFactory, free_port
from tests.helpers import CHROMIUM_FLAGS, ROOT
from tests.images import ImageServer, jpeg
from tests.processes import taskd, wait_for_line, write_toml

pytestmark = pytest.mark.browser
ARTIFACTS = ROOT / "var" / "test-artifacts"


@pytest.fixture
def service(make_config: ConfigFactory, tmp_path: Path) -> Iterator[Callable[[], str]]:
    """`taskd serve` and `taskd worker` processes; calling the result (re)starts serve."""
    port = free_port()
    config = write_toml(tmp_path / "taskd.toml", make_config(server={"port": port}))
    with contextlib.ExitStack() as stack:
        worker_log = tmp_path / "worker.log"
        worker = stack.enter_context(
            taskd("--config", str(config), "worker", cwd=tmp_path, log=worker_log)
        )
        wait_for_line(worker_log, "worker started", worker)
        serves: list[Any] = []

        def start() -> str:
            for process in serves:  # what a redeploy does: SIGTERM, then a new process
                process.send_signal(signal.SIGTERM)
                process.wait(10)
            log = tmp_path / f"serve-{len(serves)}.log"
            process = stack.enter_context(
                taskd("--config", str(config), "serve", cwd=tmp_path, log=log)
            )
            wait_for_line(log, "serving http://", process)
            serves.append(process)
            return f"http://localhost:{port}"  # an origin the tests' account allows

        yield start


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    chromium = shutil.which("chromium")
    assert chromium, "chromium is missing: `make test` installs it (apt-get install chromium)"
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        yield launched
        await launched.close()


async def open_page(browser: Browser, url: str) -> Page:
    page = await browser.new_page(viewport={"width": 390, "height": 844})  # a phone's width
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(url)
    await page.wait_for_selector("body[data-ready=true]")
    assert errors == []
    return page


async def submit(page: Page, task: str, **fields: str) -> str:
    """Pick `task`, fill its form, submit; the key of the row that appears."""
    before = await page.locator("#tasks li").count()
    await page.select_option("#task-name", task)
    for name, value in fields.items():
        await page.fill(f"#fields [name={name}]", value)
    await page.click("#submit-button")
    await page.wait_for_function(f"document.querySelectorAll('#tasks li').length > {before}")
    return str(await page.locator("#tasks li").first.get_attribute("data-key"))


def row(page: Page, key: str) -> Any:
    return page.locator(f'#tasks li[data-key="{key}"]')


async def until_status(page: Page, key: str, status: str) -> None:
    await page.locator(f'#tasks li[data-key="{key}"][data-status="{status}"]').wait_for()


async def test_the_page_submits_follows_cancels_and_shows_images(
    service: Callable[[], str], browser: Browser, image_server: ImageServer
) -> None:
    base = service()
    page = await open_page(browser, f"{base}/")
    await page.fill("#api-key", API_KEY)
    # The form is made from the task's JSON Schema.
    await page.select_option("#task-name", "sleep")
    assert await page.locator("#fields [name=seconds]").get_attribute("type") == "number"
    assert await page.locator("#fields [name=seconds]").get_attribute("max") == "3600"

    done = await submit(page, "sleep", seconds="1.5", steps="5")
    await until_status(page, done, "success")
    assert await row(page, done).locator("progress").evaluate("p => p.value") == 100
    assert await row(page, done).locator(".label").text_content() == "100%"
    assert await row(page, done).locator(".result").text_content() == "1.5"

    running = await submit(page, "sleep", seconds="60")
    await until_status(page, running, "executing")
    await row(page, running).locator("button.cancel").click()
    await until_status(page, running, "error")
    assert await row(page, running).locator(".result").text_content() == '"cancelled"'

    url = image_server.add("cat.jpg", jpeg(800, 600))
    thumb = await submit(page, "image.thumb", url=url, width="200")
    await until_status(page, thumb, "success")
    image = row(page, thumb).locator(".files img")
    await page.wait_for_function(
        "k => { const i = document.querySelector(`li[data-key='${k}'] img`);"
        " return i && i.complete && i.naturalWidth > 0; }",
        arg=thumb,
    )
    assert await image.evaluate("i => i.naturalWidth") == 200

    # This browser's tasks are still listed, with their outcome, after a reload.
    await page.reload()
    await page.wait_for_selector("body[data-ready=true]")
    for key, status in ((done, "success"), (running, "error"), (thumb, "success")):
        await until_status(page, key, status)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "page.png"
    await page.screenshot(path=str(shot), full_page=True)
    colours = Image.open(io.BytesIO(shot.read_bytes())).convert("RGB").getcolors(1 << 20)
    assert colours is not None
    assert len(colours) > 50  # text, bars and a photo: not a blank page


async def test_the_javascript_client(service: Callable[[], str], browser: Browser) -> None:
    base = service()
    page = await open_page(browser, f"{base}/ui")
    await page.evaluate(
        """async (apiKey) => {
            const { Taskd } = await import("/v1/client.js");
            window.taskd = new Taskd("", { apiKey });
        }""",
        API_KEY,
    )
    [done] = await page.evaluate(
        "taskd.create({ task_name: 'hello', name: 'js' }, { block: true })"
    )
    assert done["result"] == "Hello js"
    streamed = await page.evaluate(
        """async () => {
            const seen = [];
            const task = { task_name: "sleep", seconds: 0.4, steps: 2 };
            for await (const s of taskd.createStream(task))
                seen.push(s.status + ":" + (s.progress ?? ""));
            return seen;
        }"""
    )
    assert streamed[0] == "queued:"
    assert streamed[-1] == "success:100"
    by_callback = await page.evaluate(
        """async () => {
            const seen = [];
            const final = await taskd.createStream(
                { task_name: "hello", name: "cb" }, { onStatus: (s) => seen.push(s.status) });
            return [seen.at(-1), final[0].result];
        }"""
    )
    assert by_callback == ["success", "Hello cb"]
    error = await page.evaluate(
        "taskd.create({ task_name: 'hello' }).catch((e) => [e.status, e.errors[0].name])"
    )
    assert error == [400, "tasks.name"]
    assert await page.evaluate("taskd.fileUrl('K', 'a.jpg')") == "/v1/file/a.jpg?task=K"

    # watch(): an EventSource. The server is restarted while it follows a task: the browser
    # reconnects by itself and the stream goes on from a fresh snapshot to the end.
    [sleeping] = await page.evaluate("taskd.create({ task_name: 'sleep', seconds: 5, steps: 5 })")
    await page.evaluate(
        """(key) => {
            window.watched = { snapshots: 0, statuses: [], ended: null };
            const w = taskd.watch([key], (s) => window.watched.statuses.push(s.status),
                                  { onEnd: (final) => { window.watched.ended = final; } });
            w.source.addEventListener("snapshot", () => { window.watched.snapshots += 1; });
        }""",
        sleeping["key"],
    )
    await page.wait_for_function("window.watched.statuses.includes('executing')")
    service()  # SIGTERM on serve (its streams end without `end`), a new serve on the port
    await page.wait_for_function("window.watched.ended !== null", timeout=30_000)
    watched = await page.evaluate("window.watched")
    assert watched["snapshots"] >= 2  # the first one, and the reconnect's
    assert watched["ended"][0]["status"] == "success"
    assert watched["statuses"][-1] == "success"


async def test_the_client_module_and_page_are_served(
    service: Callable[[], str], browser: Browser
) -> None:
    base = service()
    page = await browser.new_page()
    for path, kind in (
        ("/v1/client.js", "text/javascript"),
        ("/ui/app.js", "text/javascript"),
        ("/ui/style.css", "text/css"),
        ("/", "text/html"),
    ):
        response = await page.request.get(f"{base}{path}")
        assert response.status == 200
        assert response.headers["content-type"].startswith(kind)
    missing = await page.request.get(f"{base}/ui/secret.py")
    assert missing.status == 404
    assert (await missing.json())["status"] == "error"
