"""The IMAP source against a real Dovecot: samples APPENDed, lamp outcomes, restarts, UIDVALIDITY, TLS, polling."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from lamplighter.drivers.virtual import VirtualDriver
from lamplighter.model import LampState, StoredEvent
from lamplighter.service import Service
from lamplighter.sources.mail.imap import ImapSource
from tests.daemon import Daemon
from tests.mail_signing import RULES, sample, variant
from tests.peers.dovecot import Dovecot

pytestmark = pytest.mark.slow

RED = LampState(on=True, color="#ff0000")
YELLOW = LampState(on=True, color="#ffd000")
Build = Callable[..., Awaitable[Service]]


def config(server: Dovecot, state_file: Path, rules: str = RULES, **settings: Any) -> str:
    """A service with one virtual lamp, no rate limits, and an `imap` source named `mail` on `server`."""
    fields: dict[str, Any] = {"host": "127.0.0.1", "port": server.port, "tls": "none", "username": "alerts",
                              "password": "secret", "authserv_id": "mx.example.com",
                              "senders": "[alerts@monitor.example.com]", "state_file": state_file, **settings}
    lines = "".join(f"    {key}: {value}\n" for key, value in fields.items())
    return ("guards: {rate_limit: {per_sender: null, per_source: null}}\n"
            f"sources:\n  - type: imap\n    name: mail\n{lines}{rules}")


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    with Dovecot().start() as server:
        yield server


@pytest.fixture
async def start(service_factory: Callable[..., Service], tmp_path: Path) -> AsyncIterator[Build]:
    """Start services on one state directory (a restart sees the journal and the positions of the last)."""
    started: list[Service] = []

    async def build(server: Dovecot, **settings: Any) -> Service:
        service = service_factory(config(server, tmp_path / "mail-positions.json", **settings))
        await service.start()
        started.append(service)
        await until(lambda: watching(mail_source(service)), what="the first look at the folders")
        return service

    yield build
    for service in started:
        await service.stop()


def watching(source: ImapSource) -> bool:
    """Every folder has a position: mail appended from now on is new mail."""
    return all(source.mailbox_key(folder) in source.positions for folder in source.imap.folders)


def mail_source(service: Service) -> ImapSource:
    source = service.sources["mail"]
    assert isinstance(source, ImapSource)
    return source


async def until(check: Callable[[], Any], timeout: float = 5.0, what: str = "the condition") -> float:
    """Wait in real time until `check()` holds; returns how long it took."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not check():
        assert loop.time() - started < timeout, f"timed out after {timeout}s waiting for {what}"
        await asyncio.sleep(0.005)
    return loop.time() - started


def events(service: Service) -> list[StoredEvent]:
    """Mail events, oldest first."""
    return [e for e in reversed(service.store.recent_events(1000)) if e.source == "mail"]


def lamp(service: Service) -> LampState:
    driver = service.lamps["desk"].driver
    assert isinstance(driver, VirtualDriver)
    return driver.state


async def append(server: Dovecot, raw: bytes, folder: str = "INBOX", when: datetime | None = None) -> int:
    return await asyncio.to_thread(server.append, raw, folder, when)


def numbered(n: int, subject: str = "[912] job-{n}: queue slow") -> bytes:
    """A fresh, authenticated 912 mail of its own incident, dated now."""
    now = format_datetime(datetime.now(UTC))
    raw = variant(sample("mail-912"), subject=subject.format(n=n), message_id=f"<n{n}@monitor.example.com>")
    return raw.replace(b"Date: Tue, 24 Nov 2026 20:35:41 +0000", f"Date: {now}".encode())


def message_ids(service: Service) -> list[str]:
    return [e.labels["message_id"] for e in events(service)]


