"""image.info and image.thumb: what an image is, and thumbnails of it, with libvips.

libvips was chosen by measurement (README, "Performance"): it decodes only what the output
needs (JPEG and WebP shrink-on-load, PNG streamed), so a 12-megapixel source costs a fraction
of the time and memory of decoding it whole. Decoding runs in a thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from taskd.storage import check_name
from taskd.tasks import Params, TaskContext, TaskFailed, task

# Raster formats only, told by `sniff`: libvips can also load SVG, PDF and others we do not
# want to parse.
LOADERS = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "gif": "image/gif",
    "tiff": "image/tiff",
    "heif": "image/heif",
    "avif": "image/avif",
}
HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"mif1", b"msf1"})
AVIF_BRANDS = frozenset({b"avif", b"avis"})
FORMATS = {
    "jpeg": ("jpg", "image/jpeg"),
    "png": ("png", "image/png"),
    "gif": ("gif", "image/gif"),
    "webp": ("webp", "image/webp"),
}
# EXIF orientation → degrees counterclockwise that show the image as shot (mirrors ignored).
ROTATION = {1: 0, 2: 0, 3: 180, 4: 180, 5: 90, 6: 270, 7: 270, 8: 90}
# Our rotations are counterclockwise; libvips' are clockwise.
ROT = {90: "d270", 180: "d180", 270: "d90"}
DEFAULT_BOX = 256
MAX_SIDE = 10_000
# libvips renders an EXIF entry as "RAW (READABLE, Type, N components, M bytes)", e.g.
# "1/125 (1/125 sec., Rational, 1 components, 8 bytes)".
EXIF_RAW = re.compile(r"^(.*?) \(.*, \w+, \d+ components?, \d+ bytes?\)\s*$")

Side = Annotated[int, Field(ge=1, le=MAX_SIDE)]


class InfoParams(Params):
    url: str


class ThumbParams(Params):
    url: str
    width: Side | None = None
    height: Side | None = None
    crop: bool = False
    rotation: Literal[0, 90, 180, 270] = 0
    format: Literal["jpeg", "png", "gif", "webp"] = "jpeg"
    sizes: dict[str, Side] | None = Field(default=None, min_length=1, max_length=20)

    @field_validator("sizes")
    @classmethod
    def check_sizes(cls, sizes: dict[str, int] | None) -> dict[str, int] | None:
        for name in sizes or {}:
            check_name(name)
        return sizes


@task("image.info", InfoParams)
async def info(ctx: TaskContext, params: InfoParams) -> dict[str, Any]:
    """Type, size, transparency, rotation and EXIF facts of the image at `url`."""
    fetched = await ctx.fetch(params.url)
    return await asyncio.to_thread(describe, fetched.body)


@task("image.thumb", ThumbParams, files=["thumb.<format extension>", "<each name in sizes>"])
async def thumb(ctx: TaskContext, params: ThumbParams) -> dict[str, Any]:
    """A thumbnail of the image at `url` (or one per entry of `sizes`), EXIF-rotated upright."""
    fetched = await ctx.fetch(params.url)
    rendered = await asyncio.to_thread(render, fetched.body, params, ctx.max_pixels)
    extension, content_type = FORMATS[params.format]
    for output in rendered.outputs:
        name = output.name if params.sizes else f"thumb.{extension}"
        await ctx.add_file(name, output.data, content_type)
    result: dict[str, Any] = {
        "original_width": rendered.original_width,
        "original_height": rendered.original_height,
    }
    if params.sizes:
        result["sizes"] = {o.name: {"width": o.width, "height": o.height} for o in rendered.outputs}
    else:
        result = {
            "width": rendered.outputs[0].width,
            "height": rendered.outputs[0].height,
            **result,
        }
    return result


def vips() -> Any:
    # Imported when first used: the web server loads this module for the catalog only.
    import pyvips

    pyvips.cache_set_max(0)  # each source is used once; keep no decoded pixels around
    return pyvips


def open_image(data: bytes) -> tuple[Any, str]:
    """The image's header (no pixels decoded yet) and its content type."""
    pyvips = vips()
    kind = sniff(data)
    if kind is None:
        raise TaskFailed("not an image (or not one of: JPEG, PNG, WebP, GIF, TIFF, HEIF, AVIF)")
    try:
        image = pyvips.Image.new_from_buffer(data, "")
    except pyvips.Error as exc:
        raise TaskFailed(f"cannot read image: {first_line(exc)}") from None
    return image, LOADERS[kind]


