"""A real Dovecot 2.3 IMAP server on loopback (Debian's `dovecot-imapd`), and a second client to deliver mail.

    with Dovecot().start() as server:
        uid = server.append(Path("tests/data/mail/mail-911.eml").read_bytes())
        server.stop(); server.start()                # the same ports again: clients reconnect
        server.rebuild("INBOX")                      # new UIDVALIDITY, UIDs renumbered from 1

The configuration is self-contained (no /etc/dovecot): one passwd-file user `alerts` with
password `secret`, maildir under the server's own directory, plaintext IMAP on a free port
and, with `tls=True`, STARTTLS there plus implicit TLS (imaps) on a second port, using a
fresh self-signed certificate. `idle=False` advertises capabilities without IDLE, like
servers that lack it.

Dovecot refuses to run as root: as root the directory (a fresh one under /tmp, since
pytest's are private to root) is handed to `nobody` and Dovecot starts through
`runuser -u nobody`, as ../shared/PEERS.md describes.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType

from imapclient import IMAPClient

from tests.daemon import free_port
from tests.peers.tls import self_signed

USER, PASSWORD = "alerts", "secret"
READY_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
CAPABILITIES_WITHOUT_IDLE = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE LITERAL+ UIDPLUS MOVE UNSELECT NAMESPACE"


def _binary(name: str) -> str:
    found = shutil.which(name, path=f"{os.environ.get('PATH', '')}:/usr/sbin:/usr/bin")
    if found is None:
        raise RuntimeError(f"{name} is not installed: `make test` installs it (Debian dovecot-imapd)")
    return found


@dataclass
class Dovecot:
    tls: bool = False
    idle: bool = True
    port: int = field(default_factory=free_port)
    tls_port: int = field(default_factory=free_port)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="lamplighter-dovecot-")))
    process: subprocess.Popen[bytes] | None = None

    @property
    def as_root(self) -> bool:
        return os.geteuid() == 0

    @property
    def user(self) -> str:
        return "nobody" if self.as_root else pwd.getpwuid(os.geteuid()).pw_name

    @property
    def group(self) -> str:
        return grp.getgrgid(pwd.getpwnam(self.user).pw_gid).gr_name

    @property
    def config_path(self) -> Path:
        return self.workdir / "dovecot.conf"

    @property
    def log_path(self) -> Path:
        return self.workdir / "dovecot.log"

    @property
    def certificate(self) -> Path:
        return self.workdir / "tls" / "server.pem"

    def maildir(self, folder: str = "INBOX") -> Path:
        base = self.workdir / "mail" / USER
        return base if folder == "INBOX" else base / f".{folder}"

    def source_yaml(self, **settings: object) -> str:
        """The connection part of an `imap` source entry for this server (flow style, one line)."""
        fields = {"host": "127.0.0.1", "port": self.port, "tls": "none", "username": USER, "password": PASSWORD,
                  **settings}
        return "{" + ", ".join(f"{key}: {value}" for key, value in fields.items()) + "}"

    # ---- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Dovecot:
        if not self.config_path.exists():
            self._prepare()
        command = [_binary("dovecot"), "-F", "-c", str(self.config_path)]
        if self.as_root:
            command = [_binary("runuser"), "-u", self.user, "--", *command]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_ready()
        return self

    def _prepare(self) -> None:
        for name in ("base", "state", "mail"):
            (self.workdir / name).mkdir(parents=True, exist_ok=True)
        (self.workdir / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        self.log_path.touch()  # before the chown: Dovecot, as nobody, appends to it
        tls = ""
        if self.tls:
            cert, key = self_signed(self.workdir / "tls")
            tls = f"ssl = yes\nssl_cert = <{cert}\nssl_key = <{key}\n"
        self.config_path.write_text(self._config(tls))
        if self.as_root:
            subprocess.run(["chown", "-R", f"{self.user}:{self.group}", str(self.workdir)], check=True)
            self.workdir.chmod(0o755)

    def _config(self, tls: str) -> str:
        capability = "" if self.idle else f"imap_capability = {CAPABILITIES_WITHOUT_IDLE}\n"
        imaps = f"address = 127.0.0.1\n    port = {self.tls_port}" if self.tls else "port = 0"
        return f"""protocols = imap
