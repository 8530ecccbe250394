"""Hostile mail (issue 12, item 2): deeply nested forwarded messages, to the real SMTP receiver.

A 25 KB mail of 500 nested message/rfc822 parts used to keep the daemon busy for over
eleven minutes; now it is refused with 554 at once, and the event loop never stalls.
"""

from __future__ import annotations

import asyncio
import time

from lamplighter.sources.mail.message import MAX_MIME_PARTS, parse_mail
from tests.mail_signing import SigningKey, sample
from tests.test_mail_smtp import Start, certificate, key, receiver  # noqa: F401 -- fixtures

FORWARD = b"Content-Type: message/rfc822\r\n\r\nSubject: fw\r\n"


def nested(levels: int) -> bytes:
    return (b"From: alerts@monitor.example.com\r\nTo: lamp@lamplighter.test\r\nSubject: [911] hi\r\n"
            b"Content-Type: message/rfc822\r\n\r\n" + FORWARD * levels)


class LoopWatch:
    """The longest the event loop went without running a 10 ms ticker."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            self.longest = max(self.longest, now - last)
            last = now

    async def __aenter__(self) -> LoopWatch:
        self._task = asyncio.create_task(self._tick())
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def test_a_mail_of_500_nested_forwards_is_refused_with_554_at_once(receiver: Start,  # noqa: F811
                                                                         key: SigningKey) -> None:  # noqa: F811
    mail = await receiver()
    async with LoopWatch() as watch:
        began = time.perf_counter()
        code, text = await mail.send(nested(500))
        took = time.perf_counter() - began
    assert code == 554 and "MIME parts" in text, text
    assert took < 2.0 and watch.longest < 0.5, (took, watch.longest)
    assert mail.source.health.refused == 1 and "MIME parts" in mail.source.health.last_refusal
    code, _ = await mail.send(key.sign(sample("mail-911")))  # the receiver goes on
    assert code == 250 and len(mail.events()) == 1
    print(f"\n500 nested forwards refused in {took * 1000:.0f} ms; longest loop stall {watch.longest * 1000:.0f} ms")


async def test_a_mail_nested_just_under_the_limit_is_read_quickly_off_the_loop(receiver: Start) -> None:  # noqa: F811
    mail = await receiver()
    async with LoopWatch() as watch:
        began = time.perf_counter()
        code, text = await mail.send(nested(MAX_MIME_PARTS - 2))  # was 20 s and more at 100 levels
        took = time.perf_counter() - began
    assert code == 550 and "Rejected" in text  # read, then refused for what it is: unsigned
    assert took < 2.0 and watch.longest < 0.5, (took, watch.longest)
    print(f"\n{MAX_MIME_PARTS - 2} nested forwards read in {took * 1000:.0f} ms")


def test_the_parser_imap_shares_reads_only_the_headers_of_a_mail_over_the_limit() -> None:
    began = time.perf_counter()
    mail = parse_mail(nested(5000))
    assert time.perf_counter() - began < 1.0
    assert mail.subject == "[911] hi" and mail.from_address == "alerts@monitor.example.com"
    assert "5001 MIME parts" in mail.body and "not read" in mail.body
