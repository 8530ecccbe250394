"""Property: any mail, well formed or not, is parsed without an exception, matched against the rules, and
answered over SMTP with a deliberate reply (never a 500 with an exception's text); a mail answered
"Stored as event N" is in the journal.

Mails are built from hostile parts: any header text, encoded words, every content type and
transfer encoding, multiparts and forwarded messages nested a few levels (deep nesting is
tests/test_hostile_mail.py's), or plain random bytes.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from lamplighter.errors import EventError
from lamplighter.sources import build_sources
from lamplighter.sources.mail.authentication import Evidence
from lamplighter.sources.mail.message import parse_mail
from lamplighter.sources.mail.smtp import SmtpSource
from tests.conftest import FakeClock
from tests.daemon import free_port
from tests.fuzzing import AUTH, TRIED, Daemon, budget, daemon_in_thread
from tests.mail_signing import RULES

RECIPIENT = "lamp@lamplighter.test"
LINE = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\r\n"), max_size=60)
SUBJECTS = st.sampled_from(["[911] shop: down", "[912] disk full", "RESOLVED [911] shop",
                            "=?utf-8?b?WzkxMV0gw6k=?=", "=?bogus?q?x?=", ""]) | LINE
ADDRESSES = st.sampled_from(["alerts@monitor.example.com", "Eve <eve@evil.example>", "a@b, c@d", "<>", "@", ""]) | LINE
TYPES = st.sampled_from(["text/plain", "text/html", "text/plain; charset=utf-16", "text/plain; charset=bogus",
                         "application/octet-stream", "multipart/mixed", "multipart/alternative", "message/rfc822"])
ENCODINGS = st.sampled_from(["", "base64", "quoted-printable", "8bit", "x-uuencode", "7bit"])
BODIES = st.text(st.characters(exclude_categories=("Cs",)), max_size=200) | st.just("<p>down<br>now</p>")


@st.composite
def mails(draw: st.DrawFn, depth: int = 0) -> bytes:
    kind = draw(TYPES if depth < 3 else st.sampled_from(["text/plain", "text/html"]))
    date = draw(st.sampled_from(["Tue, 24 Nov 2026 21:00:00 +0000", ""]) | LINE)
    head = [f"Subject: {draw(SUBJECTS)}", f"From: {draw(ADDRESSES)}", f"To: {RECIPIENT}",
            f"Message-ID: <{draw(LINE)}@x>", f"Date: {date}"]
    encoding = draw(ENCODINGS)
    if kind.startswith("multipart/"):
        boundary = f"b{depth}"
        parts = draw(st.lists(mails(depth + 1), max_size=3))
        body = b"".join(b"--" + boundary.encode() + b"\r\n" + part + b"\r\n" for part in parts)
        body += draw(st.sampled_from([b"--" + boundary.encode() + b"--\r\n", b""]))
        kind += f'; boundary="{boundary}"'
    elif kind == "message/rfc822":
        body = draw(mails(depth + 1))
    else:
        body = draw(BODIES).encode("utf-8", "surrogateescape")
    head += [f"Content-Type: {kind}"] + ([f"Content-Transfer-Encoding: {encoding}"] if encoding else [])
    return "\r\n".join(head).encode() + b"\r\n\r\n" + body


RAW = mails() | st.binary(max_size=400)
FORWARDED_TWICE = (b"Subject: [911] fw\r\nFrom: a@b\r\nContent-Type: message/rfc822\r\n\r\n"
                   b"From: a@b\r\nContent-Type: message/rfc822\r\n\r\n"
                   b"From: 0@\r\nSubject: s\r\n\r\nbody\r\n")  # was SMTP 500 "(IndexError) string index ..."


def source() -> SmtpSource:
    rules = [{"match": {"subject": {"words": "RESOLVED"}}, "status": "resolved"},
             {"match": {"subject": r"\[911\]\s*(?:(?P<service>[\w.-]+):)?"}, "level": "911", "key": "{service}"},
             {"match": {"body": "(?i)down"}, "level": "912"}]
    entry = {"type": "smtp", "name": "mail", "listen": "127.0.0.1:2525", "recipients": [RECIPIENT],
             "require": "client", "clients": ["127.0.0.0/8"], "rules": rules}
    built = build_sources([entry], FakeClock())["mail"]
    assert isinstance(built, SmtpSource)
    return built


def test_any_mail_parses_and_meets_the_rules() -> None:
    mail_source = source()

    @budget(200)
    @given(raw=RAW)
    @example(raw=FORWARDED_TWICE)
    def check(raw: bytes) -> None:
        TRIED["mail: parsing and rules"] += 1
        mail = parse_mail(raw, (RECIPIENT,))
        found = mail_source.find_rule(mail)
        with contextlib.suppress(EventError):  # names the field
            mail_source.decide(mail, found, Evidence(trusted_client=True), {})

    check()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    config = (f"lamps: {{desk: virtual://desk}}\nsources:\n  - type: smtp\n    name: mail\n"
              f"    listen: 127.0.0.1:{free_port()}\n    recipients: [{RECIPIENT}]\n    clients: [127.0.0.0/8]\n"
              f"    require: [client]\n{RULES}")
    with daemon_in_thread(Path(tmp_path_factory.mktemp("fuzz-mail")), config) as running:
        yield running


def test_any_mail_over_smtp_gets_a_deliberate_reply_and_a_stored_one_is_kept(daemon: Daemon) -> None:
    port = daemon.service.sources["mail"].smtp.port  # type: ignore[attr-defined]
    stored: list[int] = []
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:

        @budget(60)
        @given(raw=RAW)
        @example(raw=FORWARDED_TWICE)
        def check(raw: bytes) -> None:
            TRIED["mail: over SMTP"] += 1
            client.rset()
            client.mail("bounce@monitor.example.com")
            client.rcpt(RECIPIENT)
            code, text = client.data(raw if raw.endswith(b"\r\n") else raw + b"\r\n")
            reply = text.decode()
            assert code in (250, 550, 552), reply
            if found := re.search(r"Stored as event (\d+)", reply):
                stored.append(int(found.group(1)))

        client.ehlo("monitor.example.com")
        check()
    with daemon.client() as http:
        journal = {e["id"] for e in http.get("/api/events", params={"limit": 5000}, headers=AUTH).json()}
    assert set(stored) <= journal
    assert not daemon.tracebacks
