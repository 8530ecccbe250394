"""The web dashboard: the pages a person keeps open, the browser login, and the data behind them.

Pages (HTML shells from static/, filled in by the browser's JavaScript):

    /login               sign in with the API token (kept in an HttpOnly, SameSite=Strict cookie)
    /dashboard           Now: every lamp, what it shows and why; active signals; sources
    /dashboard/timeline  recent events with outcome and reasons, filters, events per hour
    /dashboard/try       send a test event; preview a level's look
    /dashboard/setup     the running configuration with secrets hidden

Data: /dashboard/live is a server-sent event stream of the Now view (a snapshot on every
change, and every REFRESH_SECONDS); /api/timeline, /api/timeline/hourly and /api/config
answer JSON. The buttons call the existing API (ack, snooze, events) with the login cookie
plus the page's CSRF token in X-CSRF-Token, which `passes_csrf_check` verifies for app.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from html import escape
from importlib.resources import files
from pathlib import PurePath
from typing import Annotated, Any
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from lamplighter.config import GuardsConfig, QuietHoursConfig, RateConfig
from lamplighter.drivers.base import HIDDEN, redact
from lamplighter.i18n import _, using
from lamplighter.model import NAMED_COLORS, LampView, Level, Outcome, Signal, StoredEvent, format_duration
from lamplighter.rules.placement import Placement
from lamplighter.rules.router import Snooze
from lamplighter.rules.watchdog import Watch, blind_reason
from lamplighter.service import Service
from lamplighter.service.activity import Activity
from lamplighter.service.broadcast import Broadcast
from lamplighter.service.core import PICTURE_LABELS
from lamplighter.sources.base import Source
from lamplighter.web.page_text import (
    DASHBOARD,
    DASHBOARD_SCRIPT,
    language_headers,
    page_locale,
    script_words,
    translate_markup,
)
from lamplighter.web.views import lamp_json, placement_json

COOKIE = "lamplighter_token"
CSRF_HEADER = "x-csrf-token"
LOGIN_DAYS = 365
REFRESH_SECONDS = 15.0  # a fresh snapshot this often even when nothing changed: source silence, keepalive
TIMELINE_LIMIT = 100
CHOICES_LIMIT = 100
CHART_DAYS = 3
VIEWS = {  # path -> (view name, page title)
    "/dashboard": ("now", "Now"),  # the titles are in the catalog through page_text.DASHBOARD
    "/dashboard/timeline": ("timeline", "Timeline"),
    "/dashboard/try": ("try", "Try it"),
    "/dashboard/setup": ("setup", "Setup"),
}
ASSET_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}
SECRET_WORDS = frozenset({"password", "passwd", "pass", "secret", "token", "apikey", "auth", "authorization",
                          "credential", "credentials", "cookie", "private"})  # also any *_key but the dedup `key`
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; base-uri 'self'; form-action 'self';"
                               " frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
COLOR_NAMES = {hex_value: name for name, hex_value in NAMED_COLORS.items()}

Authorize = Callable[[Request], None]


# ---- browser login: the cookie, and CSRF safety for the buttons --------------------------------

def csrf_token(token: str) -> str:
    """What a signed-in page sends in X-CSRF-Token: derived from the API token, and no use without the cookie."""
    return hmac.new(token.encode(), b"lamplighter dashboard csrf", hashlib.sha256).hexdigest()


def passes_csrf_check(request: Request, token: str) -> bool:
    """A change made with the login cookie must come from our own page: its CSRF token, no foreign Origin."""
    origin = request.headers.get("origin")
    same_origin = origin is None or urlsplit(origin).netloc == request.headers.get("host")
    return same_origin and same_secret(request.headers.get(CSRF_HEADER), csrf_token(token))


def remember_login(response: Response, token: str) -> None:
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", max_age=LOGIN_DAYS * 86400)


def same_secret(given: str | None, expected: str) -> bool:
    """Whether a presented secret is the expected one; an empty one never is."""
    return bool(given) and bool(expected) and hmac.compare_digest(str(given).encode(), expected.encode())


def _signed_in(request: Request, authorized: Authorize) -> bool:
    try:
        authorized(request)
    except HTTPException:
        return False
    return True


def _safe_next(path: str) -> str:
    """Where to go after signing in: a dashboard page or a lamp page, never another site."""
    return path if path in VIEWS or (path.startswith("/lamp/") and "//" not in path) else "/dashboard"


# ---- routes --------------------------------------------------------------------------------------

def on_the_loop(check: Authorize) -> Callable[[Request], Awaitable[None]]:
    """`check` as a FastAPI dependency that runs on the event loop: a plain `def` dependency would be
    sent to a worker thread for every request, for a check that does no I/O."""

    async def dependency(request: Request) -> None:
        check(request)

    return dependency


def dashboard_router(service: Service, token: str, authorized: Authorize) -> APIRouter:
    """The dashboard's pages, login, static files and data, guarded by `authorized` like the API."""
    router = APIRouter()
    _add_login(router, token, authorized)
    _add_pages(router, token, authorized, service.config.locale)
    _add_live(router, service, [Depends(on_the_loop(authorized))])
    _add_data(router, service, token, [Depends(on_the_loop(authorized))])
    return router


