"""A real browser (headless Chromium) shows a thumbnail from a signed `<img src>` create_file."""

from __future__ import annotations

import asyncio
import html
import re
import shutil
import time
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

from taskd.signing import EXPIRES, sign_url
from tests.conftest import SECRET, Client
from tests.helpers import CHROMIUM_FLAGS
from tests.images import ImageServer, jpeg


async def dump_dom(url: str, profile: Path) -> str:
    chromium = shutil.which("chromium")
    assert chromium, "chromium is missing: `make test` installs it (apt-get install chromium)"
    process = await asyncio.create_subprocess_exec(
        chromium,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        "--virtual-time-budget=20000",
        "--dump-dom",
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        stdout, _ = await asyncio.wait_for(process.communicate(), timeout=45)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return stdout.decode()


async def test_a_page_shows_the_thumbnail_of_a_signed_img_src(
    api: Client, image_server: ImageServer, tmp_path: Path
) -> None:
    source = image_server.add("cat.jpg", jpeg(1600, 1200))
    unsigned = (
        f"{api.make_url('/v1/create_file/cat.jpg')}"
        f"?task_name=image.thumb&url={quote(source, safe='')}&width=120"
    )
    expires = str(int(time.time()) + 300)
    src = sign_url(unsigned, SECRET.encode(), [("account", "demo"), (EXPIRES, expires)])
    page = f"""<!doctype html><html><body>
<img id="thumb" src="{html.escape(src)}">
<div id="out">waiting</div>
<script>
  const img = document.getElementById("thumb");
  const out = document.getElementById("out");
  const show = () => out.textContent = img.naturalWidth + "x" + img.naturalHeight;
  img.complete && img.naturalWidth ? show() : img.addEventListener("load", show);
  img.addEventListener("error", () => out.textContent = "broken");
</script></body></html>"""
    image_server.extra["page.html"] = lambda request: web.Response(
        text=page, content_type="text/html"
    )
    dom = await dump_dom(f"{image_server.url}/page.html", tmp_path / "profile")
    match = re.search(r'<div id="out">([^<]*)</div>', dom)
    assert match, dom[-2000:]
    assert match.group(1) == "120x90"
    assert image_server.hits["cat.jpg"] == 1
