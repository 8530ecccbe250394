"""Mail rules: what matches, the level, title and key they give, and the settings `lamplighter check` refuses."""

from __future__ import annotations

from typing import Any

import pytest

from lamplighter.errors import ConfigError
from lamplighter.model import Status
from lamplighter.sources import build_sources
from lamplighter.sources.mail.message import Mail, parse_mail
from lamplighter.sources.mail.rules import RuleSettings, find_rule, strip_subject
from tests.conftest import FakeClock

RULES: list[dict[str, Any]] = [
    {"match": {"subject": r"\[911\]\s*(?:(?P<service>[\w.-]+):)?"}, "level": 911, "key": "{service}"},
    {"match": {"subject": {"words": ["[912]", "P2"]}}, "level": "912"},
    {"match": {"subject": {"words": "RESOLVED"}}, "status": "resolved", "senders": ["@monitor.example.com"]},
]


def rules(entries: list[dict[str, Any]]) -> list[RuleSettings]:
    return [RuleSettings.model_validate(entry) for entry in entries]


def mail(subject: str, *, sender: str = "alerts@monitor.example.com", to: str = "oncall@example.com",
         body: str = "text", headers: str = "") -> Mail:
    return parse_mail(f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n{headers}\r\n{body}\r\n".encode())


def imap_entry(**changes: Any) -> dict[str, Any]:
    entry = {"type": "imap", "host": "imap.example.com", "username": "u", "password": "p",
             "authserv_id": "mx.example.com", "rules": RULES[:1]}
    return {**entry, **changes}


def problems(*entries: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        build_sources(list(entries), FakeClock())
    return dict(caught.value.problems)


@pytest.mark.parametrize(("subject", "level", "title", "key"), [
    ("[911] payments-api: error rate 34%", "911", "payments-api: error rate 34%", "payments-api"),
    ("[911] EVERYTHING IS DOWN click here", "911", "EVERYTHING IS DOWN click here", ""),
    ("Re: Fwd: [912] disk 91% on db-2", "912", "disk 91% on db-2", "disk 91% on db-2"),
    ("P2 - queue slow", "912", "queue slow", "queue slow"),
    ("[911] 결제-api: 오류율 34%", "911", "결제-api: 오류율 34%", "결제-api"),
])
def test_firing_rules_give_level_title_and_key(subject: str, level: str, title: str, key: str) -> None:
    found = find_rule(rules(RULES), mail(subject))
    assert found is not None
    assert (found.level, found.title, found.key, found.rule.status) == (level, title, key, Status.FIRING)


@pytest.mark.parametrize("subject", ["911 payments", "[9111] x", "1", "UNRESOLVED payments-api", "P22 slow", "[91]"])
def test_plain_words_and_escaped_tags_do_not_match_lookalikes(subject: str) -> None:
    assert find_rule(rules(RULES), mail(subject)) is None


def test_a_resolved_mail_is_read_as_the_firing_mail_it_ends() -> None:
    firing = find_rule(rules(RULES), mail("[911] payments-api: error rate 34%"))
    found = find_rule(rules(RULES), mail("[911] RESOLVED payments-api: error rate 0.4%"))
    assert firing is not None and found is not None and found.rule.status is Status.RESOLVED
    assert (found.level, found.key, found.title) == ("911", firing.key, "payments-api: error rate 0.4%")
    by_title = find_rule(rules(RULES), mail("RESOLVED: [912] disk 91% on db-2"))
    assert by_title is not None and (by_title.level, by_title.key) == ("912", "disk 91% on db-2")
    alone = find_rule(rules(RULES), mail("RESOLVED: disk ok on db-2"))  # no firing rule matches the rest
    assert alone is not None and (alone.level, alone.title, alone.key) == ("911", "disk ok on db-2", "disk ok on db-2")


def test_a_resolved_rule_can_set_its_own_key() -> None:
    own = rules([RULES[0], {"match": {"subject": r"^OK (?P<svc>\S+)"}, "status": "resolved", "key": "{svc}"}])
    found = find_rule(own, mail("OK payments-api back to normal"))
    assert found is not None and (found.level, found.key) == ("911", "payments-api")


def test_every_field_of_a_match_must_match() -> None:
    strict = rules([{"match": {"subject": "down", "from": r"@monitor\.example\.com>?$", "to": "^oncall@",
                               "body": r"severity:\s*critical", "headers": {"X-Alert-Env": "^prod$"}},
                     "level": "911"}])
    good = dict(sender="Monitor <alerts@monitor.example.com>", body="severity: critical",
                headers="X-Alert-Env: prod\r\n")
    assert find_rule(strict, mail("checkout down", **good)) is not None
    for change in ({"sender": "alerts@evil.example.net"}, {"to": "someone@example.com"},
                   {"body": "severity: warning"}, {"headers": "X-Alert-Env: staging\r\n"}, {"headers": ""}):
        assert find_rule(strict, mail("checkout down", **{**good, **change})) is None, change


def test_templates_use_placeholders_and_named_groups() -> None:
    custom = rules([{"match": {"subject": r"(?P<service>\w+) is (?P<state>down|slow)",
                               "body": r"region (?P<region>\S+)"},
                     "level": "911", "title": "{service} {state} in {region} (from {from_name})",
                     "key": "{message_id}"}])
    found = find_rule(custom, mail("api is down", sender="Mon <m@example.com>", body="region eu-1",
                                   headers="Message-ID: <1@example.com>\r\n"))
    assert found is not None
    assert (found.title, found.key) == ("api down in eu-1 (from Mon)", "<1@example.com>")


def test_strip_subject_drops_prefixes_tags_and_the_rule_tag() -> None:
    assert strip_subject("AW: WG: 회신: [ALERT][911] checkout", None) == "checkout"
    assert strip_subject("RESOLVED - checkout", parse_pattern("RESOLVED")) == "checkout"
    assert strip_subject("[911]", None) == "[911]"  # nothing left: keep the subject


def parse_pattern(text: str) -> Any:
    return RuleSettings.model_validate({"match": {"subject": text}, "level": "x"}).match.subject


def test_the_leads_example_is_understood_and_its_missing_group_named() -> None:
    example = [{"match": {"subject": "\\[911\\]"}, "level": "911", "title": "{subject}", "key": "{service}"},
               {"match": {"subject": "RESOLVED"}, "status": "resolved"}]
    found = problems(imap_entry(rules=example, senders=["alerts@example.com"], require="dkim|dmarc"))
    assert found == {"sources.0.rules.0": "key: unknown placeholder {service} in '{service}' "
                                          "(known: from, from_name, message_id, subject, title, to)"}
    example[0]["key"] = "{title}"
    [source] = build_sources([imap_entry(rules=example, require="dkim|dmarc")], FakeClock()).values()
    assert source.settings.require == frozenset({"dkim", "dmarc"})  # type: ignore[attr-defined]


def test_rule_settings_are_checked_with_their_path() -> None:
    found = problems(imap_entry(rules=[
        {"match": {"subject": "[911]"}, "level": "911"},
        {"match": {"subject": "(unclosed"}, "level": "911"},
        {"match": {}, "level": "911"},
        {"match": {"subject": "x"}},
        {"match": {"subject": "x"}, "status": "resolved", "unauthenticated_level": "912"},
        {"match": {"subject": {"words": []}}, "level": "911"},
        {"match": {"subjet": "x"}, "level": "911"},
    ]))
    assert found["sources.0.rules.0.match.subject"].startswith(
        "'[911]' is a regular expression matching one single character of '911'; for the tag write '\\[911\\]'"
        " (single quotes in YAML) or {words: ['[911]']}")
    assert found["sources.0.rules.1.match.subject"].startswith("not a valid regular expression '(unclosed'")
    assert found["sources.0.rules.2.match"] == "give at least one of subject, from, to, body, headers"
    assert found["sources.0.rules.3"] == "a rule needs a level (or status: resolved)"
    assert "must never end a signal" in found["sources.0.rules.4"]
    assert found["sources.0.rules.5.match.subject"] == "words: give a word or phrase, or a list of them"
    assert found["sources.0.rules.6.match.subjet"] == "Extra inputs are not permitted"


def test_imap_settings_that_cannot_work_are_refused() -> None:
    found = problems(
        imap_entry(authserv_id=None),
        imap_entry(name="b", require="auth"),
        imap_entry(name="c", idle_refresh="30m", folders=["INBOX", "Alerts"], move_to="Alerts"),
        imap_entry(name="d", move_to="INBOX"),
        imap_entry(name="e", senders=["not-an-address"], tls="ssl"),
    )
    assert found["sources.0"].startswith("authserv_id: required to check dkim/dmarc")
    assert found["sources.1"] == "require: 'auth' is not available for imap (use dkim|dmarc|none)"
    assert found["sources.2.idle_refresh"] == "must be under 29m: servers drop an IDLE after 30 minutes"
    assert found["sources.3"] == "move_to: must not be one of the watched folders"
    assert found["sources.4.senders"] == "list addresses (alerts@example.com) or domains (@example.com)"
    assert found["sources.4.tls"].startswith("Input should be 'implicit', 'starttls' or 'none'")


def test_require_none_needs_no_authserv_id() -> None:
    [source] = build_sources([imap_entry(authserv_id=None, require="none")], FakeClock()).values()
    assert source.source_type == "imap"


def test_smtp_settings_that_cannot_work_are_refused() -> None:
    base = {"type": "smtp", "recipients": ["lamp@lamplighter.test"], "rules": RULES[:1]}
    found = problems(
        {**base, "require": "auth"},
        {**base, "name": "b", "require": "dmarc"},
        {**base, "name": "c", "tls_cert": "/x.pem"},
        {**base, "name": "d", "recipients": [], "listen": "2525", "max_size": "lots"},
        {**base, "name": "e", "users": {"grafana": "pw"}},
    )
    assert found["sources.0"] == "require: auth can never pass without users: or clients:"
    assert found["sources.1"] == "require: 'dmarc' is not available for smtp (use dkim|auth|client|none)"
    assert found["sources.2"] == "tls_cert and tls_key: give both, or neither"
    assert found["sources.3.listen"] == "must be HOST:PORT, e.g. 127.0.0.1:2525, not '2525'"
    assert found["sources.3.max_size"] == "not a size: 'lots' (use e.g. 10MB)"
    assert found["sources.3.recipients"] == "list at least one address (lamp@example.com) or domain (@example.com)"
    assert found["sources.4"].startswith("users: AUTH is offered only after STARTTLS: give tls_cert and tls_key")
