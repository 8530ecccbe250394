"""The FastAPI application: routes, token auth, and error answers that name the problem.

Every route except /healthz needs the token: as `Authorization: Bearer TOKEN`, or for
GET pages in a browser as the cookie set by opening `/lamp/NAME?token=TOKEN` once or by
signing in to the dashboard. The cookie alone is never accepted for a request that changes
something: that also needs the dashboard page's CSRF token from the same origin (see
web/dashboard.py), so no page elsewhere can make the browser act on the user's behalf.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Mapping
from importlib.resources import files
from typing import Annotated, Any, NoReturn

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from lamplighter.config import PositiveDuration, at_most
from lamplighter.errors import AuthError, ConfigError, EventError, LampBusy, PayloadError, StoreError
from lamplighter.i18n import using
from lamplighter.model import MAX_EVENT_ID, Outcome, Receipt, Status, StoredEvent, make_event
from lamplighter.rules.placement import Placement
from lamplighter.service import Service, SignalAction
from lamplighter.sources.base import WebhookSource, check_bearer
from lamplighter.turns import drawn_in_turns
from lamplighter.web.acknowledge import acknowledge_router, lamp_page_html
from lamplighter.web.away import away_router
from lamplighter.web.bodies import parse_json
from lamplighter.web.dashboard import (
    COOKIE,
    dashboard_router,
    on_the_loop,
    passes_csrf_check,
    remember_login,
    same_secret,
)
from lamplighter.web.ingress import IngressPrefix
from lamplighter.web.limits import BodySizeLimit
from lamplighter.web.page_text import (
    LAMP_PAGE,
    LAMP_SCRIPT,
    language_headers,
    page_locale,
    script_words,
    translate_markup,
)
from lamplighter.web.pictures import pictures_router
from lamplighter.web.views import lamp_json, placement_json

MAX_SNOOZE = "7d"
MAX_TEST = "5m"
RECONNECT_MS = 1000  # how soon a lamp page's EventSource tries again after losing the daemon
HEARTBEAT_SECONDS = 2.0  # the lamp page shows NOT CONNECTED after 5 s without a message
EventId = Annotated[int, Path(ge=1, le=MAX_EVENT_ID, description="the id of an event in the journal")]
LAMP_PAGE_HEADERS = {  # inline script and style stay allowed; framing (clickjacking the ack button) does not
    "Content-Security-Policy": "frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


class EventIn(BaseModel):
    """The body of POST /api/events."""

    model_config = ConfigDict(extra="forbid")
    level: str = Field(min_length=1, max_length=64)
    title: str = Field(min_length=1, max_length=500)
    body: str = Field(default="", max_length=20_000)
    sender: str = Field(default="", max_length=200)
    key: str = Field(default="", max_length=500)
    status: Status = Status.FIRING
    labels: dict[str, str] = Field(default_factory=dict, max_length=50)
    lamps: list[str] = Field(default_factory=list, max_length=50)  # only these lamps (e.g. a test)


class AckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    by: str = Field(default="api", min_length=1, max_length=200)


class SnoozeIn(AckIn):
    """`for`: how long, e.g. "30m" (at most a week)."""

    duration: Annotated[PositiveDuration, at_most(MAX_SNOOZE)] = Field(alias="for")


class LampTestIn(BaseModel):
    """A level shown on one lamp `for` a while (default 5 s, at most 5 minutes)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    level: str = Field(default="911", min_length=1, max_length=64)
    duration: Annotated[PositiveDuration, at_most(MAX_TEST)] = Field(default=5.0, alias="for")


_parse_json = parse_json  # web/bodies.py, shared with web/acknowledge.py


def _receipt_json(receipt: Receipt) -> dict[str, Any]:
    answer: dict[str, Any] = {"id": receipt.id, "outcome": receipt.outcome.value, "reasons": list(receipt.reasons),
                              "signal_id": receipt.signal_id}
    if receipt.retry_after is not None:
        answer["retry_after"] = receipt.retry_after
    return answer


async def _receipts_body(receipts: list[Receipt]) -> bytes:
    """{"events": [receipt, ...]}, encoded on the loop in turns (11,000 receipts take tens of ms)."""
    encoded = await drawn_in_turns(json.dumps(_receipt_json(receipt)) for receipt in receipts)
    return ('{"events": [' + ", ".join(encoded) + "]}").encode()


