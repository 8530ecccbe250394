"""The SMTP receiver with Python's smtplib as the client: DKIM-signed and unsigned mail, AUTH, STARTTLS, limits."""

from __future__ import annotations

import asyncio
import smtplib
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lamplighter.drivers.virtual import VirtualDriver
from lamplighter.model import LampState, StoredEvent
from lamplighter.service import Service
from lamplighter.sources.mail.smtp import SmtpSource, parse_size
from tests.daemon import Daemon, free_port
from tests.mail_signing import RULES, SigningKey, make_key, sample, variant
from tests.peers.tls import self_signed

RED = LampState(on=True, color="#ff0000")
RECIPIENT = "lamp@lamplighter.test"


def config(**settings: Any) -> str:
    fields = {"listen": f"127.0.0.1:{free_port()}", "recipients": f"[{RECIPIENT}]",
              "senders": "[alerts@monitor.example.com]", **settings}
    lines = "".join(f"    {key}: {value}\n" for key, value in fields.items())
    return ("guards: {rate_limit: {per_sender: null, per_source: null}}\n"
            f"sources:\n  - type: smtp\n    name: mail\n{lines}{RULES}")


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> SigningKey:
    return make_key(tmp_path_factory.mktemp("dkim"))


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("tls"))


@dataclass
class Receiver:
    service: Service
    source: SmtpSource
    certificate: Path

    def events(self) -> list[StoredEvent]:
        """The events the rules let through, oldest first (rejected mail is recorded apart)."""
        return [e for e in self.all_events() if e.outcome != "rejected"]

    def all_events(self) -> list[StoredEvent]:
        return list(reversed(self.service.store.recent_events(100)))

    def lamp(self) -> LampState:
        driver = self.service.lamps["desk"].driver
        assert isinstance(driver, VirtualDriver)
        return driver.state

    async def send(self, raw: bytes, **options: Any) -> tuple[int, str]:
        """Deliver one mail with smtplib in a thread (the server runs on this event loop)."""
        return await asyncio.to_thread(send, self.source.smtp.port, raw, certificate=self.certificate, **options)


