"""Signed GET URLs (§8): the canonical string, key rotation, expiry, and `taskd sign`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest

from taskd.signing import canonical
from tests.conftest import SECRET, ApiFactory, Client
from tests.helpers import run_taskd
from tests.images import ImageServer, decode, jpeg

ROTATED = "rotated-key"


def sign(key: str, path: str, params: list[tuple[str, str]]) -> str:
    """The contract's formula, written out independently of taskd's code."""
    encoded = sorted((quote(k, safe="-._~"), quote(v, safe="-._~")) for k, v in params)
    text = path + "?" + "&".join(f"{k}={v}" for k, v in encoded)
    digest = hmac.new(key.encode(), text.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def signed_query(key: str, path: str, params: list[tuple[str, str]]) -> str:
    return urlencode([*params, ("sig", sign(key, path, params))], quote_via=quote)


def test_canonical_form_encodes_then_sorts_by_name_then_value() -> None:
    pairs = [("b", "2"), ("a", "x y"), ("a", "é/?&="), ("sig", "ignored"), ("A", "~-._")]
    assert canonical("/v1/create_file/a%20b.jpg", pairs) == (
        "/v1/create_file/a%20b.jpg?A=~-._&a=%C3%A9%2F%3F%26%3D&a=x%20y&b=2"
    )


@pytest.fixture
async def signed_api(make_api: ApiFactory) -> Client:
    return await make_api(accounts={"demo": {"signing_keys": [ROTATED]}})


def thumb_params(url: str, **extra: str) -> list[tuple[str, str]]:
    return [
        ("task_name", "image.thumb"),
        ("url", url),
        ("width", "32"),
        ("account", "demo"),
        *extra.items(),
    ]


@pytest.mark.parametrize("key", [SECRET, ROTATED])
async def test_signed_url_creates_with_the_secret_or_a_signing_key(
    signed_api: Client, image_server: ImageServer, key: str
) -> None:
    url = image_server.add("s.jpg", jpeg(64, 64))
    path = "/v1/create_file/s%20thumb.jpg"
    params = thumb_params(url, expires=str(int(time.time()) + 60))
    response = await signed_api.get(f"{path}?{signed_query(key, path, params)}")
    assert response.status == 200, await response.text()
    assert decode(await response.read()).size == (32, 32)


async def test_plus_and_percent_20_sign_alike(
    signed_api: Client, image_server: ImageServer
) -> None:
    url = image_server.add("p.jpg", jpeg(40, 40))
    params = [*thumb_params(url), ("note", "a b")]
    sig = sign(SECRET, "/v1/create_file", params)
    query = urlencode([*params, ("sig", sig)])  # quote_plus: the space travels as "+"
    response = await signed_api.get(f"/v1/create_file?{query}", allow_redirects=False)
    assert response.status == 400  # signature good; `note` is no parameter of image.thumb
    assert (await response.json())["errors"][0]["name"] == "note"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("tamper", "invalid signature"),
        ("wrong-key", "invalid signature"),
        ("unknown-account", "invalid signature"),
        ("expired", "signed URL expired"),
        ("bad-expires", "expires must be a unix time in seconds"),
    ],
)
async def test_bad_signatures_are_401(signed_api: Client, change: str, message: str) -> None:
    path = "/v1/create_file"
    params = thumb_params("http://127.0.0.1:1/x.jpg", expires=str(int(time.time()) + 60))
    key = "not-the-secret" if change == "wrong-key" else SECRET
    if change == "unknown-account":
        params = [(k, "nobody" if k == "account" else v) for k, v in params]
    if change == "expired":
        params = [(k, "1000" if k == "expires" else v) for k, v in params]
    if change == "bad-expires":
        params = [(k, "soon" if k == "expires" else v) for k, v in params]
    query = signed_query(key, path, params)
    if change == "tamper":
        query = query.replace("width=32", "width=33")
    response = await signed_api.get(f"{path}?{query}")
    assert response.status == 401
    assert await response.json() == {"status": "error", "message": message}


async def test_a_signature_does_not_authorize_a_post(signed_api: Client) -> None:
    path = "/v1/create_file"
    params = thumb_params("http://127.0.0.1:1/x.jpg")
    response = await signed_api.post(f"{path}?{signed_query(SECRET, path, params)}")
    assert response.status == 401


async def test_taskd_sign_prints_a_url_the_server_accepts(
    signed_api: Client, image_server: ImageServer, tmp_path: Path
) -> None:
    config = tmp_path / "taskd.toml"
    config.write_text(f'[accounts.demo]\nsecret = "{SECRET}"\n')
    url = image_server.add("c.jpg", jpeg(80, 40))
    base = str(signed_api.make_url("/v1/create_file/c.jpg"))
    unsigned = f"{base}?task_name=image.thumb&url={quote(url, safe='')}&width=40"
    result = run_taskd(
        "sign", unsigned, "--account", "demo", "--ttl", "60", "--config", str(config)
    )
    assert result.returncode == 0, result.stderr
    signed = result.stdout.strip()
    assert "&account=demo&expires=" in signed
    response = await signed_api.get(signed.removeprefix(str(signed_api.make_url(""))))
    assert response.status == 200
    assert decode(await response.read()).size == (40, 20)
    missing = run_taskd("sign", unsigned, "--account", "nobody", "--config", str(config))
    assert (missing.returncode, missing.stderr.strip()) == (
        2,
        "taskd: no account 'nobody' in the settings",
    )


async def test_a_url_signed_with_the_public_prefix_is_accepted(
    make_api: ApiFactory, image_server: ImageServer
) -> None:
    # public_url has a path: a proxy sends /taskd/v1/… to taskd as /v1/….
    api = await make_api(server={"public_url": "https://img.example.com/taskd"})
    url = image_server.add("x.jpg", jpeg(20, 20))
    params = thumb_params(url)
    for signed_path in ("/taskd/v1/create_file", "/v1/create_file"):
        query = signed_query(SECRET, signed_path, params)
        response = await api.get(f"/v1/create_file?{query}", allow_redirects=False)
        assert response.status == 302, await response.text()