async def test_911_turns_the_lamp_red_912_waits_behind_it_and_resolved_ends_it(start: Build,
                                                                              dovecot: Dovecot) -> None:
    service = await start(dovecot)
    await append(dovecot, sample("mail-911"))
    took = await until(lambda: lamp(service) == RED, what="the lamp to turn red")
    assert took < 1.0
    [fired] = events(service)
    assert (fired.level, fired.title, fired.key, fired.outcome) == (
        "911", "payments-api: error rate 34% for 5 minutes", "payments-api", "shown")
    assert fired.sender == "alerts@monitor.example.com" and "Customers cannot complete checkout" in fired.body
    assert fired.labels == {"message_id": "<20261124203107.1234@monitor.example.com>",
                               "from": "alerts@monitor.example.com", "folder": "INBOX", "uid": "1"}

    await append(dovecot, sample("mail-912"))
    await until(lambda: len(events(service)) == 2, what="the 912")
    assert events(service)[1].outcome == "shown" and lamp(service) == RED  # a 911 pre-empts a 912

    resolved = variant(sample("mail-911"), subject="[911] RESOLVED payments-api: error rate 0.4%",
                       message_id="<resolved-1@monitor.example.com>")
    await append(dovecot, resolved)
    await until(lambda: lamp(service) == YELLOW, what="the 912 to show again")
    assert (events(service)[2].status, events(service)[2].outcome) == ("resolved", "resolved")
    assert events(service)[2].signal_id == fired.id


