"""Images made by the tests (Pillow), and a local HTTP server that serves them."""

from __future__ import annotations

import inspect
import io
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from PIL import Image

Handler = Callable[[web.Request], web.StreamResponse | Awaitable[web.StreamResponse]]


def jpeg(
    width: int = 640,
    height: int = 480,
    *,
    mode: str = "RGB",
    orientation: int | None = None,
    exif: dict[int, object] | None = None,
) -> bytes:
    """A JPEG with a red left half and a blue right half (orientation checks need a shape)."""
    image = Image.new("RGB", (width, height), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, width // 2, height))
    if mode != "RGB":
        image = image.convert(mode)
    tags = Image.Exif()
    if orientation is not None:
        tags[0x0112] = orientation
    if exif:
        ifd = tags.get_ifd(0x8769)
        ifd.update(exif)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, exif=tags.tobytes())
    return out.getvalue()


def png(width: int = 300, height: int = 200, *, alpha: bool = True) -> bytes:
    """Transparent everywhere but an opaque green square in the middle."""
    image = Image.new("RGBA" if alpha else "RGB", (width, height), (0, 0, 0, 0))
    image.paste((0, 255, 0, 255), (width // 4, height // 4, 3 * width // 4, 3 * height // 4))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def animated_gif() -> bytes:
    """Three frames: red, green, blue (the first one is the thumbnail)."""
    frames = [Image.new("RGB", (120, 80), color) for color in ("red", "lime", "blue")]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return out.getvalue()


def pixel_bomb() -> bytes:
    """A 30000x30000 PNG of one colour: under a megabyte, 900 megapixels once decoded."""
    import pyvips

    return bytes(pyvips.Image.black(30000, 30000).write_to_buffer(".png", compression=9))


def pixel(image: Image.Image, x: int, y: int) -> tuple[int, ...]:
    value = image.getpixel((x, y))
    assert isinstance(value, tuple), value
    return value


def mostly(rgb: tuple[int, ...], channel: int) -> bool:
    """Whether `channel` (0 red, 1 green, 2 blue) clearly dominates, JPEG noise allowed."""
    return rgb[channel] > 180 and all(v < 100 for i, v in enumerate(rgb[:3]) if i != channel)


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@dataclass
class ImageServer:
    """Serves `files` by name and counts every request it gets, by path."""

    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Handler] = field(default_factory=dict)
    url: str = ""

    def add(self, name: str, data: bytes, content_type: str = "image/jpeg") -> str:
        self.files[name] = (data, content_type)
        return f"{self.url}/{name}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.hits[name] = self.hits.get(name, 0) + 1
        if name in self.extra:
            answer = self.extra[name](request)
            return await answer if inspect.isawaitable(answer) else answer
        if name not in self.files:
            raise web.HTTPNotFound()
        data, content_type = self.files[name]
        return web.Response(body=data, content_type=content_type)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{name}", self.handle)
        return app
