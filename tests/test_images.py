"""image.info and image.thumb on images the tests make, fetched from a local server."""

from __future__ import annotations

from typing import Any

import pytest
from PIL.TiffImagePlugin import IFDRational

from tests.conftest import ApiFactory, Client
from tests.helpers import create_ok
from tests.images import (
    ImageServer,
    animated_gif,
    decode,
    jpeg,
    mostly,
    pixel,
    pixel_bomb,
    png,
)


async def run(api: Client, definition: dict[str, Any]) -> dict[str, Any]:
    [status] = await create_ok(api, definition, block=True)
    return dict(status)


async def thumb_file(api: Client, status: dict[str, Any], name: str | None = None) -> bytes:
    assert status["status"] == "success", status
    path = "/v1/file" + (f"/{name}" if name else "")
    response = await api.get(path, params={"task": status["key"]}, allow_redirects=True)
    assert response.status == 200
    return await response.read()


async def test_info_reports_type_size_rotation_and_exif(
    api: Client, image_server: ImageServer
) -> None:
    exif = {
        0x9003: "2013:04:03 15:47:27",  # DateTimeOriginal
        0x9209: 1,  # Flash fired
        0x920A: IFDRational(50, 1),  # FocalLength
        0x8827: 400,  # ISOSpeedRatings
        0x829A: IFDRational(1, 125),  # ExposureTime
    }
    url = image_server.add("cat.jpg", jpeg(640, 480, orientation=6, exif=exif))
    status = await run(api, {"task_name": "image.info", "url": url})
    assert status["status"] == "success", status
    assert status["result"] == {
        "content_type": "image/jpeg",
        "type": "image",
        "width": 640,
        "height": 480,
        "alpha": False,
        "rotation": 270,
        "date_time": "2013-04-03T15:47:27",
        "flash": True,
        "focal_length": 50.0,
        "iso_speed": 400,
        "exposure_time": 0.008,
    }
    assert "files" not in status


@pytest.mark.parametrize(("orientation", "rotation"), [(1, 0), (3, 180), (6, 270), (8, 90)])
async def test_info_rotation_follows_the_exif_orientation(
    api: Client, image_server: ImageServer, orientation: int, rotation: int
) -> None:
    url = image_server.add("o.jpg", jpeg(64, 32, orientation=orientation))
    status = await run(api, {"task_name": "image.info", "url": url})
    assert status["result"]["rotation"] == rotation
    assert set(status["result"]) == {"content_type", "type", "width", "height", "alpha", "rotation"}


async def test_info_of_a_transparent_png(api: Client, image_server: ImageServer) -> None:
    url = image_server.add("a.png", png(), "image/png")
    result = (await run(api, {"task_name": "image.info", "url": url}))["result"]
    assert (result["content_type"], result["alpha"], result["width"]) == ("image/png", True, 300)


async def test_thumb_fits_the_default_256_box(api: Client, image_server: ImageServer) -> None:
    url = image_server.add("big.jpg", jpeg(1200, 800))
    status = await run(api, {"task_name": "image.thumb", "url": url})
    assert status["result"] == {
        "width": 256,
        "height": 171,
        "original_width": 1200,
        "original_height": 800,
    }
    assert status["files"] == ["thumb.jpg"]
    image = decode(await thumb_file(api, status))
    assert (image.format, image.size) == ("JPEG", (256, 171))


async def test_thumb_turns_an_exif_rotated_photo_upright(
    api: Client, image_server: ImageServer
) -> None:
    # Stored 400x200 (red left, blue right) with orientation 6: as shot it is 200x400,
    # red on top.
    url = image_server.add("turned.jpg", jpeg(400, 200, orientation=6))
    status = await run(api, {"task_name": "image.thumb", "url": url, "width": 100})
    assert status["result"] == {
        "width": 100,
        "height": 200,
        "original_width": 200,
        "original_height": 400,
    }
    image = decode(await thumb_file(api, status)).convert("RGB")
    assert mostly(pixel(image, 50, 20), 0)  # red on top
    assert mostly(pixel(image, 50, 180), 2)  # blue below


async def test_thumb_rotation_crop_and_format(api: Client, image_server: ImageServer) -> None:
    url = image_server.add("p.jpg", jpeg(600, 300))
    status = await run(
        api,
        {
            "task_name": "image.thumb",
            "url": url,
            "width": 100,
            "height": 100,
            "crop": True,
            "rotation": 90,
            "format": "webp",
        },
    )
    assert (status["result"]["width"], status["result"]["height"]) == (100, 100)
    assert status["files"] == ["thumb.webp"]
    assert decode(await thumb_file(api, status)).format == "WEBP"
    status = await run(api, {"task_name": "image.thumb", "url": url, "height": 50, "rotation": 90})
    # Turned a quarter (counterclockwise), the 600x300 source is 300x600: 25x50.
    assert (status["result"]["width"], status["result"]["height"]) == (25, 50)
    image = decode(await thumb_file(api, status)).convert("RGB")
    assert mostly(pixel(image, 12, 45), 0)  # the red left half now lies at the bottom