async def test_the_spoofed_sample_never_reaches_911(start: Build, dovecot: Dovecot,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    service = await start(dovecot)
    with caplog.at_level(logging.WARNING, logger="lamplighter.sources.mail"):
        await append(dovecot, sample("mail-911-spoofed"))
        await append(dovecot, sample("mail-912"))  # a marker: handled after the spoofed one
        await until(lambda: len(events(service)) == 2, what="the 912 behind the spoofed mail")
    reason = "not authenticated: dkim=none, dmarc=fail per mx.example.com (required: dkim|dmarc)"
    assert [(e.level, e.title, e.outcome, e.reasons) for e in events(service)] == [
        ("911", "EVERYTHING IS DOWN click here", "rejected", (reason,)), ("912", "batch-worker: retry queue above"
                                                                         " 1000 jobs", "shown", ())]
    await until(lambda: lamp(service) == YELLOW, what="yellow")
    assert service.signals and all(s.level == "912" for s in service.signals.values())
    assert f"mail <fake-0001@random-sender.example.net> from alerts@monitor.example.com: {reason}" in caplog.text
    assert mail_source(service).positions[mail_source(service).mailbox_key("INBOX")].last_uid == 2


async def test_unauthenticated_mail_is_held_to_the_rules_unauthenticated_level(start: Build, dovecot: Dovecot) -> None:
    downgrading = RULES.replace('key: "{service}"\n', 'key: "{service}"\n        unauthenticated_level: "912"\n')
    service = await start(dovecot, rules=downgrading)
    await append(dovecot, sample("mail-911-spoofed"))
    await until(lambda: events(service), what="the downgraded event")
    [event] = events(service)
    assert (event.level, event.outcome) == ("912", "shown")
    assert event.labels["authentication"].startswith("failed: not authenticated: dkim=none, dmarc=fail")
    await until(lambda: lamp(service) == YELLOW, what="yellow, never red")


async def test_the_first_start_leaves_older_mail_alone(start: Build, dovecot: Dovecot) -> None:
    await append(dovecot, numbered(0))
    service = await start(dovecot)
    assert mail_source(service).positions[mail_source(service).mailbox_key("INBOX")].last_uid == 1
    await append(dovecot, numbered(1))
    await until(lambda: events(service), what="the new mail")
    await asyncio.sleep(0.2)
    assert message_ids(service) == ["<n1@monitor.example.com>"]


async def test_restarts_of_lamplighter_and_dovecot_neither_repeat_nor_drop_mail(start: Build, dovecot: Dovecot,
                                                                               tmp_path: Path) -> None:
    service = await start(dovecot)
    await append(dovecot, numbered(1))
    await until(lambda: len(events(service)) == 1, what="mail 1")
    await service.stop()

    for n in (2, 3):  # Lamplighter is down: these wait in the mailbox
        await append(dovecot, numbered(n))
    service = await start(dovecot)
    await until(lambda: len(events(service)) == 3, what="mails 2 and 3 after the restart")

    await asyncio.to_thread(dovecot.stop)
    source = mail_source(service)
    await until(lambda: not source.health.connected, what="the source to notice")
    assert source.health.error.startswith("INBOX: ")
    await asyncio.to_thread(dovecot.start)
    await until(lambda: source.health.connected, timeout=10, what="the reconnect with backoff")
    await append(dovecot, numbered(4))
    await until(lambda: len(events(service)) == 4, what="mail 4 after the server's restart")
    await service.stop()

    service = await start(dovecot)
    await append(dovecot, numbered(5))
    await until(lambda: len(events(service)) == 5, what="mail 5")
    await asyncio.sleep(0.3)
    assert message_ids(service) == [f"<n{n}@monitor.example.com>" for n in range(1, 6)]  # once each, in order
    saved = json.loads((tmp_path / "mail-positions.json").read_text())
    assert saved["mailboxes"][f"alerts@127.0.0.1:{dovecot.port}/INBOX"]["last_uid"] == 5


async def test_a_new_uidvalidity_processes_only_mail_that_arrived_after_the_last_one_seen(
        start: Build, dovecot: Dovecot) -> None:
    service = await start(dovecot)
    for n in (1, 2, 3):
        await append(dovecot, numbered(n))
    await until(lambda: len(events(service)) == 3, what="mails 1-3")
    old_validity = dovecot.status()[b"UIDVALIDITY"]
    await service.stop()

    await asyncio.to_thread(dovecot.expunge, [1, 2])
    await asyncio.to_thread(dovecot.stop)
    dovecot.rebuild()  # mail 3 becomes UID 1 under a new UIDVALIDITY
    await asyncio.to_thread(dovecot.start)
    await asyncio.sleep(1.1)  # INTERNALDATE has whole seconds: arrive clearly after mail 3
    new = await append(dovecot, numbered(4))  # UID 2: below the old last UID (3)
    restored = await append(dovecot, numbered(0, "[911] old-{n}: from the archive"), when=datetime(2026, 1, 2))
    status = dovecot.status()
    assert (new, restored, status[b"MESSAGES"]) == (2, 3, 3) and status[b"UIDVALIDITY"] != old_validity

    service = await start(dovecot)
    await until(lambda: len(events(service)) == 4, what="mail 4")
    await append(dovecot, numbered(5))
    await until(lambda: len(events(service)) == 5, what="mail 5 under the new numbering")
    await asyncio.sleep(0.3)
    assert message_ids(service) == [f"<n{n}@monitor.example.com>" for n in (1, 2, 3, 4, 5)]
    position = mail_source(service).positions[mail_source(service).mailbox_key("INBOX")]
    assert (position.uidvalidity, position.last_uid) == (status[b"UIDVALIDITY"], 4)


async def test_a_server_without_idle_is_polled(start: Build) -> None:
    with Dovecot(idle=False).start() as server:
        service = await start(server, poll_interval="200ms")
        await append(server, sample("mail-911"))
        took = await until(lambda: lamp(service) == RED, what="the polled mail")
        assert took < 1.0
        await service.stop()


async def test_idle_is_reissued_and_still_sees_new_mail(start: Build, dovecot: Dovecot) -> None:
    service = await start(dovecot, idle_refresh="300ms")
    await asyncio.sleep(1.0)  # three refreshes
    await append(dovecot, sample("mail-912"))
    assert await until(lambda: events(service), what="the mail after the refreshes") < 1.0
    assert mail_source(service).health.connected


@pytest.mark.parametrize("mode", ["starttls", "implicit"])
async def test_tls_starttls_and_implicit(start: Build, mode: str) -> None:
    with Dovecot(tls=True).start() as server:
        port = server.port if mode == "starttls" else server.tls_port
        service = await start(server, tls=mode, port=port, ca_file=server.certificate)
        await append(server, sample("mail-911"))
        await until(lambda: lamp(service) == RED, what="the mail over TLS")
        await service.stop()


async def test_an_untrusted_certificate_or_a_wrong_password_shows_in_the_health(service_factory: Callable[..., Service],
                                                                             tmp_path: Path) -> None:
    with Dovecot(tls=True).start() as server:
        untrusted = config(server, tmp_path / "a.json", tls="starttls")
        wrong = config(server, tmp_path / "b.json", password="wrong").replace("name: mail", "name: mail2")
        service = service_factory(untrusted + wrong.split("sources:\n", 1)[1])
        async with service.running():
            health = {name: source.health for name, source in service.sources.items()}
            await until(lambda: not health["mail"].connected and not health["mail2"].connected, what="both errors")
            assert "CERTIFICATE_VERIFY_FAILED" in health["mail"].error
            assert health["mail2"].error.startswith("INBOX: LoginError")


async def test_handled_mail_is_marked_seen_and_moved_and_rejected_mail_is_left_for_a_person(start: Build,
                                                                                          dovecot: Dovecot) -> None:
    dovecot.create_folder("Handled")
    service = await start(dovecot, mark_seen="true", move_to="Handled")
    await append(dovecot, sample("mail-911-spoofed"))
    await append(dovecot, sample("mail-911"))
    await until(lambda: dovecot.status("Handled")[b"MESSAGES"] == 1, what="the move")
    assert [(e.level, e.outcome) for e in events(service)] == [("911", "rejected"), ("911", "shown")]
    [flags] = dovecot.flags("Handled").values()
    assert b"\\Seen" in flags
    assert dovecot.status("INBOX")[b"MESSAGES"] == 1 and dovecot.status("INBOX")[b"UNSEEN"] == 1  # the spoofed one


async def test_several_folders_are_watched_at_once(start: Build, dovecot: Dovecot) -> None:
    dovecot.create_folder("Alerts")
    service = await start(dovecot, folders="[INBOX, Alerts]")
    await append(dovecot, sample("mail-912"), folder="Alerts")
    await append(dovecot, sample("mail-911"))
    await until(lambda: len(events(service)) == 2, what="a mail from each folder")
    assert sorted(e.labels["folder"] for e in events(service)) == ["Alerts", "INBOX"]
    assert set(mail_source(service).positions) == {f"alerts@127.0.0.1:{dovecot.port}/{f}" for f in ("INBOX", "Alerts")}


def test_through_a_real_daemon_red_within_a_second_and_a_restart_repeats_nothing(
        daemon: Callable[..., Daemon], tmp_path: Path) -> None:
    with Dovecot().start() as server:
        body = "levels: {'911': {hold: 5m}, '912': {hold: 5m}}\n" + config(server, tmp_path / "positions.json")
        first = daemon(body, name="lamplighter")
        with first.client() as client:
            wait_for(lambda: (tmp_path / "positions.json").exists())  # the first look at INBOX is done
            started = time.monotonic()
            server.append(sample("mail-911"))
            wait_for(lambda: desk(client)["state"]["color"] == "#ff0000")
            red_after = time.monotonic() - started
            server.append(sample("mail-911-spoofed"))
            server.append(sample("mail-912"))
            wait_for(lambda: len(mail_events(client)) == 2)
            [spoofed] = mail_events(client, outcome_is_rejected=True)
        assert spoofed["labels"]["message_id"] == "<fake-0001@random-sender.example.net>"
        assert spoofed["reasons"][0].startswith("not authenticated: dkim=none, dmarc=fail per mx.example.com")
        assert red_after < 1.0
        assert first.stop() == 0

        resolved = variant(sample("mail-911"), subject="[911] RESOLVED payments-api: error rate 0.4%",
                           message_id="<resolved-1@monitor.example.com>")
        server.append(resolved)  # while Lamplighter is down
        second = daemon(body, name="lamplighter")
        with second.client() as client:
            wait_for(lambda: len(mail_events(client)) == 3)
            wait_for(lambda: desk(client)["state"]["color"] == "#ffd000")  # the 911 ended; the 912 shows
            time.sleep(0.5)
            found = mail_events(client)
        assert [(e["level"], e["status"], e["outcome"]) for e in found] == [
            ("911", "firing", "shown"), ("912", "firing", "shown"), ("911", "resolved", "resolved")]
        assert "<fake-0001@random-sender.example.net>" not in {e["labels"]["message_id"] for e in found}
        assert "not authenticated: dkim=none, dmarc=fail per mx.example.com" in first.log_path.read_text()


def desk(client: httpx.Client) -> dict[str, Any]:
    [view] = [lamp for lamp in client.get("/api/lamps").json() if lamp["name"] == "desk"]
    return dict(view)


def mail_events(client: httpx.Client, outcome_is_rejected: bool = False) -> list[dict[str, Any]]:
    """The mail events the rules let through (or, asked for, the rejected ones), oldest first."""
    return [e for e in reversed(client.get("/api/events").json())
            if e["source"] == "mail" and (e["outcome"] == "rejected") == outcome_is_rejected]


def wait_for(check: Callable[[], Any], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)