def _with_where(service: Service, answer: dict[str, Any]) -> dict[str, Any]:
    """A receipt of a shown event, plus where its signal is (on a lamp, queued behind a 911, ...)."""
    if answer["outcome"] == "shown" and answer["signal_id"] is not None:
        answer["where"] = placement_json(service.placement(answer["signal_id"]))
    return answer


def _event_with_where(event: StoredEvent, places: Mapping[int, Placement]) -> dict[str, Any]:
    """A stored event; a shown one with where its signal is now, or whether it was ever on a lamp."""
    answer = event.to_json()
    if event.outcome is Outcome.SHOWN:
        answer["where"] = placement_json(places[event.signal_id or event.id])
    return answer


def _refusal(result: SignalAction, event_id: int) -> JSONResponse | None:
    if result is SignalAction.UNKNOWN:
        return _error(404, f"no event with id {event_id}")
    if result is SignalAction.NOT_ACTIVE:
        return _error(409, f"event {event_id} is not showing on any lamp (it ended or was never shown)")
    return None


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def _event_refused(exc: EventError) -> JSONResponse:
    """413 for a body over a limit, 400 for one that cannot be parsed, 422 for a wrong field."""
    if isinstance(exc, PayloadError):
        return _error(413 if exc.too_large else 400, str(exc))
    return _error(422, str(exc), problems=[{"field": exc.field, "message": str(exc)}])


def _config_refused(exc: ConfigError) -> JSONResponse:
    """A configuration that was not reloaded: every problem as `FILE:LINE path: message`."""
    lines = [f"{place}: {message}" if place else message for place, message in exc.problems]
    return _error(422, f"not reloaded, the running configuration stays: {len(lines)} problem(s)", reloaded=False,
                  problems=[{"place": place, "message": message} for place, message in exc.problems], lines=lines)


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