def _template(name: str) -> str:
    return files("lamplighter.web").joinpath("static", name).read_text(encoding="utf-8")


def _fill(template: str, **values: str) -> str:
    for name, value in values.items():
        template = template.replace("{{" + name + "}}", escape(value))
    return template


def _login_page(template: str, next_path: str, error: str = "", status: int = 200) -> HTMLResponse:
    html = _fill(template, NEXT=next_path, ERROR=error, HIDE_ERROR="" if error else "hidden")
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)


def _add_login(router: APIRouter, token: str, authorized: Authorize) -> None:
    page = _template("login.html")

    @router.get("/login")
    async def login_form(next_path: Annotated[str, Query(alias="next")] = "/dashboard") -> HTMLResponse:
        return _login_page(page, _safe_next(next_path))

    @router.post("/login", response_model=None)
    async def sign_in(request: Request) -> Response:
        form = parse_qs((await request.body()).decode(errors="replace"))
        target = _safe_next(form.get("next", [""])[0])
        if not same_secret(form.get("token", [""])[0].strip(), token):
            return _login_page(page, target, "That is not the token of this Lamplighter.", status=401)
        response = RedirectResponse(target, status_code=303)
        remember_login(response, token)
        return response

    @router.post("/logout", dependencies=[Depends(on_the_loop(authorized))])
    async def sign_out() -> Response:
        response = Response(status_code=204)
        response.delete_cookie(COOKIE, httponly=True, samesite="strict")
        return response


def _add_pages(router: APIRouter, token: str, authorized: Authorize, configured_locale: str) -> None:
    shell = _template("dashboard.html")
    static = files("lamplighter.web").joinpath("static")
    assets = {item.name: item.read_bytes() for item in static.iterdir() if PurePath(item.name).suffix in ASSET_TYPES}

    async def page(request: Request, token_param: Annotated[str | None, Query(alias="token")] = None) -> Response:
        path = request.url.path
        if token_param is not None:  # a link carrying the token, as printed by `lamplighter run`
            if not same_secret(token_param, token):
                raise HTTPException(401, "wrong token")
            response = RedirectResponse(path, status_code=303)
            remember_login(response, token)
            return response
        if not _signed_in(request, authorized):
            return RedirectResponse(f"/login?next={quote(path)}", status_code=303)
        view, title = VIEWS[path]
        locale = page_locale(request.headers.get("accept-language"), configured_locale)
        with using(locale):
            html = _fill(translate_markup(shell, DASHBOARD), VIEW=view, TITLE=_(title), CSRF=csrf_token(token))
            html = html.replace("{{WORDS}}", script_words(DASHBOARD_SCRIPT))  # JSON, not HTML: not _fill's escape
        return HTMLResponse(html, headers={**PAGE_HEADERS, **language_headers(locale)})

    for path in VIEWS:
        router.add_api_route(path, page, methods=["GET"], response_model=None)

    @router.get("/static/{name}")
    async def asset(name: str) -> Response:
        if name not in assets:
            raise HTTPException(404, f"no file named {name!r}")
        return Response(assets[name], media_type=ASSET_TYPES[PurePath(name).suffix],
                        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})


# ---- the live Now view ---------------------------------------------------------------------------

def _add_live(router: APIRouter, service: Service, auth: list[Any]) -> None:
    watching_since = service.clock.now()  # the daemon's start, near enough, for sources that never spoke

    @router.get("/dashboard/live", dependencies=auth)
    async def live() -> StreamingResponse:
        return StreamingResponse(_live_stream(service, watching_since), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def _live_stream(service: Service, watching_since: float) -> AsyncIterator[str]:
    """A snapshot now, then one after every batch of lamp changes and activity; ends when the daemon stops."""
    broadcasts: list[Broadcast[Any]] = [*service.lamp_changes.values(), service.activity]
    queues: list[asyncio.Queue[Any]] = [broadcast.subscribe() for broadcast in broadcasts]
    try:
        yield _sse(now_snapshot(service, watching_since, []))
        async for batch in _batches(queues, REFRESH_SECONDS):
            kinds = sorted({item.kind for item in batch if isinstance(item, Activity)})
            yield _sse(now_snapshot(service, watching_since, kinds))
            if "reloaded" in kinds:
                return  # the lamps may have changed: the page reconnects and listens to the new ones
    finally:
        for broadcast, queue in zip(broadcasts, queues, strict=True):
            broadcast.unsubscribe(queue)


async def _batches(queues: list[asyncio.Queue[Any]], timeout: float) -> AsyncIterator[list[Any]]:
    """Everything that arrived on any queue since the last batch (empty after `timeout` of quiet).

    Stops at a None, which a Broadcast sends when the service is stopping.
    """
    while True:
        getters = [asyncio.ensure_future(queue.get()) for queue in queues]
        try:
            await asyncio.wait(getters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:  # also when the browser went away: no getter may outlive the stream
            for getter in getters:
                getter.cancel()
        results = await asyncio.gather(*getters, return_exceptions=True)
        batch = [item for item in results if not isinstance(item, BaseException)]
        batch += [queue.get_nowait() for queue in queues for _ in range(queue.qsize())]
        if any(item is None for item in batch):
            return
        yield batch


def _sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data)}\n\n"


