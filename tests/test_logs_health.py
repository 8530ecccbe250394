"""The daemon's log and /healthz as an operator meets them, on real daemons: one line per event and
no library chatter (5 mails over SMTP used to log 76 lines), JSON lines on request, and `degraded`
with reasons while a lamp is offline or a source disconnected."""

from __future__ import annotations

import asyncio
import json
import logging
import smtplib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from lamplighter.model import make_event
from lamplighter.service import Service
from tests.conftest import make_config
from tests.daemon import TOKEN, Daemon, free_port
from tests.mail_signing import RULES, sample, variant
from tests.peers.fake_wled import FakeWled
from tests.serving import serving
from tests.test_delivery import UnpluggedBulb
from tests.virtual_time import LoopClock

MAILS = 5
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def mail_config(smtp_port: int, lamp: str) -> str:
    return (f"lamps: {{desk: '{lamp}'}}\n"
            "guards: {rate_limit: {per_sender: null, per_source: null}}\n"
            f"sources:\n  - type: smtp\n    name: mail\n    listen: 127.0.0.1:{smtp_port}\n"
            "    recipients: [lamp@lamplighter.test]\n    clients: [127.0.0.0/8]\n    require: [client]\n" + RULES)


def send_mails(smtp_port: int) -> None:
    deadline = time.monotonic() + 10  # /healthz answers before the SMTP source has bound its port
    while True:
        try:
            smtplib.SMTP("127.0.0.1", smtp_port, timeout=10).quit()
            break
        except ConnectionRefusedError:
            assert time.monotonic() < deadline, f"nothing listens on SMTP port {smtp_port}"
            time.sleep(0.05)
    for n in range(MAILS):
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as client:
            mail = variant(sample("mail-911"), subject=f"[911] shop{n}: checkout failing", message_id=f"<m{n}@x>")
            client.sendmail("alerts@monitor.example.com", ["lamp@lamplighter.test"], mail)


def log_lines(daemon: Daemon) -> list[str]:
    """What the daemon logged after its banner (the banner's last line starts with `Try it:`)."""
    text = daemon.log_path.read_text()
    return text.partition("\nTry it:")[2].splitlines()[1:]


async def run_mail_daemon(tmp_path: Path, name: str, run_args: tuple[str, ...] = (), extra: str = "") -> Daemon:
    """A daemon with an SMTP source and a WLED lamp (so httpx talks to a device), fed 5 mails, stopped."""
    smtp_port = free_port()
    async with FakeWled() as strip:
        daemon = Daemon(tmp_path / name, extra + mail_config(smtp_port, f"wled://{strip.base_url[7:]}"),
                        run_args=run_args)
        await asyncio.to_thread(daemon.start)
        try:
            await asyncio.to_thread(send_mails, smtp_port)
            async with httpx.AsyncClient(base_url=daemon.url, headers=AUTH) as client:
                deadline = time.monotonic() + 10
                while len((await client.get("/api/events")).json()) < MAILS or not strip.changes:
                    assert time.monotonic() < deadline, "the mails or the lamp change did not arrive"
                    await asyncio.sleep(0.05)
        finally:
            assert await asyncio.to_thread(daemon.stop) == 0
    return daemon


async def test_five_mails_log_one_line_each_and_no_library_chatter(tmp_path: Path) -> None:
    daemon = await run_mail_daemon(tmp_path, "text")
    lines = log_lines(daemon)
    events = [line for line in lines if " event " in line and "lamplighter.service.incidents" in line]
    assert [line.split(" event ")[1].split(":")[0] for line in events] == [str(n) for n in range(1, MAILS + 1)]
    assert all(" INFO " in line and "911 shown on desk from mail: shop" in line for line in events), events
    assert len(lines) <= MAILS + 4, "\n".join(lines)  # the events, the SMTP listener's line, a stop line or two
    text = "\n".join(lines)
    for chatter in ("mail.log", "HTTP Request", "httpcore", ">> b'", "connected again"):
        assert chatter not in text
    assert TOKEN not in daemon.log_path.read_text()


@pytest.mark.parametrize(("how", "run_args", "extra"), [
    ("option", ("--log-format", "json"), ""),
    ("file", (), "log: {format: json}\n"),
])
async def test_json_logs_are_one_object_per_line_with_the_events_fields(tmp_path: Path, how: str,
                                                                        run_args: tuple[str, ...], extra: str) -> None:
    daemon = await run_mail_daemon(tmp_path, how, run_args, extra)
    records = [json.loads(line) for line in log_lines(daemon)]  # every line parses
    assert records and all({"time", "level", "logger", "message"} <= record.keys() for record in records)
    assert all(record["time"].endswith("Z") and record["time"][10] == "T" for record in records)
    events = [r for r in records if "event_id" in r]
    assert [(r["event_id"], r["event_level"], r["outcome"], r["lamps"], r["source"]) for r in events] == [
        (n, "911", "shown", ["desk"], "mail") for n in range(1, MAILS + 1)]
    assert all(r["level"] == "INFO" and r["message"].startswith(f"event {r['event_id']}: 911 shown") for r in events)


