"""Is this mail really from who it says? The spoof checks behind every mail rule.

A mail is believed only when its From address is on the allow-list (if there is one) and
one of the required proofs passes:

    dkim    a valid DKIM signature whose domain is aligned with the From domain
            (IMAP: as your own server reports it in Authentication-Results;
             SMTP: verified here with dkimpy; the signature must cover From and Subject)
    dmarc   IMAP: your own server reports dmarc=pass for the From domain
    auth    SMTP: the client logged in (AUTH) as one of the configured users
    client  SMTP: the client connected from an allowed network

For IMAP only the topmost Authentication-Results header carrying the configured
`authserv_id` counts: any sender can write such a header into a mail, but the one your
server adds sits above everything the mail brought with it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lamplighter.sources.mail.message import Mail

if TYPE_CHECKING:
    import dkim

DnsLookup = Callable[..., bytes | None]  # dkimpy's dnsfunc(name: bytes, timeout=5) -> TXT record or None
MAX_SIGNATURES = 5
DNS_TIMEOUT = 5.0
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')


@dataclass(frozen=True)
class Evidence:
    """What vouches for a mail, as far as this side can trust it."""

    dkim_domains: frozenset[str] = frozenset()  # d= of valid DKIM signatures
    dmarc_domains: frozenset[str] = frozenset()  # From domains with dmarc=pass
    smtp_user: str | None = None
    trusted_client: bool = False
    seen: str = "no authentication results"  # what was found, for the rejection reason


@dataclass(frozen=True)
class Method:
    """One result in an Authentication-Results header: `dkim=pass header.d=example.com`."""

    name: str
    result: str
    properties: Mapping[str, str] = field(default_factory=dict)


def check(mail: Mail, evidence: Evidence, senders: Iterable[str], require: frozenset[str]) -> str | None:
    """None if the mail is believed, else the reason it is not."""
    if mail.count("from") > 1 or mail.count("subject") > 1:
        return "the mail has more than one From or Subject header"
    if not mail.from_address:
        return "the mail has no From address, or more than one"
    allowed = tuple(senders)
    if allowed and not sender_allowed(mail.from_address, allowed):
        return f"{mail.from_address} is not on the senders allow-list"
    if "none" in require:
        return None
    if any(_passes(proof, mail, evidence) for proof in require):
        return None
    return f"not authenticated: {evidence.seen} (required: {'|'.join(sorted(require))})"


def _passes(proof: str, mail: Mail, evidence: Evidence) -> bool:
    if proof == "dkim":
        return any(aligned(mail.from_domain, domain) for domain in evidence.dkim_domains)
    if proof == "dmarc":
        return mail.from_domain in evidence.dmarc_domains
    if proof == "auth":
        return evidence.smtp_user is not None
    return proof == "client" and evidence.trusted_client


def sender_allowed(address: str, senders: Iterable[str]) -> bool:
    domain = "@" + address.rpartition("@")[2]
    return any(entry in (address, domain) for entry in senders)


def aligned(from_domain: str, signing_domain: str) -> bool:
    """Relaxed alignment: the signer is the From domain or a parent of it (never a bare top-level domain)."""
    signing_domain = signing_domain.lower().rstrip(".")
    if not from_domain or "." not in signing_domain:
        return False
    return from_domain == signing_domain or from_domain.endswith("." + signing_domain)


# ---- Authentication-Results (RFC 8601), written by the user's own mail server -------------------


def evidence_from_headers(mail: Mail, authserv_id: str) -> Evidence:
    """The results of the topmost Authentication-Results header from `authserv_id`; lower ones are ignored."""
    for value in mail.header_values("authentication-results"):
        server, methods = parse_authentication_results(value)
        if server == authserv_id.lower():
            return _evidence(methods, mail.from_domain, authserv_id)
    return Evidence(seen=f"no Authentication-Results from {authserv_id}")


def _evidence(methods: list[Method], from_domain: str, authserv_id: str) -> Evidence:
    dkim_domains = {_dkim_domain(m) for m in methods if m.name == "dkim" and m.result == "pass"}
    dmarc_domains = {m.properties.get("header.from", from_domain).lower() for m in methods
                     if m.name == "dmarc" and m.result == "pass"}
    seen = ", ".join(f"{m.name}={m.result}" for m in methods if m.name in ("dkim", "dmarc")) or "no dkim or dmarc"
    return Evidence(dkim_domains=frozenset(dkim_domains - {""}), dmarc_domains=frozenset(dmarc_domains),
                    seen=f"{seen} per {authserv_id}")


def _dkim_domain(method: Method) -> str:
    domain = method.properties.get("header.d") or method.properties.get("header.i", "").rpartition("@")[2]
    return domain.lower()


def parse_authentication_results(value: str) -> tuple[str, list[Method]]:
    """(authserv-id in lower case, methods) of one header value; comments and quotes handled."""
    parts = _split_outside_quotes(_strip_comments(value), ";")
    server = parts[0].split()[0].lower() if parts and parts[0].split() else ""
    methods = [m for part in parts[1:] if (m := _method(part)) is not None]
    return server, methods


def _method(text: str) -> Method | None:
    tokens = _split_outside_quotes(text, None)
    if not tokens or "=" not in tokens[0]:
        return None  # "none", or garbage
    name, _, result = tokens[0].partition("=")
    properties = {}
    for token in tokens[1:]:
        key, sep, prop = token.partition("=")
        if sep:
            properties[key.lower()] = prop.strip('"')
    return Method(name.split("/")[0].strip().lower(), result.strip().lower(), properties)


def _strip_comments(text: str) -> str:
    """Drop (nested) parenthesised comments outside quoted strings."""
    out: list[str] = []
    depth, quoted, escaped = 0, False, False
    for char in text:
        if escaped:
            escaped = False
            if depth == 0:
                out.append(char)
            continue
        if char == "\\":
            escaped = True
        elif char == '"' and depth == 0:
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
            continue
        elif not quoted and char == ")" and depth:
            depth -= 1
            continue
        if depth == 0:
            out.append(char)
    return "".join(out)


def _split_outside_quotes(text: str, separator: str | None) -> list[str]:
    """Split on `separator` (None: whitespace) except inside quoted strings."""
    quoted = {f"\0{i}\0": match for i, match in enumerate(_QUOTED.findall(text))}
    for placeholder, original in quoted.items():
        text = text.replace(original, placeholder, 1)
    parts = [p.strip() for p in text.split(separator)] if separator else text.split()
    for placeholder, original in quoted.items():
        parts = [p.replace(placeholder, original) for p in parts]
    return [p for p in parts if p]


# ---- DKIM verified here (SMTP, where Lamplighter is the receiving server) ------------------------


def verify_dkim(raw: bytes, lookup: DnsLookup) -> Evidence:
    """Verify up to MAX_SIGNATURES DKIM signatures (blocking: DNS). Only full signatures over From and Subject count."""
    import dkim  # dkimpy and dnspython load only when a mail is checked (30 ms less at start)

    verifier = dkim.DKIM(raw, minkey=1024, timeout=DNS_TIMEOUT)
    total = sum(1 for name, _ in verifier.headers if name.lower() == b"dkim-signature")
    domains: set[str] = set()
    notes: list[str] = []
    for index in range(min(total, MAX_SIGNATURES)):
        domain, note = _verify_one(verifier, index, lookup)
        notes.append(note)
        if domain:
            domains.add(domain)
    return Evidence(dkim_domains=frozenset(domains), seen=", ".join(notes) or "dkim=none (no signature)")


def _verify_one(verifier: dkim.DKIM, index: int, lookup: DnsLookup) -> tuple[str, str]:
    """(signing domain if the signature is good and covers enough, note for the reason)."""
    import dkim

    try:
        valid = verifier.verify(idx=index, dnsfunc=lookup)
    except dkim.DKIMException as exc:
        return "", f"dkim=permerror ({exc})"
    domain = (verifier.domain or b"").decode("ascii", "replace").lower()
    if not valid:
        return "", f"dkim=fail d={domain}"
    signed = {h.lower() for h in verifier.include_headers}
    if not {b"from", b"subject"} <= signed:
        return "", f"dkim=pass d={domain} but the signature does not cover From and Subject"
    if b"l" in verifier.signature_fields:
        return "", f"dkim=pass d={domain} but the signature covers only part of the body (l=)"
    return domain, f"dkim=pass d={domain}"


def dns_txt(name: bytes, timeout: float = DNS_TIMEOUT) -> bytes | None:
    """The TXT record at `name` from DNS (dkimpy's lookup through dnspython)."""
    from dkim.dnsplug import get_txt

    record: bytes | None = get_txt(name, timeout=timeout)
    return record


def pinned_lookup(records: Mapping[str, str], fallback: DnsLookup | None) -> DnsLookup:
    """A DNS lookup that answers configured TXT records first (`sel._domainkey.example.com`), then asks DNS."""
    pinned = {name.lower().rstrip("."): text.encode() for name, text in records.items()}

    def lookup(name: bytes, timeout: float = DNS_TIMEOUT) -> bytes | None:
        key = name.decode("ascii", "replace").lower().rstrip(".")
        if key in pinned:
            return pinned[key]
        return fallback(name, timeout=timeout) if fallback is not None else None

    return lookup