def send(port: int, raw: bytes, *, rcpt: str = RECIPIENT, login: tuple[str, str] | None = None,
         starttls: bool = False, certificate: Path | None = None) -> tuple[int, str]:
    """(code, text) of the answer to DATA, as a monitoring tool's mailer sees it."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("monitor.example.com")
        if starttls:
            client.starttls(context=ssl.create_default_context(cafile=str(certificate)))
            client.ehlo("monitor.example.com")
        if login:
            client.login(*login)
        for step in (lambda: client.mail("bounce@monitor.example.com"), lambda: client.rcpt(rcpt),
                     lambda: client.data(raw)):
            code, text = step()
            if code != 250:
                break
        return code, text.decode()


Start = Callable[..., Awaitable[Receiver]]


@pytest.fixture
async def receiver(service_factory: Callable[..., Service], key: SigningKey,
                   certificate: tuple[Path, Path]) -> AsyncIterator[Start]:
    started: list[Service] = []

    async def start(**settings: Any) -> Receiver:
        service = service_factory(config(**settings))
        source = service.sources["mail"]
        assert isinstance(source, SmtpSource)
        source.dns_lookup = key.lookup  # no network here: DNS answers with the test key
        await service.start()
        started.append(service)
        await until(lambda: listening(source.smtp.port))
        return Receiver(service, source, certificate[0])

    yield start
    for service in started:
        await service.stop()


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


async def until(check: Callable[[], Any], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


async def test_a_dkim_signed_911_is_stored_before_the_250_and_turns_the_lamp_red(receiver: Start,
                                                                                 key: SigningKey) -> None:
    mail = await receiver()
    code, text = await mail.send(key.sign(sample("mail-911")))
    [event] = mail.events()  # already stored when the client hears 250
    assert (code, text) == (250, f"2.0.0 Stored as event {event.id}: shown")
    assert (event.level, event.title, event.key, event.source) == (
        "911", "payments-api: error rate 34% for 5 minutes", "payments-api", "mail")
    assert event.labels["smtp_client"] == "127.0.0.1"
    await until(lambda: mail.lamp() == RED)

    resolved = key.sign(variant(sample("mail-911"), subject="[911] RESOLVED payments-api: error rate 0.4%"))
    code, text = await mail.send(resolved)
    assert (code, text) == (250, f"2.0.0 Stored as event {event.id + 1}: resolved")


async def test_unsigned_spoofed_and_tampered_mail_is_refused_and_never_reaches_911(receiver: Start,
                                                                                   key: SigningKey) -> None:
    mail = await receiver()
    unsigned = await mail.send(sample("mail-911"))
    assert unsigned == (550, "5.7.1 Rejected: not authenticated: dkim=none (no signature), no AUTH"
                             " (required: auth|dkim)")
    spoofed = await mail.send(sample("mail-911-spoofed"))
    assert spoofed[0] == 550
    tampered = key.sign(sample("mail-912")).replace(b"[912] batch-worker", b"[911] batch-worker")
    assert await mail.send(tampered) == (550, "5.7.1 Rejected: not authenticated: dkim=fail d=monitor.example.com,"
                                              " no AUTH (required: auth|dkim)")
    other = await mail.send(key.sign(variant(sample("mail-911"), subject="[911] x").replace(
        b"alerts@monitor.example.com>", b"ceo@monitor.example.com>")))
    assert other == (550, "5.7.1 Rejected: ceo@monitor.example.com is not on the senders allow-list")
    assert mail.events() == [] and mail.lamp() != RED
    rejected = mail.all_events()
    assert len(rejected) == 4 and all(e.outcome == "rejected" for e in rejected)  # visible in /api/events
    assert rejected[-1].reasons == ("ceo@monitor.example.com is not on the senders allow-list",)


async def test_unknown_recipients_are_refused_at_rcpt(receiver: Start, key: SigningKey) -> None:
    mail = await receiver()
    assert await mail.send(key.sign(sample("mail-911")), rcpt="postmaster@lamplighter.test") == (
        550, "5.1.1 <postmaster@lamplighter.test>: no such recipient here")
    assert await mail.send(key.sign(sample("mail-911")), rcpt=RECIPIENT.upper()) == (
        250, "2.0.0 Stored as event 1: shown")


async def test_mail_no_rule_matches_is_accepted_and_shows_nothing(receiver: Start, key: SigningKey) -> None:
    mail = await receiver()
    newsletter = key.sign(variant(sample("mail-912"), subject="Weekly report"))
    assert await mail.send(newsletter) == (250, "2.0.0 Accepted: no rule matches this mail, nothing to show")
    assert mail.events() == []


async def test_auth_after_starttls_lets_unsigned_mail_in(receiver: Start, certificate: tuple[Path, Path]) -> None:
    cert, private = certificate
    mail = await receiver(users="{grafana: s3cret}", tls_cert=cert, tls_key=private, require="auth")
    unsigned = sample("mail-911")
    assert await mail.send(unsigned, starttls=True, login=("grafana", "s3cret")) == (
        250, "2.0.0 Stored as event 1: shown")
    with pytest.raises(smtplib.SMTPAuthenticationError):
        await mail.send(unsigned, starttls=True, login=("grafana", "guess"))
    with pytest.raises(smtplib.SMTPNotSupportedError):  # no AUTH offered before STARTTLS
        await mail.send(unsigned, login=("grafana", "s3cret"))
    assert (await mail.send(unsigned, starttls=True))[0] == 550
    assert len(mail.events()) == 1


async def test_require_tls_refuses_mail_before_starttls(receiver: Start, key: SigningKey,
                                                        certificate: tuple[Path, Path]) -> None:
    cert, private = certificate
    mail = await receiver(tls_cert=cert, tls_key=private, require_tls="true")
    assert await mail.send(key.sign(sample("mail-911"))) == (530, "Must issue a STARTTLS command first")
    assert (await mail.send(key.sign(sample("mail-911")), starttls=True))[0] == 250


async def test_an_allowed_client_network_lets_unsigned_mail_in(receiver: Start) -> None:
    mail = await receiver(clients="[127.0.0.0/8]", require="client")
    assert (await mail.send(sample("mail-912")))[0] == 250
    refused = await receiver(clients="[10.0.0.0/8]", require="client")
    assert await refused.send(sample("mail-912")) == (
        550, "5.7.1 Rejected: not authenticated: client not in clients (required: client)")


async def test_pinned_dkim_keys_need_no_dns(receiver: Start, key: SigningKey) -> None:
    mail = await receiver(dkim_keys=f"{{'{key.dns_name}': '{key.record}'}}", dkim_dns="false")
    mail.source.dns_lookup = None
    assert (await mail.send(key.sign(sample("mail-911"))))[0] == 250


async def test_oversized_mail_gets_552(receiver: Start, key: SigningKey) -> None:
    mail = await receiver(max_size="2KB")
    big = key.sign(sample("mail-911").replace(b"Runbook", (b"x" * 70 + b"\r\n") * 40 + b"Runbook"))
    assert await mail.send(big) == (552, "Error: Too much mail data")
    assert mail.events() == []
    assert parse_size("10MB") == 10 * 1024 * 1024 and parse_size(4096) == 4096


async def test_a_store_that_cannot_write_answers_451_so_the_sender_retries(receiver: Start, key: SigningKey) -> None:
    mail = await receiver()
    mail.service.store.close()
    assert await mail.send(key.sign(sample("mail-911"))) == (451, "4.3.0 Not stored, try again later")


async def test_korean_utf8_mail_over_smtputf8(receiver: Start, key: SigningKey) -> None:
    mail = await receiver()
    korean = key.sign(variant(sample("mail-912"), subject="[912] 배치-작업: 재시도 대기열 1000건 초과"))
    assert (await mail.send(korean))[0] == 250
    assert mail.events()[0].title == "배치-작업: 재시도 대기열 1000건 초과"


async def test_a_busy_port_shows_in_the_health_until_it_is_free(service_factory: Callable[..., Service]) -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    service = service_factory(config(listen=f"127.0.0.1:{port}"))
    async with service.running():
        source = service.sources["mail"]
        await until(lambda: not source.health.connected)
        assert source.health.error == f"cannot listen on 127.0.0.1:{port}: Address already in use"
        blocker.close()
        await until(lambda: source.health.connected and listening(port))


def test_through_a_real_daemon(daemon: Callable[..., Daemon], key: SigningKey) -> None:
    port = free_port()
    body = config(listen=f"127.0.0.1:{port}", dkim_keys=f"{{'{key.dns_name}': '{key.record}'}}", dkim_dns="false")
    running = daemon(body)
    deadline = time.monotonic() + 5
    while not listening(port):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    started = time.monotonic()
    assert send(port, key.sign(sample("mail-911")))[0] == 250
    with running.client() as client:
        while client.get("/api/lamps").json()[0]["state"]["color"] != "#ff0000":
            assert time.monotonic() - started < 1.0
            time.sleep(0.005)
        assert send(port, sample("mail-911-spoofed"))[0] == 550
        events = client.get("/api/events").json()
        [health] = client.get("/api/sources").json()
        # A rejected mail is recorded but does not count as the source being alive (a spoofer
        # must not be able to keep the dead-man's switch quiet).
        assert (health["connected"], health["last_event_at"]) == (True, events[1]["received_at"])
    assert [(e["level"], e["outcome"]) for e in events] == [("911", "rejected"), ("911", "shown")]