def now_snapshot(service: Service, watching_since: float, activity: list[str]) -> dict[str, Any]:
    """What the Now view shows: lamps with the why, active signals, sources, the global snooze."""
    now = service.clock.now()
    signals = sorted(service.signals.values(), key=lambda s: (-s.priority, -s.started_at))
    places = service.placements([signal.event_id for signal in signals])
    return {
        "now": now,
        "activity": activity,
        "lamps": [_lamp_json(service, view) for view in service.lamp_views()],
        "signals": [_signal_json(service, signal, places[signal.event_id]) for signal in signals],
        "sources": [_source_json(source, now, watching_since) for source in service.sources.values()],
        "snooze": _snooze_json(service.snooze()),
        "agents": service.agent_views(),  # a hub's room agents (none otherwise)
    }


def _lamp_json(service: Service, view: LampView) -> dict[str, Any]:
    """The API's lamp, with the colour's name and the showing signal in full."""
    return {
        **lamp_json(view),
        "color_name": COLOR_NAMES.get(view.state.color) if view.state else None,
        "showing": _signal_json(service, view.showing) if view.showing else None,
    }


def _signal_json(service: Service, signal: Signal, where: Placement | None = None) -> dict[str, Any]:
    """A signal with the event behind it: who sent it and through which source."""
    event = service.event_record(signal.event_id)
    return {
        "event_id": signal.event_id,
        "level": signal.level,
        "title": signal.title,
        "color": signal.look.color,
        "sender": event.sender if event else "",
        "source": event.source if event else "",
        "lamps": sorted(signal.lamps),
        "started_at": signal.started_at,
        "expires_at": signal.expires_at,
        "snoozed_until": signal.snoozed_until,
        "picture": f"api/events/{signal.event_id}/picture"
                   if event is not None and PICTURE_LABELS & event.labels.keys() else None,
        **_escalation_json(service, signal),
        "where": None if where is None else placement_json(where),
    }


def _escalation_json(service: Service, signal: Signal) -> dict[str, Any]:
    """Its sirens and when they sound (or since when they do)."""
    now = service.clock.now()
    sounding = signal.escalates_at is not None and now >= signal.escalates_at and bool(signal.sirens)
    return {
        "sirens": sorted(signal.sirens),
        "escalates_at": signal.escalates_at if signal.sirens else None,
        "sounding": sounding,
    }


def _source_json(source: Source, now: float, watching_since: float) -> dict[str, Any]:
    health, expect_every = source.health, source.settings.expect_every
    watch = Watch(source.name, expect_every, health.last_event_at or watching_since, health.disconnected_since)
    return {
        "name": source.name,
        "type": source.source_type,
        "connected": health.connected,
        "error": health.error or None,
        "last_event_at": health.last_event_at,
        "expect_every": None if expect_every is None else format_duration(expect_every),
        "blind": blind_reason(watch, now),
    }


def _snooze_json(snooze: Snooze | None) -> dict[str, Any] | None:
    return None if snooze is None else {"until": snooze.until, "by": snooze.by}


# ---- timeline, chart and setup data --------------------------------------------------------------

def _add_data(router: APIRouter, service: Service, token: str, auth: list[Any]) -> None:
    @router.get("/api/timeline", dependencies=auth)
    async def timeline(level: str = "", source: str = "", sender: str = "", outcome: str = "",
                       limit: Annotated[int, Query(ge=1, le=1000)] = TIMELINE_LIMIT) -> dict[str, Any]:
        given = {"level": level, "source": source, "sender": sender, "outcome": outcome}
        events = service.find_events({k: v for k, v in given.items() if v}, limit)
        return {"events": [_timeline_entry(service, event) for event in events], "choices": _choices(service)}

    @router.get("/api/timeline/hourly", dependencies=auth)
    async def hourly(days: Annotated[int, Query(ge=1, le=14)] = CHART_DAYS) -> dict[str, Any]:
        return events_per_hour(service, days)

    @router.get("/api/config", dependencies=auth)
    async def running_config() -> dict[str, Any]:
        return config_json(service, token)


