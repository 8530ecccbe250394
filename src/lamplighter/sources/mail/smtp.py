"""`type: smtp`: an SMTP receiver (aiosmtpd) that monitoring tools send their alert mail to.

    sources:
      - type: smtp
        listen: 0.0.0.0:2525
        recipients: [lamp@lamplighter.lan]      # anything else: 550 at RCPT
        users: {grafana: ${SMTP_PASSWORD}}       # optional AUTH (PLAIN, LOGIN); needs STARTTLS unless
        tls_cert: /etc/lamplighter/smtp.pem      #   auth_require_tls: false
        tls_key: /etc/lamplighter/smtp.key
        require: dkim|auth                       # verify DKIM here, or a logged-in client
        senders: [alerts@monitor.example.com]
        rules: [...]                             # see rules.py

The server runs on the service's event loop, so a mail's event is submitted and stored
before the client hears `250`. Answers: `250` stored (or no rule matched: nothing to
show); `550 5.7.1` not believed, with the reason; `451` the store failed, try again later;
`552` over `max_size`; `554 5.6.0` too complex to read (more MIME parts than parse_mail reads,
or not read within MAIL_READ_SECONDS: mail is parsed in a worker thread, never on the loop).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import ssl
from ipaddress import IPv4Network, IPv6Network, ip_address
from pathlib import Path
from typing import Any, ClassVar

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from pydantic import Field, SecretStr, field_validator, model_validator

from lamplighter.backoff import Backoff
from lamplighter.config import ListenAddress, ListensOn
from lamplighter.errors import PayloadError, StoreError
from lamplighter.model import Clock
from lamplighter.sources.base import SourceSettings, Submit
from lamplighter.sources.mail.authentication import (
    DnsLookup,
    Evidence,
    dns_txt,
    pinned_lookup,
    sender_allowed,
    verify_dkim,
)
from lamplighter.sources.mail.message import Mail, parse_mail, structure_problem
from lamplighter.sources.mail.rules import Requirement, RuleMatch, Senders
from lamplighter.sources.mail.source import MailSettings, MailSource, default_requirement

log = logging.getLogger(__name__)

_SIZE = re.compile(r"(\d+)\s*([kmg]i?b?|b)?", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
MAX_REPLY = 400
MAIL_READ_SECONDS = 5.0


def parse_size(value: Any) -> int:
    """Bytes for `1048576`, `512KB`, `10MB`."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _SIZE.fullmatch(str(value).strip())
    if not match:
        raise ValueError(f"not a size: {value!r} (use e.g. 10MB)")
    return int(match.group(1)) * _SIZE_UNITS[(match.group(2) or "")[:1].lower()]


