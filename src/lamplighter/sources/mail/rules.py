"""Rules that turn a mail into an event: what to match, which level, title and key.

    rules:
      - match: {subject: '\\[911\\]\\s*(?P<service>[\\w.-]+):'}   # a regular expression, case-insensitive
        level: "911"
        key: "{service}"                                      # repeat mails of one incident refresh it
      - match: {subject: {words: ["[912]"]}}                  # plain words: no regex surprises
        level: "912"
      - match: {subject: {words: [RESOLVED, "[OK]"]}}
        status: resolved                                      # ends the signal with the same key

A rule matches when every field under `match` does (subject, from, to, body, headers).
Rules with `status: resolved` are tried first, so a "[911] RESOLVED" follow-up ends the
signal instead of raising it again; the others are tried in order and the first match wins.
A resolved mail is read as the firing mail it ends: with the words its rule matched taken
out of the subject, the firing rule that matches the rest gives the level, title and key
the resolved rule does not set itself ("[911] RESOLVED payments-api: ..." -> key
"payments-api"). Templates (`title`, `key`, default `{title}`: the subject without its
[tags], Re:/Fwd: and the rule's own tag) use `{subject}`, `{title}`, `{from}`,
`{from_name}`, `{to}`, `{message_id}` and the named groups of the rule's patterns.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from string import Formatter
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, field_validator, model_validator

from lamplighter.model import Status
from lamplighter.sources.mail.message import Mail

DEFAULT_TEMPLATE = "{title}"
PLACEHOLDERS = ("subject", "title", "from", "from_name", "to", "message_id")
REQUIREMENTS = ("dkim", "dmarc", "auth", "client", "none")
_LONE_CLASS = re.compile(r"\[[^\]\\]+\]")
_REPLY_PREFIX = re.compile(r"^\s*(?:re|fwd?|aw|wg|tr|rv|sv|vs|antw|답장|회신|전달)\s*(?:\[\d+\])?\s*[:\uff1a]\s*",
                           re.IGNORECASE)  # Re:, Fwd:, AW:, 회신: ...
_LEADING_TAG = re.compile(r"^\s*\[[^\]]*\]\s*")
_EDGE_PUNCTUATION = re.compile(r"^[\s:;,|\-\u2013\u2014]+|[\s:;,|\-\u2013\u2014]+$")


def compile_pattern(value: Any) -> re.Pattern[str]:
    """A regex string, or `{words: [...]}` / `{regex: ...}`; matching ignores case."""
    if isinstance(value, str):
        if _LONE_CLASS.fullmatch(value):
            raise ValueError(f"{value!r} is a regular expression matching one single character of {value[1:-1]!r};"
                             f" for the tag write '{re.escape(value)}' (single quotes in YAML)"
                             f" or {{words: [{value!r}]}}")
        return _compile(value)
    if isinstance(value, Mapping) and set(value) == {"regex"} and isinstance(value["regex"], str):
        return _compile(value["regex"])
    if isinstance(value, Mapping) and set(value) == {"words"}:
        words = [value["words"]] if isinstance(value["words"], str) else value["words"]
        if not isinstance(words, list) or not words or not all(isinstance(w, str) and w.strip() for w in words):
            raise ValueError("words: give a word or phrase, or a list of them")
        return _compile("|".join(rf"(?<!\w){re.escape(w.strip())}(?!\w)" for w in words))
    raise ValueError("use a regular expression, {words: [plain words]} or {regex: ...}")


def _compile(text: str) -> re.Pattern[str]:
    try:
        return re.compile(text, re.IGNORECASE)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression {text!r}: {exc}") from None


Pattern = Annotated[re.Pattern[str], PlainValidator(compile_pattern)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, arbitrary_types_allowed=True)


class MatchSettings(_Strict):
    """What a rule looks at; every given field must match."""

    subject: Pattern | None = None
    from_: Pattern | None = Field(default=None, alias="from")
    to: Pattern | None = None
    body: Pattern | None = None
    headers: dict[str, Pattern] = {}

    @model_validator(mode="after")
    def _not_empty(self) -> MatchSettings:
        if not self.patterns():
            raise ValueError("give at least one of subject, from, to, body, headers")
        return self

    def patterns(self) -> list[re.Pattern[str]]:
        fixed = [self.subject, self.from_, self.to, self.body]
        return [p for p in fixed if p is not None] + list(self.headers.values())

    def group_names(self) -> set[str]:
        return {name for pattern in self.patterns() for name in pattern.groupindex}


def parse_requirement(value: Any) -> frozenset[str]:
    """`dkim|dmarc` or a list: any one of them must pass; `none` alone turns the check off."""
    words = value.split("|") if isinstance(value, str) else value
    if not isinstance(words, list) or not words or not all(isinstance(w, str) for w in words):
        raise ValueError("write e.g. dkim|dmarc, or a list")
    found = frozenset(w.strip().lower() for w in words)
    unknown = sorted(found - set(REQUIREMENTS))
    if unknown:
        raise ValueError(f"unknown requirement {unknown[0]!r} (use {', '.join(REQUIREMENTS)})")
    if "none" in found and len(found) > 1:
        raise ValueError("none cannot be combined with other requirements")
    return found


Requirement = Annotated[frozenset[str], PlainValidator(parse_requirement)]


def parse_senders(value: Any) -> tuple[str, ...]:
    """Addresses (`alerts@example.com`) or whole domains (`@example.com`), compared without case."""
    entries = [value] if isinstance(value, str) else value
    if not isinstance(entries, list) or not all(isinstance(e, str) and "@" in e for e in entries):
        raise ValueError("list addresses (alerts@example.com) or domains (@example.com)")
    return tuple(e.strip().lower() for e in entries)


Senders = Annotated[tuple[str, ...], PlainValidator(parse_senders)]


class RuleSettings(_Strict):
    """One rule as written in the file."""

    match: MatchSettings
    level: str | None = Field(default=None, min_length=1)
    status: Status = Status.FIRING
    title: str | None = None  # unset: "{title}", or for a resolved rule the firing rule's
    key: str | None = None  # unset: "{title}", or for a resolved rule the firing rule's
    senders: Senders | None = None  # unset: the source's
    require: Requirement | None = None  # unset: the source's
    # the level for mail that fails the checks; unset: rejected
    unauthenticated_level: str | None = Field(default=None, min_length=1)

    @field_validator("level", "unauthenticated_level", mode="before")
    @classmethod
    def _level_name(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value  # level: 911 without quotes

    @model_validator(mode="after")
    def _consistent(self) -> RuleSettings:
        if self.status is Status.FIRING and not self.level:
            raise ValueError("a rule needs a level (or status: resolved)")
        if self.status is Status.RESOLVED and self.unauthenticated_level:
            raise ValueError("unauthenticated_level: an unauthenticated mail must never end a signal")
        known = set(PLACEHOLDERS) | self.match.group_names()
        for name in ("title", "key"):
            check_template(name, getattr(self, name) or DEFAULT_TEMPLATE, known)
        return self


def check_template(name: str, template: str, known: set[str]) -> None:
    """Raise ValueError naming a placeholder the rule cannot fill."""
    try:
        fields = [(field, spec, conversion) for _, field, spec, conversion in Formatter().parse(template)
                  if field is not None]
    except ValueError as exc:
        raise ValueError(f"{name}: {exc} in {template!r} (write {{{{ and }}}} for braces)") from None
    for field, spec, conversion in fields:
        if field not in known or spec or conversion:
            raise ValueError(f"{name}: unknown placeholder {{{field}}} in {template!r}"
                             f" (known: {', '.join(sorted(known))})")


@dataclass(frozen=True)
class RuleMatch:
    """A rule that matched a mail, with the level, title and key it gives."""

    rule: RuleSettings
    level: str
    title: str
    key: str
    values: Mapping[str, str]


def find_rule(rules: Sequence[RuleSettings], mail: Mail) -> RuleMatch | None:
    """Resolved rules first, then the others in order; the first that matches wins."""
    firing = [r for r in rules if r.status is Status.FIRING]
    for rule in (r for r in rules if r.status is Status.RESOLVED):
        captures = match_captures(rule.match, mail)
        if captures is not None:
            return _resolution(rule, captures, mail, firing)
    return next((_render(rule, str(rule.level), mail, captures) for rule in firing
                 if (captures := match_captures(rule.match, mail)) is not None), None)


def _render(rule: RuleSettings, level: str, mail: Mail, captures: dict[str, str]) -> RuleMatch:
    values = {**dict.fromkeys(rule.match.group_names(), ""), **placeholders(mail, rule.match), **captures}
    title, key = render(rule.title or DEFAULT_TEMPLATE, values), render(rule.key or DEFAULT_TEMPLATE, values)
    return RuleMatch(rule, level, title, key, values)


def _resolution(rule: RuleSettings, captures: dict[str, str], mail: Mail, firing: list[RuleSettings]) -> RuleMatch:
    """A resolved mail read as the firing mail it ends: without the resolved words, the firing rule that
    matches the rest gives the level, title and key that the resolved rule does not set itself."""
    rest = replace(mail, subject=rule.match.subject.sub(" ", mail.subject)) if rule.match.subject else mail
    companion = next((_render(r, str(r.level), rest, c) for r in firing
                      if (c := match_captures(r.match, rest)) is not None), None)
    fallback_level = companion.level if companion else str(firing[0].level)
    own = _render(rule, rule.level or fallback_level, mail, captures)
    if companion is None:
        return own
    return RuleMatch(rule, own.level, own.title if rule.title else companion.title,
                     own.key if rule.key else companion.key, {**companion.values, **own.values})


def match_captures(match: MatchSettings, mail: Mail) -> dict[str, str] | None:
    """The named groups of every pattern if all of them match, else None."""
    captures: dict[str, str] = {}
    checks: list[tuple[re.Pattern[str] | None, Iterable[str]]] = [
        (match.subject, [mail.subject]),
        (match.from_, [from_text(mail)]),
        (match.to, mail.recipients),
        (match.body, [mail.body]),
        *((pattern, mail.header_values(name)) for name, pattern in match.headers.items()),
    ]
    for pattern, texts in checks:
        if pattern is None:
            continue
        found = next((m for text in texts if (m := pattern.search(text))), None)
        if found is None:
            return None
        captures.update({k: v.strip() for k, v in found.groupdict().items() if v is not None})
    return captures


def from_text(mail: Mail) -> str:
    return f"{mail.from_name} <{mail.from_address}>" if mail.from_name else mail.from_address


def placeholders(mail: Mail, match: MatchSettings) -> dict[str, str]:
    return {
        "subject": mail.subject,
        "title": strip_subject(mail.subject, match.subject),
        "from": mail.from_address,
        "from_name": mail.from_name,
        "to": mail.recipients[0] if mail.recipients else "",
        "message_id": mail.message_id,
    }


def strip_subject(subject: str, tag: re.Pattern[str] | None) -> str:
    """The subject without Re:/Fwd: prefixes, leading [tags], and the rule's tag (a pattern without groups)."""
    text = tag.sub(" ", subject) if tag is not None and not tag.groupindex else subject
    previous = None
    while previous != text:
        previous = text
        text = _EDGE_PUNCTUATION.sub("", _LEADING_TAG.sub("", _REPLY_PREFIX.sub("", text)))
    return " ".join(text.split()) or " ".join(subject.split())


def render(template: str, values: Mapping[str, str]) -> str:
    return " ".join(template.format_map(values).split())
