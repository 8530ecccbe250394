"""`type: imap`: watch mail folders with IDLE and turn alert mail into events.

    sources:
      - type: imap
        host: imap.example.com            # TLS on 993 (tls: implicit), or tls: starttls on 143
        username: oncall@example.com
        password: ${IMAP_PASSWORD}        # an app password, from the environment
        folders: [INBOX]
        authserv_id: mx.example.com       # whose Authentication-Results to trust
        senders: [alerts@monitor.example.com]
        rules: [...]                      # see rules.py

One connection per folder, each in its own thread (imapclient is blocking): it catches up
on every mail above the saved UID, then waits in IDLE (re-issued every `idle_refresh`, well
before the 29 minutes servers allow) or, on a server without IDLE, polls. Each mail's
event is handed to the event loop thread, submitted, and only then is the position saved.
Any network or server failure closes the connection and reconnects with backoff.

Positions are `(UIDVALIDITY, last UID)` per folder: the first start begins at the newest
mail (nothing older is processed); a changed UIDVALIDITY (the server rebuilt the folder)
processes only mail that arrived after the last one seen, judged by INTERNALDATE and the
Date header, skipping Message-IDs already handled.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from ipaddress import ip_address
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError
from pydantic import Field, SecretStr, field_validator, model_validator

from lamplighter.backoff import Backoff
from lamplighter.config import PositiveDuration, default_state_dir
from lamplighter.errors import StoreError
from lamplighter.model import Clock
from lamplighter.sources.base import SourceSettings, Submit
from lamplighter.sources.mail.authentication import Evidence, evidence_from_headers
from lamplighter.sources.mail.message import parse_mail
from lamplighter.sources.mail.positions import Position, PositionFile
from lamplighter.sources.mail.rules import Requirement
from lamplighter.sources.mail.source import Decision, MailSettings, MailSource, default_requirement

log = logging.getLogger(__name__)

T = TypeVar("T")
IDLE_LIMIT = 29 * 60.0  # RFC 2177: servers may drop an IDLE older than 30 minutes
SLICE = 1.0  # how often a waiting thread looks whether it should stop
STOP_WAIT = 2.0
FETCH_BATCH = 25
WHOLE_MAIL = "BODY.PEEK[]<0.1048576>"  # the first MiB is plenty for subject and text; PEEK leaves it unseen
HEADERS = "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID DATE)]"
DATE_SLACK = 3600.0  # after a UIDVALIDITY change, a Date this much older than the checkpoint is old mail
KEEPALIVE = {"TCP_KEEPIDLE": 60, "TCP_KEEPINTVL": 15, "TCP_KEEPCNT": 4}  # a dead link shows within 2 minutes
NETWORK_ERRORS = (IMAPClientError, OSError, EOFError, ConnectionError, StoreError)


class ImapSettings(MailSettings):
    """The keys of an `imap` source."""

    SUPPORTED = ("dkim", "dmarc", "none")

    host: str
    port: int | None = Field(default=None, gt=0, lt=65536)
    tls: Literal["implicit", "starttls", "none"] = "implicit"
    ca_file: Path | None = None  # a CA (or the server's self-signed certificate) to trust besides the system's
    username: str
    password: SecretStr
    folders: list[str] = Field(default=["INBOX"], min_length=1)
    authserv_id: str | None = None  # the name your mail server writes first in Authentication-Results
    require: Requirement = default_requirement("dkim", "dmarc")
    idle: bool = True  # use IDLE when the server offers it; else poll
    idle_refresh: PositiveDuration = 600.0
    poll_interval: PositiveDuration = 15.0
    timeout: PositiveDuration = 30.0
    mark_seen: bool = False  # flag handled mail \\Seen
    move_to: str | None = None  # move handled mail to this folder
    state_file: Path | None = None  # where positions are saved; unset: positions.json in the source's state directory

    @field_validator("idle_refresh")
    @classmethod
    def _idle_limit(cls, value: float) -> float:
        if value >= IDLE_LIMIT:
            raise ValueError("must be under 29m: servers drop an IDLE after 30 minutes")
        return value

    @model_validator(mode="after")
    def _trust_needs_a_server(self) -> ImapSettings:
        wants = set(self.require).union(*(r.require or frozenset() for r in self.rules)) - {"none"}
        if wants and not self.authserv_id:
            raise ValueError("authserv_id: required to check dkim/dmarc: the name your own mail server writes"
                             " first in Authentication-Results (e.g. mx.example.com); or require: none")
        if self.move_to is not None and self.move_to in self.folders:
            raise ValueError("move_to: must not be one of the watched folders")
        if len(set(self.folders)) != len(self.folders):
            raise ValueError("folders: a folder is listed twice")
        return self

    @property
    def port_number(self) -> int:
        return self.port or (993 if self.tls == "implicit" else 143)


class ImapSource(MailSource):
    """Alert mail from IMAP folders."""

    source_type = "imap"
    Settings: ClassVar[type[SourceSettings]] = ImapSettings

    def __init__(self, name: str, settings: SourceSettings, clock: Clock) -> None:
        super().__init__(name, settings, clock)
        assert isinstance(settings, ImapSettings)
        self.imap = settings
        self.positions: dict[str, Position] = {}
        self._errors: dict[str, str] = {}
        self._watching: set[str] = set()

    @property
    def state_file(self) -> Path:
        """`state_file`, else positions.json in the directory the service gives this source."""
        if self.imap.state_file is not None:
            return self.imap.state_file
        return (self.state_dir or default_state_dir() / "sources" / self.name) / "positions.json"

    @property
    def _position_file(self) -> PositionFile:
        return PositionFile(self.state_file)

    def mailbox_key(self, folder: str) -> str:
        return f"{self.imap.username}@{self.imap.host}:{self.imap.port_number}/{folder}"

    async def run(self, submit: Submit) -> None:
        try:
            self.positions = self._position_file.load()
        except StoreError as exc:
            log.error("source %s cannot start: %s", self.name, exc)
            self.mark_disconnected(str(exc))
            return
        if self.imap.tls == "none" and not _is_loopback(self.imap.host):
            log.warning("source %s sends the IMAP password to %s unencrypted (tls: none)", self.name, self.imap.host)
        await asyncio.gather(*(self._watch(folder, submit) for folder in self.imap.folders))

    async def _watch(self, folder: str, submit: Submit) -> None:
        """Keep one folder's session running; reconnect with backoff after any failure."""
        backoff = Backoff()
        while True:
            session = FolderSession(self, folder, submit, asyncio.get_running_loop())
            try:
                await session.run()
            except NETWORK_ERRORS as exc:
                self.folder_failed(folder, _describe(exc))
            if session.connected_once:
                backoff.reset()
            await asyncio.sleep(backoff.next())

    # ---- called on the event loop thread by the sessions ------------------------------------------

    def folder_connected(self, folder: str) -> None:
        self._errors.pop(folder, None)
        self._watching.add(folder)
        if not self._errors and self._watching == set(self.imap.folders):
            self.mark_connected()

    def folder_failed(self, folder: str, error: str) -> None:
        self._errors[folder] = error
        self.mark_disconnected("; ".join(f"{name}: {text}" for name, text in sorted(self._errors.items())))

    def commit(self, decision: Decision, submit: Submit, key: str, uidvalidity: int, uid: int,
               internaldate: float, message_id: str) -> None:
        """Store the mail's event (if any), then move the folder's position past it."""
        self.deliver(decision, submit)
        position = self.positions[key]
        if position.uidvalidity == uidvalidity:
            self.set_position(key, position.handled(uid, internaldate, message_id))
        else:  # still recovering from a UIDVALIDITY change: remember the mail, keep the old position
            self.set_position(key, position.handled(0, internaldate, message_id))

    def set_position(self, key: str, position: Position) -> None:
        self.positions[key] = position
        self._position_file.save(self.positions)


