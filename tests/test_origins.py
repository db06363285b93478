"""Referrer patterns, unit by unit: scheme, host wildcards, ports, default ports."""

from __future__ import annotations

import pytest

from taskd.origins import Origin, OriginPattern, request_origin


@pytest.mark.parametrize(
    ("pattern", "url", "allowed"),
    [
        ("https://example.com", "https://example.com", True),
        ("https://example.com", "https://example.com/some/page?q=1", True),
        ("https://example.com", "https://EXAMPLE.com:443/", True),
        ("https://example.com:443", "https://example.com", True),
        ("https://example.com", "https://example.com:8443", False),
        ("https://example.com", "http://example.com", False),
        ("https://example.com", "https://www.example.com", False),
        ("https://example.com", "https://example.com.evil.net", False),
        ("https://example.com", "https://notexample.com", False),
        ("*.example.com", "https://a.example.com", True),
        ("*.example.com", "http://a.b.example.com", True),
        ("*.example.com", "https://example.com", False),
        ("*.example.com", "https://aexample.com", False),
        ("*.example.com", "https://a.example.com:8080", False),
        ("https://*.example.com", "http://a.example.com", False),
        ("http://localhost:*", "http://localhost:3000", True),
        ("http://localhost:*", "http://localhost", True),
        ("http://localhost:*", "https://localhost:3000", False),
        ("http://localhost:*", "http://localhost.evil.net:3000", False),
        ("http://localhost:8080", "http://localhost:8080/x", True),
        ("http://localhost:8080", "http://localhost:8081", False),
        ("http://localhost", "http://localhost:8080", False),
        ("http://127.0.0.1:*", "http://127.0.0.1:5000", True),
        ("http://[::1]:*", "http://[::1]:5000", True),
    ],
)
def test_pattern(pattern: str, url: str, allowed: bool) -> None:
    origin = Origin.parse(url)
    assert origin is not None
    assert OriginPattern.parse(pattern).matches(origin) is allowed


@pytest.mark.parametrize(
    "url",
    [
        "null",
        "",
        "ftp://example.com",
        "https://",
        "not a url",
        "https://a.com:99999",
        # What no browser sends: user info, backslashes, empty or odd labels.
        "http://evil.com\\@localhost",
        "http://evil.com@localhost",
        "https://evil.com\\.example.com",
        "https://.example.com",
        "https://a..example.com",
        "https://a_b.example.com",
        "https://a%2eb.example.com",
    ],
)
def test_unusable_origins(url: str) -> None:
    assert Origin.parse(url) is None


@pytest.mark.parametrize(
    "pattern", ["ftp://a.com", "https://a.com/path", "https://*", "https://a.*.com", "a.com:x"]
)
def test_bad_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(ValueError, match="referrer pattern"):
        OriginPattern.parse(pattern)


def test_origin_header_wins_over_referer() -> None:
    origin = request_origin("https://a.com", "https://b.com/page")
    assert origin == Origin("https", "a.com", 443)
    assert request_origin(None, "https://b.com:444/page") == Origin("https", "b.com", 444)
    assert request_origin(None, None) is None
