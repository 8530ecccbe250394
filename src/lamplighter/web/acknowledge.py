"""Acknowledging what is showing: `POST /api/ack` and the lamp page's press-and-hold (`POST /lamp/NAME/ack`).

`POST /api/ack` (the API token, or the dashboard's cookie and CSRF token) acknowledges the
top signal, or with `{"all": true}` every active one, and answers which.

The lamp page holds no general permission: its cookie alone only reads. For the hold button
it gets a narrow one, `lamp_ack_key(token, lamp)`, which can only acknowledge the signal that
lamp shows at that moment, and only from the page's own origin: a request that a browser
marks as coming from another site (Sec-Fetch-Site, or a foreign Origin) is refused with 403
before anything else is looked at, and the pages refuse to be framed. With
`lamp_page: {acknowledge: off}` the route refuses every request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from lamplighter.model import MAX_EVENT_ID, Signal, SignalAction
from lamplighter.service import Service
from lamplighter.web.bodies import parse_json
from lamplighter.web.dashboard import COOKIE, on_the_loop, same_secret

LAMP_ACK_HEADER = "x-lamp-ack"
SAME_ORIGIN_SITES = frozenset({"same-origin"})  # Sec-Fetch-Site values of our own page's fetch

Authorize = Callable[[Request], None]


class ShowingAckIn(BaseModel):
    """The body of POST /api/ack: who, and whether every active signal (else the top one)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    by: str = Field(default="api", min_length=1, max_length=200)
    everything: bool = Field(default=False, alias="all")


class LampAckIn(BaseModel):
    """The body of POST /lamp/NAME/ack: the signal the page saw (the lamp must still show it)."""

    model_config = ConfigDict(extra="forbid")
    event_id: int = Field(ge=1, le=MAX_EVENT_ID)


def lamp_ack_key(token: str, lamp: str) -> str:
    """The lamp page's acknowledge permission for one lamp: derived from the token, useless without the cookie."""
    return hmac.new(token.encode(), f"lamplighter lamp ack {lamp}".encode(), hashlib.sha256).hexdigest()


def from_another_site(request: Request) -> bool:
    """Whether the browser says this request was made by a page of another site (or origin)."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in SAME_ORIGIN_SITES:
        return True
    origin = request.headers.get("origin")
    return origin is not None and urlsplit(origin).netloc != request.headers.get("host")


def signal_json(signal: Signal) -> dict[str, Any]:
    return {"event_id": signal.event_id, "level": signal.level, "title": signal.title}


def acknowledge_router(service: Service, token: str, authorized: Authorize) -> APIRouter:
    router = APIRouter()
    enabled = service.config.lamp_page.acknowledge == "hold"

    @router.post("/api/ack", dependencies=[Depends(on_the_loop(authorized))])
    async def ack_showing(request: Request) -> JSONResponse:
        body = await parse_json(request, ShowingAckIn, empty="{}")
        ended = service.acknowledge_showing(body.by, body.everything)
        if not ended:
            return JSONResponse({"error": "nothing is showing to acknowledge", "acknowledged": []}, status_code=409)
        return JSONResponse({"acknowledged": [signal_json(s) for s in ended], "by": body.by})

    @router.post("/lamp/{name}/ack")
    async def ack_from_lamp_page(name: str, request: Request) -> JSONResponse:
        if from_another_site(request):
            raise HTTPException(403, "refused: this request comes from a page of another site")
        _lamp_page_permission(request, token, name)
        if not enabled:
            raise HTTPException(403, "acknowledging from the lamp page is off (lamp_page: {acknowledge: off})")
        if name not in service.lamps:
            raise HTTPException(404, f"no lamp named {name!r}")
        event_id = (await parse_json(request, LampAckIn)).event_id
        showing = service.lamps[name].showing
        if showing is None or showing.event_id != event_id:
            raise HTTPException(409, f"{name} no longer shows event {event_id}; nothing was acknowledged")
        by = f"lamp page {name}"
        if service.acknowledge(event_id, by) is not SignalAction.DONE:
            raise HTTPException(409, f"event {event_id} has already ended; nothing was acknowledged")
        return JSONResponse({"acknowledged": [signal_json(showing)], "by": by})

    return router


def _lamp_page_permission(request: Request, token: str, lamp: str) -> None:
    """The API token as a bearer, or the login cookie with this lamp's acknowledge key; else 401."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and same_secret(given.strip(), token):
        return
    if same_secret(request.cookies.get(COOKIE), token) and same_secret(request.headers.get(LAMP_ACK_HEADER),
                                                                       lamp_ack_key(token, lamp)):
        return
    raise HTTPException(401, "not allowed: open the lamp page's link again (the cookie and its acknowledge key)")


def lamp_page_html(template: str, lamp: str, token: str, acknowledge: str) -> str:
    """The lamp page for one lamp: its name, its acknowledge key, and whether to offer the hold button."""
    key = lamp_ack_key(token, lamp) if acknowledge == "hold" else ""
    return (template.replace("{{LAMP}}", json.dumps(lamp)).replace("{{ACK_KEY}}", key)
            .replace("{{ACK}}", json.dumps(acknowledge)))
