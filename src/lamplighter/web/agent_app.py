"""A room agent's small HTTP API: its lamps, its room's state, and acknowledging from the room.

The same token rules as the daemon's API (Authorization: Bearer TOKEN), so that
`lamplighter ack -c agent.yaml ID` and `lamplighter lamps -c agent.yaml` work against an agent.
"""

from __future__ import annotations

from typing import Any

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from lamplighter.model import MAX_EVENT_ID
from lamplighter.service.agent import Agent
from lamplighter.web.dashboard import same_secret
from lamplighter.web.views import lamp_json


class AckIn(BaseModel):
    by: str = Field(default="someone", max_length=100)


def _error(_request: Request, exc: HTTPException) -> JSONResponse:
    return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)


def create_agent_app(agent: Agent, token: str) -> FastAPI:
    app = FastAPI(title="Lamplighter agent", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_exception_handler(HTTPException, _error)  # type: ignore[arg-type]

    async def authorized(request: Request) -> None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if not (scheme.lower() == "bearer" and same_secret(given.strip(), token)):
            raise HTTPException(401, "missing or wrong token: send Authorization: Bearer TOKEN")

    auth = [Depends(authorized)]

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "room": agent.room, "connected": agent.link.client is not None}

    @app.get("/api/lamps", dependencies=auth)
    async def lamps() -> list[dict[str, Any]]:
        return [lamp_json(view) for view in agent.lamp_views()]

    @app.get("/api/room", dependencies=auth)
    async def room() -> dict[str, Any]:
        state = agent.state
        return {"room": agent.room, "applied_seq": agent.applied,
                "state": state.model_dump(mode="json") if state is not None else None}

    @app.post("/api/events/{event_id}/ack", dependencies=auth)
    async def ack(event_id: int = Path(ge=1, le=MAX_EVENT_ID), body: AckIn | None = None) -> dict[str, Any]:
        by = body.by if body is not None else "someone"
        agent.acknowledge(event_id, by)
        return {"id": event_id, "by": by, "room": agent.room}

    return app


def agent_server(agent: Agent, token: str, host: str, port: int) -> uvicorn.Server:
    return uvicorn.Server(uvicorn.Config(create_agent_app(agent, token), host=host, port=port, log_level="warning",
                                         access_log=False, lifespan="off", server_header=False))
