"""Referrer whitelists: `scheme://host[:port]` patterns matched against a request's origin."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


def valid_host(host: str) -> bool:
    """A DNS name of letters, digits and hyphens (punycode for the rest), or an IP address."""
    if ":" in host:  # urlsplit took the brackets off an IPv6 literal
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return False
        return True
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    return bool(host) and all(LABEL.fullmatch(label) for label in labels)


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> Origin | None:
        """The origin of an Origin header or a Referer URL; None if it has none usable, or
        one no browser sends (user info, backslashes, empty labels, odd characters)."""
        url = url.strip()
        if "\\" in url:
            return None
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return None
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").lower()
        if scheme not in DEFAULT_PORTS or "@" in parts.netloc or not valid_host(host):
            return None
        return cls(scheme, host.rstrip("."), port or DEFAULT_PORTS[scheme])

    def serialize(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port == DEFAULT_PORTS[self.scheme]:
            return f"{self.scheme}://{host}"
        return f"{self.scheme}://{host}:{self.port}"


@dataclass(frozen=True)
class OriginPattern:
    """`https://a.com`, `http://localhost:*`, `*.example.org` (http and https, any subdomain)."""

    schemes: frozenset[str]
    host: str  # without the `*.` of a wildcard
    wildcard: bool
    port: int | None  # None: `*`, any port (or none)

    @classmethod
    def parse(cls, pattern: str) -> OriginPattern:
        text = pattern.strip().rstrip("/")
        if "://" in text:
            scheme, _, rest = text.partition("://")
            schemes = frozenset({scheme.lower()})
            if not schemes <= DEFAULT_PORTS.keys():
                raise ValueError(f"referrer pattern {pattern!r}: scheme must be http or https")
        else:
            schemes, rest = frozenset(DEFAULT_PORTS), text
        if "/" in rest or "?" in rest or "#" in rest or "@" in rest:
            raise ValueError(f"referrer pattern {pattern!r}: only scheme://host[:port] is allowed")
        host, port = split_port(rest)
        wildcard = host.startswith("*.")
        host = (host[2:] if wildcard else host).lower().rstrip(".")
        if not host or "*" in host:
            raise ValueError(f"referrer pattern {pattern!r}: bad host")
        if port == "*":
            return cls(schemes, host, wildcard, None)
        if port and not port.isdigit():
            raise ValueError(f"referrer pattern {pattern!r}: bad port")
        # Without a port a pattern means the scheme's default port only.
        return cls(schemes, host, wildcard, int(port) if port else 0)

    def matches(self, origin: Origin) -> bool:
        if origin.scheme not in self.schemes:
            return False
        if self.wildcard:
            if not origin.host.endswith("." + self.host):
                return False
        elif origin.host != self.host:
            return False
        if self.port is None:
            return True
        return origin.port == (self.port or DEFAULT_PORTS[origin.scheme])


def split_port(hostport: str) -> tuple[str, str]:
    if hostport.startswith("["):  # [::1]:8080
        host, _, rest = hostport[1:].partition("]")
        return host, rest[1:] if rest.startswith(":") else ""
    host, _, port = hostport.rpartition(":") if ":" in hostport else (hostport, "", "")
    return host, port


def request_origin(origin_header: str | None, referer: str | None) -> Origin | None:
    """`Origin` when present is the one checked; otherwise the Referer's origin."""
    if origin_header:
        return Origin.parse(origin_header)
    if referer:
        return Origin.parse(referer)
    return None
