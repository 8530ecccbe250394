"""Serving under a proxy's path prefix: Home Assistant's ingress (the `X-Ingress-Path` header).

Home Assistant shows an app's web UI at /api/hassio_ingress/TOKEN/..., inside a frame of its own
page: it strips the prefix before forwarding and names it in `X-Ingress-Path`. Every page here
names its URLs relative to `<base href="/">`, so for a request with a well-formed header this
middleware only has to put the prefix into that base, into redirects (`Location`) and into the
login cookie's `Path` (so the cookie goes to this app only), and to let the page be framed by its
own origin. A missing header, or one that is not a plain /api/hassio_ingress/TOKEN, changes nothing.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

INGRESS_PATH = re.compile(rb"/api/hassio_ingress/[A-Za-z0-9_-]{1,128}")
BASE = b'<base href="/">'
COOKIE_PATH = re.compile(rb"(;\s*Path=)/(?=;|$)", re.IGNORECASE)


class IngressPrefix:
    """ASGI middleware: rewrites a response for the prefix in a valid `X-Ingress-Path`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        prefix = _prefix(scope) if scope["type"] == "http" else None
        if prefix is None:
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        body = b""

        async def send_prefixed(message: Message) -> None:
            nonlocal start, body
            if message["type"] == "http.response.start":
                message["headers"] = [(name, _header(name.lower(), value, prefix))
                                      for name, value in message["headers"]]
                if not _is_html(message):
                    await send(message)
                    return
                start = message  # held until the whole page is in: its length changes
            elif start is None:
                await send(message)
            else:
                body += message.get("body", b"")
                if message.get("more_body", False):
                    return
                body = body.replace(BASE, b'<base href="' + prefix + b'/">', 1)
                start["headers"] = [(name, str(len(body)).encode() if name.lower() == b"content-length" else value)
                                    for name, value in start["headers"]]
                await send(start)
                await send({"type": "http.response.body", "body": body, "more_body": False})

        await self.app(scope, receive, send_prefixed)


def _prefix(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"x-ingress-path":
            return value if INGRESS_PATH.fullmatch(value) else None
    return None


def _is_html(start: Message) -> bool:
    return any(name.lower() == b"content-type" and value.startswith(b"text/html") for name, value in start["headers"])


def _header(name: bytes, value: bytes, prefix: bytes) -> bytes:
    """One response header as it must be under `prefix`."""
    if name == b"location" and value.startswith(b"/") and not value.startswith(b"//"):
        return prefix + value
    if name == b"set-cookie":
        return COOKIE_PATH.sub(lambda match: match.group(1) + prefix + b"/", value)
    if name == b"content-security-policy":
        return value.replace(b"frame-ancestors 'none'", b"frame-ancestors 'self'")
    if name == b"x-frame-options":
        return b"SAMEORIGIN"
    return value