async def _validation_failed(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    problems = [{"field": _field_name(err["loc"]), "message": err["msg"]} for err in errors]
    summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
    return _error(422, summary, problems=problems)


def _refuse_unknown_hook(headers: Mapping[str, str], nobodys_token: str) -> NoReturn:
    """Refuse a request to a hook name that does not exist exactly as a token-guarded hook refuses a wrong
    token (same status, same message, a constant-time comparison), so that hook names cannot be probed."""
    check_bearer(headers, nobodys_token)
    raise AuthError("wrong token")  # only if someone guessed 32 random bytes


def create_app(service: Service, token: str) -> FastAPI:
    """The application for one service; `token` guards everything but /healthz."""
    app = FastAPI(title="Lamplighter", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_exception_handler(RequestValidationError, _validation_failed)  # type: ignore[arg-type]
    app.add_exception_handler(PayloadError, lambda _r, e: _event_refused(e))
    app.add_exception_handler(HTTPException, lambda _r, e: _error(e.status_code, str(e.detail)))
    app.add_exception_handler(StoreError, lambda _r, e: _error(503, f"not done: {e}"))  # a journal that refuses
    lamp_page = files("lamplighter.web").joinpath("lamp.html").read_text(encoding="utf-8")

    def authorized(request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() == "bearer" and same_secret(given.strip(), token):
            return
        if same_secret(request.cookies.get(COOKIE), token):
            if request.method == "GET" or passes_csrf_check(request, token):
                return
            raise HTTPException(401, "the login cookie alone cannot change anything: send the dashboard page's "
                                     "X-CSRF-Token, or Authorization: Bearer TOKEN")
        message = "missing token: send Authorization: Bearer TOKEN" if not header else "wrong token"
        raise HTTPException(401, message)

    auth = [Depends(on_the_loop(authorized))]
    unknown_hook_token = secrets.token_urlsafe(32)  # nobody knows it: every request to an unknown hook fails

    @app.get("/healthz")
    async def healthz(request: Request, strict: bool = False) -> JSONResponse:
        """`ok` or `degraded` (200, or 503 with `?strict=1` or server.healthz_degraded_status: 503); the
        reasons name lamps and sources, so only a request with the token gets them."""
        health = service.health()
        answer: dict[str, Any] = {"status": health.status, "lamps": health.lamps, "lamps_online": health.lamps_online}
        if _knows_token(request):
            answer["reasons"] = list(health.reasons)
        degraded = 503 if strict else service.config.server.healthz_degraded_status
        return JSONResponse(answer, status_code=degraded if health.reasons else 200)

    def _knows_token(request: Request) -> bool:
        try:
            authorized(request)
        except HTTPException:
            return False
        return True

    @app.get("/api/openapi.json", dependencies=auth, include_in_schema=False)
    async def openapi() -> dict[str, Any]:
        return app.openapi()

    @app.get("/metrics", dependencies=auth)
    async def metrics() -> Response:
        return Response(service.metrics.text(), media_type="text/plain; version=0.0.4")

    @app.post("/api/events", status_code=202, dependencies=auth)
    async def post_event(request: Request) -> JSONResponse:
        received_at = service.clock.now()
        body = await _parse_json(request, EventIn)
        if body.level not in service.levels:
            known = ", ".join(service.levels)
            return _error(422, f"level: unknown level {body.level!r} (known: {known})",
                          problems=[{"field": "level", "message": f"unknown level {body.level!r}"}])
        unknown = [lamp for lamp in body.lamps if lamp not in service.lamps]
        if unknown:
            return _error(422, f"lamps: no lamp named {unknown[0]!r} (known: {', '.join(service.lamps)})",
                          problems=[{"field": "lamps", "message": f"no lamp named {unknown[0]!r}"}])
        try:
            event = make_event(body.level, body.title, received_at=received_at, body=body.body, sender=body.sender,
                               source="api", key=body.key, status=body.status.value, labels=body.labels,
                               lamps=tuple(body.lamps))
        except EventError as exc:
            return _event_refused(exc)
        try:
            receipt, = await service.accept([event])
        except EventError as exc:
            return _event_refused(exc)
        except StoreError as exc:
            return _error(503, f"not accepted: {exc}")
        return JSONResponse(_with_where(service, _receipt_json(receipt)), status_code=202)

    @app.get("/api/events", dependencies=auth)
    async def list_events(limit: Annotated[int, Query(ge=1, le=5000)] = 50) -> list[dict[str, Any]]:
        events = service.recent_events(limit)
        places = service.placements([e.signal_id or e.id for e in events if e.outcome is Outcome.SHOWN])
        return [_event_with_where(event, places) for event in events]

    @app.post("/api/events/{event_id}/ack", dependencies=auth)
    async def ack(event_id: EventId, request: Request) -> JSONResponse:
        by = (await _parse_json(request, AckIn, empty="{}")).by
        refused = _refusal(service.acknowledge(event_id, by), event_id)
        await service.durable()
        return refused or JSONResponse({"id": event_id, "acknowledged": True, "by": by})

    @app.post("/api/events/{event_id}/snooze", dependencies=auth)
    async def snooze_event(event_id: EventId, request: Request) -> JSONResponse:
        body = await _parse_json(request, SnoozeIn)
        refused = _refusal(service.snooze_signal(event_id, body.duration), event_id)
        await service.durable()
        return refused or JSONResponse({"id": event_id, "snoozed_until": service.clock.now() + body.duration})

    @app.get("/api/snooze", dependencies=auth)
    async def snooze_state() -> dict[str, Any]:
        snooze = service.snooze()
        if snooze is None:
            return {"snoozed_until": None, "by": None}
        return {"snoozed_until": snooze.until, "by": snooze.by}

    @app.post("/api/snooze", dependencies=auth)
    async def snooze_all(request: Request) -> dict[str, Any]:
        body = await _parse_json(request, SnoozeIn)
        snooze = service.snooze_all(body.duration, body.by)
        await service.durable()
        return {"snoozed_until": snooze.until, "by": snooze.by}

    @app.delete("/api/snooze", dependencies=auth)
    async def end_snooze() -> dict[str, Any]:
        service.end_snooze()
        await service.durable()
        return {"snoozed_until": None, "by": None}

    @app.post("/hooks/{name}")
    async def hook(name: str, request: Request) -> Response:
        """A webhook source checks its own credentials (token, HMAC, Slack signature)."""
        source = service.sources.get(name)
        received_at = service.clock.now()
        body = await request.body()
        try:
            if not isinstance(source, WebhookSource):
                _refuse_unknown_hook(request.headers, unknown_hook_token)
            source.authenticate(request.headers, body)
            answered = await source.answer(request.headers, body, received_at, service.submit)
            if answered is not None:
                return JSONResponse(answered[1], status_code=answered[0])
            events = await source.read(request.headers, body, received_at)
        except AuthError as exc:
            return _error(401, str(exc))
        except EventError as exc:
            return _event_refused(exc)
        except StoreError as exc:
            return _error(503, f"not accepted: {exc}")
        try:
            receipts = await service.accept(events)
        except StoreError as exc:
            return _error(503, f"not accepted: {exc}")
        source.accepted(request.headers, body)
        return Response(await _receipts_body(receipts), status_code=202, media_type="application/json")

    @app.get("/api/sources", dependencies=auth)
    async def sources() -> list[dict[str, Any]]:
        return [{"name": s.name, "type": s.source_type, "connected": s.health.connected,
                 "error": s.health.error or None, "last_event_at": s.health.last_event_at,
                 "refused": s.health.refused, "last_refusal": s.health.last_refusal or None}
                for s in service.sources.values()]

    @app.get("/api/lamps", dependencies=auth)
    async def lamps() -> list[dict[str, Any]]:
        return [lamp_json(view) for view in service.lamp_views()]

    @app.get("/api/agents", dependencies=auth)
    async def agents() -> list[dict[str, Any]]:
        """A hub's room agents: online, last seen, lamps, lag, sequence numbers (empty without rooms)."""
        return service.agent_views()

    @app.post("/api/lamps/{name}/test", dependencies=auth, status_code=202)
    async def test_lamp(name: str, request: Request) -> JSONResponse:
        if name not in service.lamps:
            raise HTTPException(404, f"no lamp or siren named {name!r}")
        body = await _parse_json(request, LampTestIn, empty="{}")
        try:
            test = service.test_lamp(name, body.level, body.duration)
        except EventError as exc:
            return _error(422, str(exc), problems=[{"field": exc.field, "message": str(exc)}])
        except LampBusy as exc:
            return _error(409, str(exc))
        return JSONResponse({"lamp": name, "level": test.level, "until": test.expires_at}, status_code=202)

    @app.post("/api/reload", dependencies=auth)
    async def reload() -> JSONResponse:
        """Read the configuration file again and swap it in; 422 with every problem changes nothing."""
        try:
            changes = await service.reload()
        except ConfigError as exc:
            return _config_refused(exc)
        except StoreError as exc:
            return _error(503, f"not reloaded: {exc}")
        return JSONResponse({"reloaded": True, "summary": changes.summary(), **changes.to_json()})

    @app.get("/")
    async def index() -> RedirectResponse:
        return RedirectResponse("/dashboard", status_code=303)  # which asks for the token if needed

    @app.get("/lamp/{name}", response_model=None)
    async def lamp(name: str, request: Request, token_param: Annotated[str | None, Query(alias="token")] = None
                   ) -> HTMLResponse | RedirectResponse:
        if token_param is None:
            authorized(request)
        elif not same_secret(token_param, token):
            raise HTTPException(401, "wrong token")
        if name not in service.lamps:
            raise HTTPException(404, f"no lamp named {name!r}")
        if token_param is not None:
            response = RedirectResponse(f"/lamp/{name}", status_code=303)
            remember_login(response, token)
            return response
        locale = page_locale(request.headers.get("accept-language"), service.config.locale)
        page = lamp_page_html(lamp_page, name, token, service.config.lamp_page.acknowledge)
        with using(locale):
            page = translate_markup(page, LAMP_PAGE).replace("{{WORDS}}", script_words(LAMP_SCRIPT))
        return HTMLResponse(page, headers={**LAMP_PAGE_HEADERS, **language_headers(locale)})

    @app.get("/lamp/{name}/events", dependencies=auth)
    async def lamp_events(name: str) -> StreamingResponse:
        if name not in service.lamps:
            raise HTTPException(404, f"no lamp named {name!r}")
        return StreamingResponse(_lamp_stream(service, name), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    app.include_router(dashboard_router(service, token, authorized))
    app.include_router(acknowledge_router(service, token, authorized))
    app.include_router(pictures_router(service, authorized))
    app.include_router(away_router(service, authorized))
    app.add_middleware(BodySizeLimit, max_bytes=service.config.server.max_body_bytes)
    app.add_middleware(IngressPrefix)  # Home Assistant's ingress: pages under its path prefix
    return app


async def _lamp_stream(service: Service, name: str) -> AsyncIterator[str]:
    queue = service.watch(name)
    try:
        yield f"retry: {RECONNECT_MS}\n\n"  # the page comes back within a second of the daemon
        while True:
            try:
                async with asyncio.timeout(HEARTBEAT_SECONDS):  # not wait_for: it can swallow a cancel on 3.11
                    view = await queue.get()
            except TimeoutError:
                yield "event: alive\ndata: {}\n\n"  # an event the page sees (a comment it would not)
                continue
            if view is None:
                return  # the daemon is stopping; the page's EventSource reconnects when it is back
            yield f"data: {json.dumps(lamp_json(view))}\n\n"
    finally:
        service.unwatch(name, queue)
