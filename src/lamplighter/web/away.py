"""`GET /api/away?since=T`: what happened while you were away, for the dashboard's Now page.

Without `since`, the stretch is the quiet-hours window that ended last (if one did within two
days). The answer says which stretch it covers and why (`reason`: `since`, `quiet_hours`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from lamplighter.service import Service
from lamplighter.web.dashboard import on_the_loop

MAX_AWAY_DAYS = 7


def away_router(service: Service, authorized: Callable[[Request], None]) -> APIRouter:
    router = APIRouter()

    @router.get("/api/away", dependencies=[Depends(on_the_loop(authorized))])
    async def away(since: Annotated[float | None, Query(ge=0)] = None) -> dict[str, Any]:
        now = service.clock.now()
        quiet = service.last_quiet_window()
        start, until, reason = (since, now, "since") if since is not None else \
            (quiet[0], quiet[1], "quiet_hours") if quiet is not None else (now, now, "nothing")
        summary = service.away(max(start, now - MAX_AWAY_DAYS * 86400), until)
        return {
            "since": summary.since, "until": summary.until, "reason": reason,
            "quiet_hours": None if quiet is None else {"start": quiet[0], "end": quiet[1]},
            "counts": summary.counts, "total": summary.total,
            "events": [event.to_json() for event in summary.notable],
        }

    return router
