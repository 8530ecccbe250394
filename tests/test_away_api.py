"""GET /api/away through a real server: since a moment, or the quiet hours that ended last."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from lamplighter.model import make_event
from lamplighter.service import Service
from tests.conftest import FakeClock
from tests.serving import serving
from tests.virtual_time import START

QUIET = "guards: {quiet_hours: {start: '22:00', end: '07:00', timezone: UTC}, rate_limit: {per_sender: null}}\n"


async def test_api_away_answers_since_a_moment_or_the_last_quiet_hours(
        service_factory: Callable[..., Service], clock: FakeClock) -> None:
    service = service_factory(QUIET)
    token = "away-test-token-0123"
    async with serving(service, token) as url, httpx.AsyncClient(base_url=url, timeout=5) as client:
        auth = {"Authorization": f"Bearer {token}"}
        service.submit(make_event("912", "disk", received_at=clock.now(), sender="a"))
        since = await client.get("/api/away", params={"since": START - 1}, headers=auth)
        assert since.status_code == 200
        body = since.json()
        assert (body["reason"], body["total"], body["counts"]) == ("since", 1, {"shown": 1})
        assert [e["title"] for e in body["events"]] == ["disk"]
        night = (await client.get("/api/away", headers=auth)).json()
        assert night["reason"] == "quiet_hours" and night["quiet_hours"] == {"start": START - 10 * 3600,
                                                                             "end": START - 3600}
        assert night["total"] == 0
        assert (await client.get("/api/away")).status_code == 401
