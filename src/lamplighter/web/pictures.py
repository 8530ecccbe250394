"""`GET /api/events/{id}/picture`: the snapshot behind a door event, for the dashboard (same origin, the token)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import Response

from lamplighter.model import MAX_EVENT_ID
from lamplighter.service import Service
from lamplighter.web.dashboard import on_the_loop

EventId = Annotated[int, Path(ge=1, le=MAX_EVENT_ID, description="the id of an event in the journal")]


def pictures_router(service: Service, authorized: Callable[[Request], None]) -> APIRouter:
    router = APIRouter()

    @router.get("/api/events/{event_id}/picture", dependencies=[Depends(on_the_loop(authorized))])
    async def picture(event_id: EventId) -> Response:
        data = await service.picture(event_id)
        if data is None:
            raise HTTPException(404, f"event {event_id} has no picture (or its source cannot fetch it now)")
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600",
                                                                "X-Content-Type-Options": "nosniff"})

    return router