class Stopping(Exception):
    """The session was told to stop."""


class FolderSession:
    """One connection watching one folder, run in its own thread."""

    def __init__(self, source: ImapSource, folder: str, submit: Submit, loop: asyncio.AbstractEventLoop) -> None:
        self.source = source
        self.settings = source.imap
        self.folder = folder
        self.key = source.mailbox_key(folder)
        self.submit = submit
        self.loop = loop
        self.client: IMAPClient | None = None
        self.connected_once = False
        self._stop = threading.Event()
        self._use_idle = False

    async def run(self) -> None:
        """Run the blocking session in a thread; on cancellation, stop it and wait for it to end."""
        done: asyncio.Future[None] = self.loop.create_future()
        # A thread that outlives the stop wait still ends its session: retrieve its outcome then,
        # so that asyncio does not report "exception was never retrieved" for a finished session.
        done.add_done_callback(lambda finished: finished.cancelled() or finished.exception())
        thread = threading.Thread(target=self._thread_main, args=(done,), daemon=True,
                                  name=f"imap {self.source.name} {self.folder}")
        thread.start()
        try:
            await asyncio.shield(done)
        except asyncio.CancelledError:
            self.stop()
            await asyncio.wait([done], timeout=STOP_WAIT)  # a thread stuck in connect() is left behind (daemon)
            raise

    def stop(self) -> None:
        """Ask the thread to end now: set the flag and cut the connection under any blocking read."""
        self._stop.set()
        client = self.client
        if client is not None:
            with contextlib.suppress(OSError, AttributeError):
                client.socket().shutdown(socket.SHUT_RDWR)

    def _thread_main(self, done: asyncio.Future[None]) -> None:
        error: BaseException | None = None
        try:
            self._session()
        except Stopping:
            pass
        except BaseException as exc:  # handed to the loop, where _watch decides
            error = exc
        finally:
            self._close()

        def finish() -> None:
            if not done.done():
                done.set_result(None) if error is None else done.set_exception(error)

        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            self.loop.call_soon_threadsafe(finish)

    def _on_loop(self, function: Callable[..., T], *args: Any) -> T:
        """Run `function` on the event loop thread and return its result (or raise its exception)."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def call() -> None:
            try:
                future.set_result(function(*args))
            except BaseException as exc:  # re-raised in the session thread
                future.set_exception(exc)

        self.loop.call_soon_threadsafe(call)
        while True:
            try:
                return future.result(timeout=SLICE)
            except concurrent.futures.TimeoutError:
                if self._stop.is_set():
                    raise Stopping from None

    # ---- the session ---------------------------------------------------------------------------------

    def _session(self) -> None:
        client = self._connect()
        readonly = not (self.settings.mark_seen or self.settings.move_to)
        info = client.select_folder(self.folder, readonly=readonly)
        self._use_idle = self.settings.idle and client.has_capability("IDLE")
        uidvalidity = int(info[b"UIDVALIDITY"])
        self._resume(client, uidvalidity, info)
        self.connected_once = True
        self._on_loop(self.source.folder_connected, self.folder)
        log.info("source %s: watching %s on %s (%s)", self.source.name, self.folder, self.settings.host,
                 "IDLE" if self._use_idle else f"polling every {self.settings.poll_interval:g}s")
        while True:
            self._catch_up(client, uidvalidity)
            self._wait(client)

    def _connect(self) -> IMAPClient:
        settings = self.settings
        context = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
        client = IMAPClient(settings.host, port=settings.port_number, ssl=settings.tls == "implicit",
                            ssl_context=context, timeout=settings.timeout)
        self.client = client
        if self._stop.is_set():
            raise Stopping
        client.normalise_times = False
        if settings.tls == "starttls":
            client.starttls(context)
        client.login(settings.username, settings.password.get_secret_value())
        _keepalive(client.socket())
        return client

    def _close(self) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        try:
            if self._stop.is_set():
                client.shutdown()
            else:
                client.logout()
        except (*NETWORK_ERRORS, AttributeError):
            pass

    def _resume(self, client: IMAPClient, uidvalidity: int, info: dict[bytes, Any]) -> None:
        saved = self.source.positions.get(self.key)
        if saved is None:
            self._on_loop(self.source.set_position, self.key, self._baseline(client, uidvalidity, info))
        elif saved.uidvalidity != uidvalidity:
            self._recover(client, saved, uidvalidity)

    def _baseline(self, client: IMAPClient, uidvalidity: int, info: dict[bytes, Any]) -> Position:
        """First start: begin after the newest mail; nothing older is processed."""
        uids = client.search(["ALL"]) if info.get(b"EXISTS") else []
        last = max(uids, default=int(info.get(b"UIDNEXT", 1)) - 1)
        newest = [date for _, _, date in self._fetch(client, [last] if uids else [], HEADERS)]
        log.info("source %s: first look at %s: new mail from UID %d on; the %d older mail(s) are left alone",
                 self.source.name, self.folder, last + 1, len(uids))
        return Position(uidvalidity, last, newest[0] if newest else time.time())

    def _recover(self, client: IMAPClient, saved: Position, uidvalidity: int) -> None:
        """UIDVALIDITY changed: handle the mail that arrived after the checkpoint, then take the new numbering."""
        top = max(client.search(["ALL"]), default=0)  # anything above is new, for _catch_up
        since = datetime.fromtimestamp(saved.checkpoint) - timedelta(days=1)
        uids = sorted(uid for uid in client.search(["SINCE", since.date()]) if uid <= top)
        new = [uid for uid, headers, date in self._fetch(client, uids, HEADERS) if _arrived_after(saved, date, headers)]
        log.warning("source %s: %s has a new UIDVALIDITY (%d, was %d): %d mail(s) arrived after the last one seen",
                    self.source.name, self.folder, uidvalidity, saved.uidvalidity, len(new))
        for uid, raw, date in self._fetch(client, new, WHOLE_MAIL):
            self._handle(client, uidvalidity, uid, raw, date)
        current = self.source.positions[self.key]
        self._on_loop(self.source.set_position, self.key,
                      Position(uidvalidity, top, current.checkpoint, current.recent_ids))

    def _catch_up(self, client: IMAPClient, uidvalidity: int) -> None:
        """Handle every mail above the saved UID, oldest first."""
        _pending_exists(client, clear=True)
        last = self.source.positions[self.key].last_uid
        uids = sorted(uid for uid in client.search(["UID", f"{last + 1}:*"]) if uid > last)
        for uid, raw, date in self._fetch(client, uids, WHOLE_MAIL):
            self._handle(client, uidvalidity, uid, raw, date)

    def _fetch(self, client: IMAPClient, uids: list[int], part: str) -> Iterator[tuple[int, bytes, float]]:
        """(UID, the part's bytes, INTERNALDATE) in batches; mail expunged meanwhile is skipped."""
        for start in range(0, len(uids), FETCH_BATCH):
            batch = uids[start:start + FETCH_BATCH]
            fetched = client.fetch(batch, ["INTERNALDATE", part])
            for uid in (uid for uid in batch if uid in fetched):
                data = fetched[uid]
                body = next((v for k, v in data.items() if k.startswith(b"BODY[")), b"")
                yield uid, body or b"", _epoch(data.get(b"INTERNALDATE"))

    def _handle(self, client: IMAPClient, uidvalidity: int, uid: int, raw: bytes, internaldate: float) -> None:
        mail = parse_mail(raw)
        found = self.source.find_rule(mail)
        authserv_id = self.settings.authserv_id
        evidence = evidence_from_headers(mail, authserv_id) if authserv_id else Evidence(seen="no authserv_id set")
        decision = self.source.decide(mail, found, evidence, {"folder": self.folder, "uid": str(uid)})
        self._on_loop(self.source.commit, decision, self.submit, self.key, uidvalidity, uid, internaldate,
                      mail.message_id)
        if decision.submit:
            self._after_handled(client, uid)

    def _after_handled(self, client: IMAPClient, uid: int) -> None:
        if self.settings.mark_seen:
            client.add_flags([uid], [b"\\Seen"])
        if self.settings.move_to:
            if client.has_capability("MOVE"):
                client.move([uid], self.settings.move_to)
            else:
                client.copy([uid], self.settings.move_to)
                client.add_flags([uid], [b"\\Deleted"])
                client.uid_expunge([uid]) if client.has_capability("UIDPLUS") else client.expunge()

    # ---- waiting for new mail ------------------------------------------------------------------------

    def _wait(self, client: IMAPClient) -> None:
        if self._use_idle:
            self._idle(client)
        else:
            if self._stop.wait(self.settings.poll_interval):
                raise Stopping
            client.noop()

    def _idle(self, client: IMAPClient) -> None:
        """IDLE until new mail (EXISTS) or the refresh time, then DONE; raises on a stop or a broken connection."""
        client.idle()
        deadline = time.monotonic() + self.settings.idle_refresh
        pending = _pending_exists(client, clear=False)  # it arrived while we were catching up
        while not pending and (remaining := deadline - time.monotonic()) > 0:
            if self._stop.is_set():
                raise Stopping
            pending = self._new_mail(client, min(remaining, SLICE))
        client.idle_done()

    def _new_mail(self, client: IMAPClient, timeout: float) -> bool:
        started = time.monotonic()
        responses = client.idle_check(timeout=timeout)
        for response in responses:
            if response[:1] == (b"BYE",):
                raise ConnectionError(f"the server closed the connection: {_text(response[1:])}")
            if len(response) > 1 and response[1] == b"EXISTS":
                return True
        if not responses and time.monotonic() - started < timeout / 2:
            raise ConnectionError("the server closed the connection")  # readable, yet no line: end of stream
        return False


def _arrived_after(saved: Position, internaldate: float, headers: bytes) -> bool:
    """After a UIDVALIDITY change: not handled before, delivered after the checkpoint, and not an old mail."""
    mail = parse_mail(headers)
    if mail.message_id and mail.message_id in saved.recent_ids:
        return False
    if internaldate < saved.checkpoint:
        return False
    return mail.date is None or mail.date >= saved.checkpoint - DATE_SLACK


def _pending_exists(client: IMAPClient, clear: bool) -> bool:
    """Whether the server reported new mail (EXISTS) while another command ran; imaplib keeps it aside."""
    pending = client._imap.untagged_responses  # imapclient offers no public view of these
    return bool(pending.pop("EXISTS", None) if clear else "EXISTS" in pending)


def _keepalive(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in KEEPALIVE.items():
            if hasattr(socket, name):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)
    except OSError:
        pass


def _epoch(value: Any) -> float:
    return value.timestamp() if isinstance(value, datetime) else 0.0


def _text(parts: tuple[Any, ...]) -> str:
    return " ".join(p.decode(errors="replace") if isinstance(p, bytes) else str(p) for p in parts)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _is_loopback(host: str) -> bool:
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
