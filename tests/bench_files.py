"""`make bench`, files part: thumbnails (libvips vs Pillow) and cached `<img>` hits.

- Thumbnails: taskd's render (libvips) against plain Pillow (decode, then resize) and Pillow's
  own `thumbnail()` (JPEG draft mode), 12-megapixel sources to a 256 px box; each library in a
  fresh process, so peak memory (max RSS growth over the thumbnail) is its own.
- Cached hits: `GET /v1/create_file` answered from the result cache (302 to the file) by one
  `taskd serve`, against a bare aiohttp handler answering a fixed 302, same client, same load.
Nothing asserts time; figures and ratios are printed.
"""

from __future__ import annotations

import asyncio
import io
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import aiohttp
from aiohttp import web
from PIL import Image, ImageDraw

from taskd.redis_server import RedisServer
from tests.bench_latency import ROOT, bench_env, process, wait_http
from tests.conftest import free_port

LOAD_SECONDS = float(os.environ.get("BENCH_LOAD_SECONDS", "5"))
CONCURRENCY = 16

MEASURE = """
import io, sys, time
kind, source = sys.argv[1], sys.argv[2]
data = open(source, "rb").read()
if kind == "libvips":
    from tasks.image import ThumbParams, render
    params = ThumbParams(url="x")
    run = lambda: render(data, params, 10**9)
else:
    from PIL import Image
    def run():
        image = Image.open(io.BytesIO(data))
        if kind == "pillow":
            image.load()
            image = image.resize((256, round(256 * image.height / image.width)), Image.LANCZOS)
        else:
            image.thumbnail((256, 256))
        out = io.BytesIO()
        image.convert("RGB").save(out, "JPEG", quality=85)
def status_kb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
run()  # warm-up: one-time set-up is not the thumbnail's
open("/proc/self/clear_refs", "w").write("5")  # resets the peak (VmHWM) to the current RSS
base = status_kb("VmRSS")
run()
peak = (status_kb("VmHWM") - base) / 1024
began = time.perf_counter()
for _ in range(10):
    run()
print((time.perf_counter() - began) / 10 * 1000, peak)
"""

BARE = """
import sys
from aiohttp import web

async def redirect(request):
    return web.Response(status=302, headers={"Location": "/v1/files/K/thumb.jpg?expires=1&sig=x"})

app = web.Application()
app.router.add_get("/v1/create_file/{name}", redirect)
web.run_app(
    app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None,
    handler_cancellation=True,  # as taskd serve runs
)
"""


def make_sources(directory: Path) -> dict[str, Path]:
    """A 4000x3000 picture of overlapping discs, as JPEG, PNG and WebP."""
    image = Image.new("RGB", (4000, 3000))
    draw = ImageDraw.Draw(image)
    rng = random.Random(1)
    for _ in range(3000):
        x, y = rng.randrange(4000), rng.randrange(3000)
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        draw.ellipse((x, y, x + rng.randrange(300), y + rng.randrange(300)), fill=colour)
    sources = {}
    for fmt, options in (("jpeg", {"quality": 90}), ("png", {}), ("webp", {"quality": 85})):
        path = directory / f"source.{fmt}"
        image.save(path, fmt.upper(), **options)
        sources[fmt] = path
    return sources


def thumbnails(directory: Path) -> None:
    sources = make_sources(directory)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    print("\nthumbnail of a 12-megapixel image to a 256 px box (mean of 10; peak memory growth)")
    for fmt, source in sources.items():
        figures = {}
        for kind in ("pillow", "pillow-thumbnail", "libvips"):
            out = subprocess.run(
                [sys.executable, "-c", MEASURE, kind, str(source)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            figures[kind] = (float(out[0]), float(out[1]))
            ms, mb = figures[kind]
            print(f"  {fmt:<5} {kind:<17} {ms:8.1f} ms   peak +{mb:6.1f} MB")
        (plain_ms, plain_mb), (vips_ms, vips_mb) = figures["pillow"], figures["libvips"]
        print(
            f"  {fmt:<5} libvips vs plain Pillow: {plain_ms / vips_ms:.1f}x faster,"
            f" {vips_mb / max(plain_mb, 0.1):.2f}x the memory"
        )


async def hammer(url: str) -> float:
    """Requests per second answered 302 by `url` under CONCURRENCY clients for LOAD_SECONDS."""
    done = 0
    deadline = time.monotonic() + LOAD_SECONDS

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal done
        while time.monotonic() < deadline:
            async with session.get(url, allow_redirects=False) as response:
                assert response.status == 302, response.status
                await response.read()
            done += 1

    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:
        began = time.monotonic()
        await asyncio.gather(*(client(session) for _ in range(CONCURRENCY)))
        return done / (time.monotonic() - began)


async def serve_image(port: int, data: bytes) -> web.AppRunner:
    app = web.Application()

    async def image(request: web.Request) -> web.StreamResponse:
        return web.Response(body=data, content_type="image/jpeg")

    app.router.add_get("/cat.jpg", image)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


def cached_hits(work: Path) -> None:
    redis = RedisServer(work / "redis", port=free_port()).start()
    port, image_port, bare_port = free_port(), free_port(), free_port()
    env = bench_env(
        work,
        port,
        redis,
        f"""
        [storage]
        path = "{work / "files"}"
        [fetch]
        allow_hosts = ["127.0.0.1"]
        """,
    )
    source = io.BytesIO()
    Image.new("RGB", (1200, 900), (200, 40, 40)).save(source, "JPEG")
    image_url = quote(f"http://127.0.0.1:{image_port}/cat.jpg", safe="")
    url = (
        f"http://127.0.0.1:{port}/v1/create_file/cat.jpg?task_name=image.thumb"
        f"&url={image_url}&secret=bench"
    )

    async def measure() -> tuple[float, float]:
        runner = await serve_image(image_port, source.getvalue())
        try:
            await wait_http(f"http://127.0.0.1:{port}/v1/tasks")
            async with aiohttp.ClientSession() as session, session.get(url) as first:
                assert first.status == 200, await first.text()  # the one real thumbnail
            taskd_rate = await hammer(url)
        finally:
            await runner.cleanup()
        with process([sys.executable, "-c", BARE, str(bare_port)], env, ROOT):
            await asyncio.sleep(0.5)
            bare_rate = await hammer(f"http://127.0.0.1:{bare_port}/v1/create_file/cat.jpg")
        return taskd_rate, bare_rate

    try:
        with (
            process([sys.executable, "-m", "taskd", "worker"], env, ROOT),
            process([sys.executable, "-m", "taskd", "serve"], env, ROOT),
        ):
            taskd_rate, bare_rate = asyncio.run(measure())
    finally:
        redis.stop()
    print(f"\ncached <img> hits: GET /v1/create_file -> 302, {CONCURRENCY} clients,", end=" ")
    print(f"{LOAD_SECONDS:g} s")
    print(f"  taskd serve (result cache)         {taskd_rate:8.0f} req/s")
    print(f"  bare aiohttp handler (fixed 302)   {bare_rate:8.0f} req/s")
    print(f"  ratio taskd / bare                 {taskd_rate / bare_rate:8.2f}")


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="taskd-bench-files-"))
    thumbnails(work)
    cached_hits(work)


if __name__ == "__main__":
    main()