def _timeline_entry(service: Service, event: StoredEvent) -> dict[str, Any]:
    """A stored event, plus how the signal it started ended (acknowledged, expired, ...) or that it is active."""
    ended = service.signal_end(event.id) if event.outcome is Outcome.SHOWN else None
    return {**event.to_json(), "active": event.id in service.signals,
            "ended": None if ended is None else {"at": ended[0], "reason": ended[1]}}


def _choices(service: Service) -> dict[str, list[str]]:
    """The values each timeline filter offers: configured levels first, then what the journal holds."""
    return {
        "level": list(dict.fromkeys([*service.levels, *service.event_values("level", CHOICES_LIMIT)])),
        "source": service.event_values("source", CHOICES_LIMIT),
        "sender": [s for s in service.event_values("sender", CHOICES_LIMIT) if s],
        "outcome": [outcome.value for outcome in Outcome],
    }


def events_per_hour(service: Service, days: int) -> dict[str, Any]:
    """Counts per level for each of the last `days` * 24 hours, the current hour last."""
    hours = days * 24
    start = (int(service.clock.now() // 3600) - hours + 1) * 3600.0
    counts: dict[str, list[int]] = {}
    for hour, level, count in service.events_per_hour(start):
        index = int((hour - start) // 3600)
        if index < hours:
            counts.setdefault(level, [0] * hours)[index] = count
    return {"start": start, "hours": hours, "counts": counts}


def config_json(service: Service, token: str) -> dict[str, Any]:
    """The running configuration for people to read: the token and lamp URL secrets hidden."""
    config = service.config
    all_lamps = list(config.lamps)
    return {
        "server": {"listen": config.server.listen, "token": HIDDEN, "max_body_bytes": config.server.max_body_bytes},
        "state_dir": str(config.state_dir),
        "lamps": [{"name": name, "url": redact(url)} for name, url in config.lamps.items()],
        "sirens": [{"name": name, "url": service.lamps[name].driver.url(privacy=True) if name in service.lamps
                    else redact(url)} for name, url in config.sirens.items()],
        "levels": [_level_json(level, all_lamps) for level in sorted(service.levels.values(),
                                                                     key=lambda lv: -lv.priority)],
        "guards": _guards_json(config.guards),
        "sources": [hide_secrets(entry.model_dump(mode="json"), token) for entry in config.sources],
    }


def _level_json(level: Level, all_lamps: list[str]) -> dict[str, Any]:
    return {
        "name": level.name,
        "color": level.color,
        "color_name": COLOR_NAMES.get(level.color),
        "effect": str(level.effect),
        "brightness": level.brightness,
        "hold": "until acknowledged" if level.hold is None else format_duration(level.hold),
        "priority": level.priority,
        "lamps": list(level.lamps) if level.lamps is not None else all_lamps,
        "quiet_hours_bypass": level.quiet_hours_bypass,
        "sirens": list(level.sirens or ()),
        "escalate_after": format_duration(level.escalate_after) if level.sirens else None,
    }


def _guards_json(guards: GuardsConfig) -> dict[str, Any]:
    limits = guards.rate_limit
    return {
        "dedup_window": format_duration(guards.dedup_window),
        "per_sender": _rate_text(limits.per_sender),
        "per_source": _rate_text(limits.per_source),
        "quiet_hours": [_quiet_text(window) for window in guards.quiet_hours],
    }


def _rate_text(rate: RateConfig | None) -> str:
    return "off" if rate is None else f"{rate.burst} at once, then 1 every {format_duration(rate.every)}"


def _quiet_text(window: QuietHoursConfig) -> str:
    zone = window.timezone or "the machine's time zone"
    return f"{window.start:%H:%M}-{window.end:%H:%M} on {', '.join(window.days)} ({zone})"


def hide_secrets(value: Any, token: str, name: str = "") -> Any:
    """A settings value safe to show: secret-named values hidden, URLs redacted, the token never shown."""
    if isinstance(value, dict):
        return {key: hide_secrets(item, token, str(key)) for key, item in value.items()}
    if isinstance(value, list):
        return [hide_secrets(item, token, name) for item in value]
    if isinstance(value, bool) or value in (None, ""):
        return value
    if _secret_name(name):
        return HIDDEN
    if isinstance(value, str):
        return HIDDEN if token in value else redact(value) if "://" in value else value
    return value


def _secret_name(name: str) -> bool:
    """`password`, `bot_token`, `X-Api-Key`, `Authorization`: yes; `key` (the dedup key), `signature_header`: no."""
    words = re.split(r"[\W_]+", name.lower())
    return bool(SECRET_WORDS.intersection(words)) or (len(words) > 1 and words[-1] == "key")
