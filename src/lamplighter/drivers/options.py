"""Reading a lamp URL's query options: unknown names are refused, numbers are checked, errors name the URL."""

from __future__ import annotations

from collections.abc import Collection

from lamplighter.drivers.base import LampUrl
from lamplighter.errors import LampUrlError

TIMEOUT = "timeout"


def check_options(url: LampUrl, allowed: Collection[str]) -> None:
    """Refuse any option not in `allowed`, naming the ones that are."""
    unknown = sorted({name for name, _ in url.query} - set(allowed))
    if unknown:
        choices = ", ".join(sorted(allowed)) or "none"
        raise LampUrlError(url.text(), f"unknown option {unknown[0]!r} (options: {choices})")


def timeout_option(url: LampUrl, default: float) -> float:
    """The `timeout` option in seconds (a positive number), else `default`."""
    text = url.param(TIMEOUT)
    if not text:
        return default
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds <= 120:
        raise LampUrlError(url.text(), f"timeout must be a number of seconds from 0 to 120, not {text!r}")
    return seconds


def require(url: LampUrl, part: str, value: str, example: str) -> str:
    """`value`, or a LampUrlError saying the URL lacks `part`, with an example of a good URL."""
    if not value:
        raise LampUrlError(url.text(), f"needs {part}: {example}")
    return value


def address_only(url: LampUrl, scheme_example: str, example: str, part: str = "the bulb's address") -> None:
    """Refuse a missing host, or a path or user info, in a URL that names just a device: SCHEME://HOST[:PORT]."""
    require(url, part, url.host, example)
    if url.path not in ("", "/") or url.user or url.password:
        raise LampUrlError(url.text(), f"takes only an address: {scheme_example}, e.g. {example}")
