"""Test mail for the mail sources: the samples and variants of them, rules, DKIM signing with a fresh key (no DNS)."""

from __future__ import annotations

import base64
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import dkim

SAMPLES = Path(__file__).parent / "data" / "mail"
RULES = r"""
    rules:
      - match: {subject: {words: RESOLVED}}
        status: resolved
      - match: {subject: '\[911\]\s*(?:(?P<service>[\w.-]+):)?'}
        level: "911"
        key: "{service}"
      - match: {subject: {words: "[912]"}}
        level: "912"
"""
"""The rules of the tests' mail sources (indented for a `sources:` entry): 911, 912 and resolved mail."""
DOMAIN = "monitor.example.com"
SELECTOR = "sel1"


def sample(name: str) -> bytes:
    """One of the sample mails (copied from shared/samples): mail-911, mail-912, mail-911-spoofed."""
    return (SAMPLES / f"{name}.eml").read_bytes()


def variant(raw: bytes, *, subject: str | None = None, message_id: str | None = None) -> bytes:
    """The same mail with another Subject and/or Message-ID (a repeat, a follow-up)."""
    text = raw.decode()
    if subject is not None:
        text = re.sub(r"(?m)^Subject: .*$", lambda _: f"Subject: {subject}", text, count=1)
    if message_id is not None:
        text = re.sub(r"(?m)^Message-ID: .*$", lambda _: f"Message-ID: {message_id}", text, count=1)
    return text.encode()


@dataclass(frozen=True)
class SigningKey:
    """An RSA key pair made with openssl; `record` is the TXT record DNS would publish for it."""

    private_pem: bytes
    record: str
    domain: str = DOMAIN
    selector: str = SELECTOR

    @property
    def dns_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"

    def lookup(self, name: bytes, timeout: float = 5.0) -> bytes | None:
        """A DNS lookup to inject: answers this key's record, nothing else."""
        return self.record.encode() if name.decode().rstrip(".") == self.dns_name else None

    def sign(self, message: bytes, headers: tuple[str, ...] = ("from", "to", "subject", "date", "message-id"),
             domain: str | None = None, length: bool = False) -> bytes:
        """The message with a DKIM-Signature added on top, as the sending server would."""
        crlf = message.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        signature = dkim.sign(crlf, self.selector.encode(), (domain or self.domain).encode(), self.private_pem,
                              include_headers=[h.encode() for h in headers], length=length)
        return bytes(signature) + crlf


def make_key(directory: Path, domain: str = DOMAIN) -> SigningKey:
    directory.mkdir(parents=True, exist_ok=True)
    key = directory / f"dkim-{domain}.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    public = subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"], check=True,
                            capture_output=True).stdout
    return SigningKey(key.read_bytes(), f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode()}", domain)