listen = 127.0.0.1
base_dir = {self.workdir}/base
state_dir = {self.workdir}/state
log_path = {self.log_path}
{tls or "ssl = no"}
disable_plaintext_auth = no
default_internal_user = {self.user}
default_internal_group = {self.group}
default_login_user = {self.user}
mail_location = maildir:{self.workdir}/mail/%u
first_valid_uid = 1
{capability}passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.workdir}/users
}}
userdb {{
  driver = static
  args = uid={self.user} gid={self.group} home={self.workdir}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    {imaps}
  }}
}}
service anvil {{
  chroot =
}}
"""

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"dovecot exited with {self.process.returncode}:\n{self._log_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    if sock.recv(64).startswith(b"* OK"):
                        return
            except OSError:
                time.sleep(0.01)
        raise RuntimeError(f"dovecot did not answer within {READY_TIMEOUT}s:\n{self._log_text()}")

    def _log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else "(no log)"

    def stop(self) -> None:
        """Stop the whole server, client processes included, as `systemctl stop dovecot` does (its own
        process group: the master alone leaves the imap processes of open connections running)."""
        if self.process is None or self.process.poll() is not None:
            return
        group = os.getpgid(self.process.pid)
        os.killpg(group, signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(group, signal.SIGKILL)
            self.process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)  # any straggler

    def close(self) -> None:
        """Kill the server at once (nothing to be graceful for) and remove its directory."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(os.getpgid(self.process.pid), signal.SIGKILL)
            self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Dovecot:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # ---- what a mail server and its admin do ---------------------------------------------------

    def client(self) -> IMAPClient:
        """A logged-in plaintext client on loopback (the deliverer, or a user's mail program)."""
        client = IMAPClient("127.0.0.1", port=self.port, ssl=False, timeout=10)
        client.login(USER, PASSWORD)
        return client

    def append(self, raw: bytes, folder: str = "INBOX", when: datetime | None = None) -> int:
        """Deliver a mail the way an MTA's APPEND would; returns its UID."""
        client = self.client()
        try:
            answer = client.append(folder, raw, msg_time=when)
        finally:
            client.logout()
        return int(answer.split(b"]")[0].split()[-1])  # [APPENDUID validity uid] Append completed

    def create_folder(self, folder: str) -> None:
        client = self.client()
        try:
            client.create_folder(folder)
        finally:
            client.logout()

    def status(self, folder: str = "INBOX") -> dict[bytes, int]:
        client = self.client()
        try:
            return dict(client.folder_status(folder, [b"UIDVALIDITY", b"UIDNEXT", b"MESSAGES", b"UNSEEN"]))
        finally:
            client.logout()

    def flags(self, folder: str = "INBOX") -> dict[int, tuple[bytes, ...]]:
        client = self.client()
        try:
            client.select_folder(folder, readonly=True)
            uids = client.search(["ALL"])
            return {uid: data[b"FLAGS"] for uid, data in client.fetch(uids, ["FLAGS"]).items()} if uids else {}
        finally:
            client.logout()

    def expunge(self, uids: list[int], folder: str = "INBOX") -> None:
        client = self.client()
        try:
            client.select_folder(folder)
            client.delete_messages(uids)
            client.uid_expunge(uids)
        finally:
            client.logout()

    def rebuild(self, folder: str = "INBOX") -> None:
        """What a restore or a lost index does: a new UIDVALIDITY, every mail renumbered from UID 1.

        The server must be stopped. The mail files (and so their INTERNALDATE) stay.
        """
        assert self.process is None or self.process.poll() is not None, "stop the server first"
        maildir = self.maildir(folder)
        for path in maildir.iterdir():
            if path.name == "dovecot-uidlist" or path.name.startswith("dovecot.index"):
                path.unlink()
        time.sleep(1.0)  # Dovecot derives the new UIDVALIDITY from the clock: make it differ


def tls_context(server: Dovecot) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(server.certificate))