# ---- /healthz ------------------------------------------------------------------------------------

def answers(url: str) -> Callable[[], bool]:
    return lambda: httpx.get(url, timeout=1).status_code in (200, 503)


def degraded_config(closed_port: int) -> str:
    return (f"lamps: {{desk: virtual://desk, porch: 'wled://127.0.0.1:{closed_port}?timeout=0.5'}}\n"
            "sources:\n"
            f"  - {{type: mqtt, name: home, broker: '127.0.0.1:{closed_port}', "
            "topics: [{topic: home/alerts, level: '912', title: x}]}\n")


def wait_for_health(url: str, status: str, headers: dict[str, str] | None = None) -> httpx.Response:
    deadline = time.monotonic() + 15
    while True:
        response = httpx.get(f"{url}/healthz", headers=headers, timeout=2)
        if response.json()["status"] == status or time.monotonic() > deadline:
            return response
        time.sleep(0.1)


def test_healthz_is_degraded_with_reasons_while_a_lamp_is_offline_and_a_source_disconnected(
        tmp_path: Path) -> None:
    closed = free_port()
    daemon = Daemon(tmp_path / "d", degraded_config(closed))
    daemon.start(ready=answers(f"{daemon.url}/healthz"))  # it may be degraded, and answer 503, at once
    try:
        with_token = wait_for_health(daemon.url, "degraded", AUTH)
        body = with_token.json()
        assert with_token.status_code == 200  # by default, for monitors that read the body
        assert body["status"] == "degraded" and (body["lamps"], body["lamps_online"]) == (2, 1)
        porch, home = [r for r in body["reasons"] if r.startswith("lamp porch offline: ")], \
            [r for r in body["reasons"] if r.startswith("source home disconnected: ")]
        assert len(porch) == 1 and len(home) == 1 and len(body["reasons"]) == 2, body["reasons"]
        assert f"127.0.0.1:{closed}" in home[0]
        anonymous = httpx.get(f"{daemon.url}/healthz")
        assert anonymous.json() == {"status": "degraded", "lamps": 2, "lamps_online": 1}  # no names without the token
        strict = httpx.get(f"{daemon.url}/healthz", params={"strict": "1"})
        assert strict.status_code == 503 and strict.json()["status"] == "degraded"
    finally:
        daemon.stop()


def test_healthz_is_ok_when_everything_works_even_strictly(daemon: Callable[..., Daemon]) -> None:
    running = daemon("lamps: {desk: virtual://desk}\n")
    response = httpx.get(f"{running.url}/healthz", params={"strict": "1"}, headers=AUTH)
    assert (response.status_code, response.json()) == (200, {"status": "ok", "lamps": 1, "lamps_online": 1,
                                                              "reasons": []})


@pytest.mark.real_time
async def test_healthz_answers_503_when_the_file_asks_for_it(service_factory: Callable[..., Service]) -> None:
    service = service_factory(f"server: {{healthz_degraded_status: 503}}\n{degraded_config(free_port())}")
    async with serving(service, TOKEN) as url, httpx.AsyncClient(base_url=url) as client:
        deadline = time.monotonic() + 15
        while (response := await client.get("/healthz")).status_code != 503:
            assert time.monotonic() < deadline, response.json()
            await asyncio.sleep(0.1)
        body: dict[str, Any] = response.json()
        assert body["status"] == "degraded"


@pytest.mark.virtual_time
async def test_a_source_silent_past_expect_every_makes_health_degraded_until_it_speaks(tmp_path: Path) -> None:
    config = make_config(tmp_path, "sources:\n  - {type: alertmanager, name: am, token: am-token-0123456789, "
                                   "expect_every: 10m}\n")
    service = Service(config, clock=LoopClock())
    async with service.running():
        assert service.health().status == "ok"
        await asyncio.sleep(11 * 60)
        health = service.health()
        assert health.status == "degraded"
        assert health.reasons == ("source am blind: am has been silent for 11m (expected every 10m)",)
        service.submit(make_event("912", "disk", source="am", received_at=service.clock.now()))
        assert service.health().reasons == ()


@pytest.mark.virtual_time
async def test_a_signal_whose_hold_ends_before_any_lamp_showed_it_is_logged(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="lamplighter.service.core")
    config = make_config(tmp_path, "levels: {'912': {hold: 30s}}\n")
    service = Service(config, clock=LoopClock(), drivers={"desk": UnpluggedBulb("desk")})
    async with service.running():
        shown = service.submit(make_event("912", "disk 90%", received_at=service.clock.now()))
        await asyncio.sleep(31)
        assert service.placement(shown.id).where.value == "ended"
    lines = [r.getMessage() for r in caplog.records if "before any of its lamps" in r.getMessage()]
    assert lines == [f"event {shown.id}: its 912 ended (hold over) before any of its lamps (desk) showed it"]