async def test_transparency_kept_in_png_and_white_in_jpeg(
    api: Client, image_server: ImageServer
) -> None:
    url = image_server.add("alpha.png", png(), "image/png")
    status = await run(api, {"task_name": "image.thumb", "url": url, "format": "png"})
    image = decode(await thumb_file(api, status))
    assert image.mode == "RGBA"
    assert pixel(image, 2, 2)[3] == 0
    status = await run(api, {"task_name": "image.thumb", "url": url, "format": "jpeg"})
    image = decode(await thumb_file(api, status))
    assert image.mode == "RGB"
    assert min(pixel(image, 2, 2)) > 240  # white, not black


async def test_cmyk_jpeg_becomes_rgb(api: Client, image_server: ImageServer) -> None:
    url = image_server.add("cmyk.jpg", jpeg(300, 300, mode="CMYK"))
    status = await run(api, {"task_name": "image.thumb", "url": url, "width": 64})
    image = decode(await thumb_file(api, status))
    assert (image.mode, image.size) == ("RGB", (64, 64))
    assert mostly(pixel(image, 8, 32), 0)


async def test_animated_gif_gives_its_first_frame(api: Client, image_server: ImageServer) -> None:
    url = image_server.add("anim.gif", animated_gif(), "image/gif")
    status = await run(api, {"task_name": "image.thumb", "url": url, "format": "png"})
    assert status["result"]["original_height"] == 80
    image = decode(await thumb_file(api, status)).convert("RGB")
    assert pixel(image, 10, 10) == (255, 0, 0)


async def test_sizes_make_one_named_file_each(api: Client, image_server: ImageServer) -> None:
    url = image_server.add("s.jpg", jpeg(800, 400))
    status = await run(
        api, {"task_name": "image.thumb", "url": url, "sizes": {"small": 64, "large": 400}}
    )
    assert status["files"] == ["small", "large"]
    assert status["result"] == {
        "original_width": 800,
        "original_height": 400,
        "sizes": {"small": {"width": 64, "height": 32}, "large": {"width": 400, "height": 200}},
    }
    assert decode(await thumb_file(api, status, "large")).size == (400, 200)


@pytest.mark.parametrize(
    ("name", "body", "message"),
    [
        ("text.jpg", b"this is not an image", "not an image"),
        ("cut.jpg", jpeg(800, 600)[:6000], "cannot decode image"),
        ("bomb.png", None, "image too large: 30000x30000 pixels (limit 100000000)"),
    ],
)
async def test_bad_images_fail_with_a_one_line_message(
    api: Client, image_server: ImageServer, name: str, body: bytes | None, message: str
) -> None:
    url = image_server.add(name, body if body is not None else pixel_bomb())
    status = await run(api, {"task_name": "image.thumb", "url": url})
    assert status["status"] == "error"
    assert status["result"].startswith(message), status["result"]
    assert "\n" not in status["result"]
    assert "files" not in status


async def test_bad_thumb_parameters_are_400(api: Client) -> None:
    response = await api.post(
        "/v1/create",
        json={
            "secret": "test-secret",
            "tasks": {
                "task_name": "image.thumb",
                "url": "http://x/",
                "rotation": 45,
                "format": "bmp",
                "width": 0,
                "sizes": {"../x": 10},
            },
        },
    )
    assert response.status == 400
    names = {e["name"] for e in (await response.json())["errors"]}
    assert names == {"tasks.rotation", "tasks.format", "tasks.width", "tasks.sizes"}


async def test_pixel_limit_is_configurable(make_api: ApiFactory, image_server: ImageServer) -> None:
    api = await make_api(fetch={"allow_hosts": ["127.0.0.1"], "max_pixels": 10_000})
    url = image_server.add("m.jpg", jpeg(200, 100))
    status = await run(api, {"task_name": "image.thumb", "url": url})
    assert status["result"] == "image too large: 200x100 pixels (limit 10000)"


@pytest.mark.parametrize(
    ("suffix", "content_type"),
    [(".png", "image/png"), (".gif", "image/gif"), (".webp", "image/webp"),
     (".tif", "image/tiff"), (".avif", "image/avif")],
)  # fmt: skip
async def test_info_knows_the_raster_formats(
    api: Client, image_server: ImageServer, suffix: str, content_type: str
) -> None:
    import pyvips

    data = bytes((pyvips.Image.black(64, 48) + 100).cast("uchar").write_to_buffer(suffix))
    url = image_server.add(f"i{suffix}", data, "application/octet-stream")
    result = (await run(api, {"task_name": "image.info", "url": url}))["result"]
    assert (result["content_type"], result["width"], result["height"]) == (content_type, 64, 48)


async def test_svg_and_pdf_are_not_parsed(api: Client, image_server: ImageServer) -> None:
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect/></svg>'
    for name, data in (("i.svg", svg), ("d.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")):
        url = image_server.add(name, data, "image/svg+xml")
        status = await run(api, {"task_name": "image.thumb", "url": url})
        assert status["result"].startswith("not an image"), status