def sniff(data: bytes) -> str | None:
    """The format by its magic bytes, before libvips sees anything (it parses SVG, PDF…)."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    if data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS:
        return "heif"
    if data[4:8] == b"ftyp" and data[8:12] in AVIF_BRANDS:
        return "avif"
    return None


def describe(data: bytes) -> dict[str, Any]:
    image, content_type = open_image(data)
    fields = set(image.get_fields())
    orientation = image.get("orientation") if "orientation" in fields else 1
    result: dict[str, Any] = {
        "content_type": content_type,
        "type": "image",
        "width": image.width,
        "height": image.height,
        "alpha": bool(image.hasalpha()),
        "rotation": ROTATION.get(orientation, 0),
    }
    result.update(exif_facts(image, fields))
    return result


def exif_facts(image: Any, fields: set[str]) -> dict[str, Any]:
    def raw(*names: str) -> str | None:
        for name in names:
            if name in fields:
                match = EXIF_RAW.match(str(image.get(name)))
                if match:
                    return match.group(1).strip()
        return None

    facts: dict[str, Any] = {}
    parsers: dict[str, tuple[tuple[str, ...], Any]] = {
        "date_time": (("exif-ifd2-DateTimeOriginal", "exif-ifd0-DateTime"), iso_datetime),
        "flash": (("exif-ifd2-Flash",), lambda v: bool(int(v.split()[0]) & 1)),
        "focal_length": (("exif-ifd2-FocalLength",), rational),
        "iso_speed": (
            ("exif-ifd2-ISOSpeedRatings", "exif-ifd2-PhotographicSensitivity"),
            lambda v: int(v.split()[0]),
        ),
        "exposure_time": (("exif-ifd2-ExposureTime",), rational),
    }
    for key, (names, parse) in parsers.items():
        value = raw(*names)
        if value:
            with contextlib.suppress(ValueError, ZeroDivisionError):  # malformed: left out
                facts[key] = parse(value)
    return facts


def iso_datetime(value: str) -> str:
    date, _, time = value.partition(" ")
    if not re.fullmatch(r"\d{4}:\d\d:\d\d", date) or not re.fullmatch(r"\d\d:\d\d:\d\d", time):
        raise ValueError(value)
    return f"{date.replace(':', '-')}T{time}"


def rational(value: str) -> float:
    numerator, _, denominator = value.split()[0].partition("/")
    result = float(numerator) / float(denominator or 1)
    return round(result, 6)


@dataclass(frozen=True)
class Output:
    name: str
    data: bytes
    width: int
    height: int


@dataclass(frozen=True)
class Rendered:
    original_width: int
    original_height: int
    outputs: list[Output]


def render(data: bytes, params: ThumbParams, max_pixels: int) -> Rendered:
    pyvips = vips()
    header, _ = open_image(data)
    if header.width * header.height > max_pixels:
        raise TaskFailed(
            f"image too large: {header.width}x{header.height} pixels (limit {max_pixels})"
        )
    orientation = header.get("orientation") if "orientation" in header.get_fields() else 1
    upright = (
        (header.height, header.width)
        if orientation in (5, 6, 7, 8)
        else (header.width, header.height)
    )
    boxes = (
        {name: (side, side) for name, side in params.sizes.items()}
        if params.sizes
        else {"": box(params)}
    )
    outputs = []
    try:
        for name, (width, height) in boxes.items():
            image = thumbnail(pyvips, data, width, height, params)
            encoded = encode(image, params.format)
            outputs.append(Output(name, encoded, image.width, image.height))
    except pyvips.Error as exc:
        raise TaskFailed(f"cannot decode image: {first_line(exc)}") from None
    return Rendered(upright[0], upright[1], outputs)


def box(params: ThumbParams) -> tuple[int, int]:
    """The target box: 256x256 by default; one side given leaves the other free (or square
    when cropping)."""
    if params.width is None and params.height is None:
        return DEFAULT_BOX, DEFAULT_BOX
    free = None if params.crop else MAX_SIDE
    width = params.width or free or params.height
    height = params.height or free or params.width
    return int(width or DEFAULT_BOX), int(height or DEFAULT_BOX)


def thumbnail(pyvips: Any, data: bytes, width: int, height: int, params: ThumbParams) -> Any:
    turned = params.rotation in (90, 270)
    if turned:
        width, height = height, width  # fit the box as it will be after the turn
    image = pyvips.Image.thumbnail_buffer(
        data,
        width,
        height=height,
        size="down",
        crop="centre" if params.crop else "none",
        option_string="fail_on=truncated",  # the loader option; thumbnail's own is ignored
    )
    if params.rotation:
        image = image.rot(ROT[params.rotation])
    if image.interpretation not in ("srgb", "b-w"):
        image = image.colourspace("srgb")  # CMYK, 16-bit, Lab… as 8-bit sRGB
    return image


def encode(image: Any, fmt: str) -> bytes:
    if fmt == "jpeg":
        if image.hasalpha():
            image = image.flatten(background=[255] * (image.bands - 1))
        return bytes(image.write_to_buffer(".jpg", Q=85, keep="none"))
    if fmt == "png":
        return bytes(image.write_to_buffer(".png", keep="none"))
    if fmt == "webp":
        return bytes(image.write_to_buffer(".webp", Q=80, keep="none"))
    return bytes(image.write_to_buffer(".gif", keep="none"))


def first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(exc).__name__