class SmtpSettings(MailSettings, ListensOn):
    """The keys of an `smtp` source."""

    SUPPORTED = ("dkim", "auth", "client", "none")

    listen: ListenAddress = "127.0.0.1:2525"
    hostname: str = "lamplighter"  # the name in the greeting
    recipients: Senders  # accepted RCPT TO addresses, or @domains
    require: Requirement = default_requirement("dkim", "auth")
    users: dict[str, SecretStr] = Field(default_factory=dict)  # AUTH PLAIN/LOGIN
    auth_require_tls: bool = True
    tls_cert: Path | None = None  # with tls_key: offer STARTTLS
    tls_key: Path | None = None
    require_tls: bool = False  # refuse MAIL before STARTTLS
    max_size: int = Field(default=1_048_576, ge=1024)
    clients: list[IPv4Network | IPv6Network] = Field(default_factory=list)  # networks that pass `require: client`
    dkim_keys: dict[str, str] = Field(default_factory=dict)  # pinned TXT records by name: sel._domainkey.DOMAIN
    dkim_dns: bool = True  # look up keys not pinned above in DNS

    @field_validator("recipients")
    @classmethod
    def _some_recipient(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("list at least one address (lamp@example.com) or domain (@example.com)")
        return value

    @field_validator("max_size", mode="before")
    @classmethod
    def _size(cls, value: Any) -> int:
        return parse_size(value)

    @model_validator(mode="after")
    def _usable(self) -> SmtpSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key: give both, or neither")
        for place, path in (("tls_cert", self.tls_cert), ("tls_key", self.tls_key)):
            if path is not None and not path.is_file():
                raise ValueError(f"{place}: no such file {str(path)!r}")
        if self.require_tls and self.tls_cert is None:
            raise ValueError("require_tls: needs tls_cert and tls_key")
        if self.users and self.auth_require_tls and self.tls_cert is None:
            raise ValueError("users: AUTH is offered only after STARTTLS: give tls_cert and tls_key"
                             " (or auth_require_tls: false on a network you trust)")
        unusable = {"auth"} if not self.users else set()
        unusable |= {"client"} if not self.clients else set()
        for place, wanted in [("require", self.require), *((f"rules.{i}.require", r.require)
                                                             for i, r in enumerate(self.rules) if r.require)]:
            if wanted and wanted <= unusable:
                raise ValueError(f"{place}: {'|'.join(sorted(wanted))} can never pass without users: or clients:")
        return self



class SmtpSource(MailSource):
    """Alert mail received over SMTP."""

    source_type = "smtp"
    Settings: ClassVar[type[SourceSettings]] = SmtpSettings

    def __init__(self, name: str, settings: SourceSettings, clock: Clock) -> None:
        super().__init__(name, settings, clock)
        assert isinstance(settings, SmtpSettings)
        self.smtp = settings
        self.dns_lookup: DnsLookup | None = dns_txt if settings.dkim_dns else None  # tests inject their own

    async def run(self, submit: Submit) -> None:
        try:
            context = self._tls_context()
        except (OSError, ssl.SSLError) as exc:
            log.error("source %s cannot load its TLS certificate: %s", self.name, exc)
            self.mark_disconnected(f"cannot load tls_cert/tls_key: {exc}")
            return
        loop = asyncio.get_running_loop()
        backoff = Backoff()
        while True:
            try:
                server = await loop.create_server(lambda: self._protocol(loop, submit, context),
                                                  self.smtp.host, self.smtp.port)
            except OSError as exc:
                reason = os.strerror(exc.errno) if exc.errno else str(exc)
                self.mark_disconnected(f"cannot listen on {self.smtp.listen}: {reason}")
                await asyncio.sleep(backoff.next())
                continue
            self.mark_connected()
            log.info("source %s: receiving mail on %s", self.name, self.smtp.listen)
            async with server:
                await server.serve_forever()

    def _tls_context(self) -> ssl.SSLContext | None:
        if self.smtp.tls_cert is None or self.smtp.tls_key is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.smtp.tls_cert, self.smtp.tls_key)
        return context

    def _protocol(self, loop: asyncio.AbstractEventLoop, submit: Submit, context: ssl.SSLContext | None) -> SMTP:
        settings = self.smtp
        return SMTP(
            _Handler(self, submit), loop=loop, hostname=settings.hostname, ident="Lamplighter",
            data_size_limit=settings.max_size, enable_SMTPUTF8=True, tls_context=context,
            require_starttls=settings.require_tls, auth_require_tls=settings.auth_require_tls,
            authenticator=self._authenticate if settings.users else None,
            auth_exclude_mechanism=() if settings.users else ("LOGIN", "PLAIN"),
        )

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                      auth_data: Any) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user = auth_data.login.decode("utf-8", "replace")
        secret = self.smtp.users.get(user)
        good = secret is not None and secrets.compare_digest(auth_data.password, secret.get_secret_value().encode())
        if not good:
            log.warning("source %s: failed AUTH as %r from %s", self.name, user, _peer_ip(session))
        return AuthResult(success=good, handled=False, auth_data=user if good else None)

    def accepts_recipient(self, address: str) -> bool:
        return sender_allowed(address.strip().lower(), self.smtp.recipients)

    async def receive(self, raw: bytes, recipients: list[str], session: Session, submit: Submit) -> str:
        """Handle one mail's DATA; the reply is sent only after the event is stored."""
        problem = structure_problem(raw)
        if problem is not None:
            self.refuse("a mail", PayloadError(problem))
            return _reply(f"554 5.6.0 Refused: {problem}")
        try:
            async with asyncio.timeout(MAIL_READ_SECONDS):
                mail = await asyncio.to_thread(parse_mail, raw, tuple(recipients))
        except TimeoutError:
            self.refuse("a mail", PayloadError(f"not read within {MAIL_READ_SECONDS:.0f} s"))
            return _reply(f"554 5.6.0 Refused: the mail could not be read within {MAIL_READ_SECONDS:.0f} s")
        found = self.find_rule(mail)
        if found is None:
            log.info("source %s: no rule matches mail %s (%r): nothing to show", self.name, mail.message_id,
                     mail.subject)
            return "250 2.0.0 Accepted: no rule matches this mail, nothing to show"
        evidence = await self._evidence(mail, found, session)
        decision = self.decide(mail, found, evidence, {"smtp_client": _peer_ip(session)})
        try:
            receipt = self.deliver(decision, submit)
        except StoreError as exc:
            log.error("source %s: mail %s not stored: %s", self.name, mail.message_id, exc)
            return "451 4.3.0 Not stored, try again later"
        if not decision.submit:
            return _reply(f"550 5.7.1 Rejected: {decision.rejection}")
        assert receipt is not None
        return _reply(f"250 2.0.0 Stored as event {receipt.id}: {receipt.outcome.value}")

    async def _evidence(self, mail: Mail, found: RuleMatch, session: Session) -> Evidence:
        wanted = self.mail_settings.requirement(found.rule)
        checked = Evidence()
        if "dkim" in wanted:
            lookup = pinned_lookup(self.smtp.dkim_keys, self.dns_lookup)
            checked = await asyncio.to_thread(verify_dkim, mail.raw, lookup)
        user = session.auth_data if session.authenticated and isinstance(session.auth_data, str) else None
        client = _in_networks(_peer_ip(session), self.smtp.clients)
        seen = [checked.seen if "dkim" in wanted else "",
                f"AUTH as {user}" if user else ("no AUTH" if "auth" in wanted else ""),
                ("client allowed" if client else "client not in clients") if "client" in wanted else ""]
        return Evidence(dkim_domains=checked.dkim_domains, smtp_user=user, trusted_client=client,
                        seen=", ".join(s for s in seen if s))


class _Handler:
    """aiosmtpd's hooks, on the event loop thread."""

    def __init__(self, source: SmtpSource, submit: Submit) -> None:
        self.source = source
        self.submit = submit

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if not self.source.accepts_recipient(address):
            return _reply(f"550 5.1.1 <{address}>: no such recipient here")
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        try:
            return await self.source.receive(raw, envelope.rcpt_tos, session, self.submit)
        except Exception as exc:  # counted and logged; the client hears no exception text
            self.source.refuse("a mail", exc)
            return "451 4.3.0 Not handled because of a problem in Lamplighter, try again later"


def _reply(text: str) -> str:
    """One printable ASCII line: SMTP replies cannot carry line breaks, and the reason may quote anything."""
    flat = " ".join(text.split())
    return flat.encode("ascii", "replace").decode("ascii")[:MAX_REPLY]


def _peer_ip(session: Session) -> str:
    peer = session.peer
    return str(peer[0]) if isinstance(peer, tuple) and peer else str(peer or "")


def _in_networks(address: str, networks: list[IPv4Network | IPv6Network]) -> bool:
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)
