"""Real-world mail reduced to what rules look at: subject, addresses, headers and plain text.

Monitoring systems, mail servers and people forwarding alerts produce every shape of mail:
multipart/alternative, HTML only, RFC 2047 encoded subjects in UTF-8 or a Korean legacy
charset, raw UTF-8 headers, unknown charsets, messages forwarded inline or as an attached
message/rfc822. `parse_mail` never raises on such input; it decodes what it can and replaces
what it cannot.

Work is bounded before parsing: a mail with more than MAX_MIME_PARTS parts (counted as
Content-Type lines, however they nest) is read for its headers only, and forwarded messages
are followed MAX_NESTING deep, each part visited once.
"""

from __future__ import annotations

import email
import email.header
import email.policy
import re
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.policy import EmailPolicy
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser

MAX_BODY_CHARS = 20_000
MAX_NESTING = 3  # forwarded message inside forwarded message...
MAX_MIME_PARTS = 100  # alert mail has a handful; thousands of nested parts take minutes to walk

_BLOCK_TAGS = frozenset({"br", "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "pre", "hr"})
_HIDDEN_TAGS = frozenset({"script", "style", "head", "title"})
_CELL_TAGS = frozenset({"td", "th"})
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
_CONTENT_TYPE = re.compile(rb"^content-type[ \t]*:", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class Mail:
    """One mail as the rules and the spoof checks see it."""

    subject: str
    from_address: str  # lower case, "" when missing or not exactly one
    from_name: str
    recipients: tuple[str, ...]  # To and Cc, plus the SMTP envelope recipients
    message_id: str
    headers: tuple[tuple[str, str], ...]  # (lower-case name, decoded value), top to bottom
    body: str
    date: float | None  # the Date header as epoch seconds
    raw: bytes

    @property
    def from_domain(self) -> str:
        return self.from_address.rpartition("@")[2]

    def header_values(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self.headers if key == wanted]

    def count(self, name: str) -> int:
        return len(self.header_values(name))


def structure_problem(raw: bytes) -> str | None:
    """Why a raw mail is too complex to read in full, found without parsing it; None if it is not."""
    parts = len(_CONTENT_TYPE.findall(raw))
    if parts > MAX_MIME_PARTS:
        return f"the mail has {parts} MIME parts, more than the {MAX_MIME_PARTS} Lamplighter reads"
    return None


def parse_mail(raw: bytes, envelope_recipients: tuple[str, ...] = ()) -> Mail:
    """Decode a raw RFC 5322 message; never raises on malformed input.

    A mail with a `structure_problem` is read for its headers only; its body says why.
    """
    problem = structure_problem(raw)
    message = BytesParser(policy=email.policy.default).parsebytes(raw, headersonly=problem is not None)
    assert isinstance(message, EmailMessage)
    headers = tuple((name.lower(), _header_text(message, name, value)) for name, value in message.raw_items())
    from_name, from_address = _single_from(message)
    recipients = tuple(dict.fromkeys(
        [addr.lower() for _, addr in _addresses(message, "to") + _addresses(message, "cc") if addr]
        + [addr.lower() for addr in envelope_recipients]))
    return Mail(
        subject=_first(headers, "subject"),
        from_address=from_address,
        from_name=from_name,
        recipients=recipients,
        message_id=_first(headers, "message-id").strip(),
        headers=headers,
        body=f"({problem}: its text was not read)" if problem else body_text(message)[:MAX_BODY_CHARS],
        date=_date(_first(headers, "date")),
        raw=raw,
    )


def _first(headers: tuple[tuple[str, str], ...], name: str) -> str:
    return next((value for key, value in headers if key == name), "")


def _header_text(message: EmailMessage, name: str, value: str) -> str:
    """A header's value decoded (RFC 2047, raw UTF-8), unfolded; undecodable bytes become U+FFFD."""
    try:
        text = str(_policy(message).header_factory(name, value))
    except (ValueError, TypeError, LookupError, IndexError, AttributeError):  # the parser's defects surface so
        text = str(email.header.make_header(email.header.decode_header(value)))
    return _valid_unicode(" ".join(text.split()))


def _policy(message: EmailMessage) -> EmailPolicy:
    policy = message.policy
    assert isinstance(policy, EmailPolicy)
    return policy


def _valid_unicode(text: str) -> str:
    """Raw 8-bit header bytes arrive as surrogate escapes: decode them as UTF-8."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _addresses(message: EmailMessage, name: str) -> list[tuple[str, str]]:
    """(display name, address) of every address in every `name` header."""
    found: list[tuple[str, str]] = []
    for key, value in message.raw_items():
        if key.lower() != name:
            continue
        try:
            parsed = _policy(message).header_factory(key, value).addresses
            found += [(_valid_unicode(a.display_name), _valid_unicode(a.addr_spec)) for a in parsed]
        except (ValueError, TypeError, LookupError, IndexError, AttributeError):
            found += getaddresses([_valid_unicode(value)])
    return found


def _single_from(message: EmailMessage) -> tuple[str, str]:
    """(display name, address) of the only From address; ("", "") if there is not exactly one."""
    found = _addresses(message, "from")
    if len(found) != 1 or "@" not in found[0][1]:
        return "", ""
    display, address = found[0]
    return display, address.lower()


def _date(value: str) -> float | None:
    try:
        return parsedate_to_datetime(value).timestamp() if value else None
    except (ValueError, TypeError, IndexError, OverflowError):
        return None


def body_text(message: Message, depth: int = 0) -> str:
    """The readable text: the plain part (else the HTML part as text), then any forwarded messages."""
    assert isinstance(message, EmailMessage)
    part = message.get_body(preferencelist=("plain", "html"))
    text = "" if not isinstance(part, EmailMessage) else _part_text(part)
    if depth < MAX_NESTING:
        for attached in _attached_messages(message):
            text += "\n\n" + _forwarded_text(attached, depth + 1)
    return text.strip()


def _attached_messages(message: EmailMessage) -> list[EmailMessage]:
    """The messages forwarded in this one (message/rfc822 parts), but not those forwarded inside them."""
    found: list[EmailMessage] = []
    pending = _children(message)
    while pending:
        part = pending.pop(0)
        if part.get_content_type() != "message/rfc822":
            pending += _children(part)
        elif inner := _children(part):
            found.append(inner[0])
    return found


def _children(part: Message) -> list[EmailMessage]:
    payload = part.get_payload() if part.is_multipart() else None
    return [child for child in payload or [] if isinstance(child, EmailMessage)]


def _forwarded_text(message: EmailMessage, depth: int) -> str:
    raw = {name.lower(): value for name, value in reversed(list(message.raw_items()))}  # the first of each, unparsed
    lines = [f"{name}: {_header_text(message, name, raw[name.lower()])}"
             for name in ("From", "Date", "Subject", "To") if name.lower() in raw]
    return "---------- Forwarded message ----------\n" + "\n".join(lines) + "\n\n" + body_text(message, depth)


def _part_text(part: EmailMessage) -> str:
    text = _decoded(part)
    return html_to_text(text) if part.get_content_type() == "text/html" else _tidy(text)


def _decoded(part: EmailMessage) -> str:
    """The part's text in its declared charset; an unknown or lying charset falls back to UTF-8."""
    try:
        content = part.get_content()
        if isinstance(content, str):
            return _valid_unicode(content)
    except (LookupError, UnicodeError, ValueError, AssertionError, KeyError):
        pass
    payload = part.get_payload(decode=True)
    return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden += 1
        elif tag in _BLOCK_TAGS:
            self.chunks.append("\n")
        elif tag in _CELL_TAGS:
            self.chunks.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden = max(0, self._hidden - 1)
        elif tag in _BLOCK_TAGS:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.chunks.append(data)


def html_to_text(html: str) -> str:
    """Visible text of an HTML body, one line per block; scripts, styles and the head dropped."""
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    return _tidy("".join(extractor.chunks))


def _tidy(text: str) -> str:
    lines = (_SPACES.sub(" ", line).strip() for line in text.replace("\r\n", "\n").split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def format_address(name: str, address: str) -> str:
    """`Name <addr>` for display, or just the address."""
    return str(Address(display_name=name, addr_spec=address)) if name and address else address
