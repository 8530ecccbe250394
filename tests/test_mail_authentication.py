"""Spoof checks: Authentication-Results from the user's own server only, alignment, allow-list, DKIM via dkimpy."""

from __future__ import annotations

from pathlib import Path

import pytest

from lamplighter.sources.mail.authentication import (
    Evidence,
    aligned,
    check,
    evidence_from_headers,
    parse_authentication_results,
    pinned_lookup,
    verify_dkim,
)
from lamplighter.sources.mail.message import parse_mail
from tests.mail_signing import SigningKey, make_key, sample, variant

SERVER = "mx.example.com"
BOTH = frozenset({"dkim", "dmarc"})
SENDERS = ("alerts@monitor.example.com",)


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> SigningKey:
    return make_key(tmp_path_factory.mktemp("dkim"))


def with_results(*results: str, sender: str = "Monitor <alerts@monitor.example.com>") -> bytes:
    headers = "".join(f"Authentication-Results: {r}\r\n" for r in results)
    return f"{headers}From: {sender}\r\nSubject: [911] x\r\n\r\nbody\r\n".encode()


def verdict(raw: bytes, require: frozenset[str] = BOTH, senders: tuple[str, ...] = SENDERS) -> str | None:
    mail = parse_mail(raw)
    return check(mail, evidence_from_headers(mail, SERVER), senders, require)


def test_the_samples() -> None:
    assert verdict(sample("mail-911")) is None
    assert verdict(sample("mail-912")) is None
    assert verdict(sample("mail-911-spoofed")) == (
        "not authenticated: dkim=none, dmarc=fail per mx.example.com (required: dkim|dmarc)")


@pytest.mark.parametrize(("header", "server", "methods"), [
    ("mx.example.com; dkim=pass header.d=monitor.example.com header.s=sel1; spf=pass smtp.mailfrom=a@b.c",
     "mx.example.com", [("dkim", "pass", {"header.d": "monitor.example.com", "header.s": "sel1"}),
                        ("spf", "pass", {"smtp.mailfrom": "a@b.c"})]),
    ("MX.Google.com; dkim=pass header.i=@monitor.example.com header.s=20230601 header.b=Ab1;\r\n"
     " spf=pass (google.com: domain of a@b.c designates 1.2.3.4 as permitted sender) smtp.mailfrom=a@b.c;\r\n"
     " dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=monitor.example.com",
     "mx.google.com", [("dkim", "pass", {"header.i": "@monitor.example.com", "header.s": "20230601",
                                         "header.b": "Ab1"}),
                       ("spf", "pass", {"smtp.mailfrom": "a@b.c"}),
                       ("dmarc", "pass", {"header.from": "monitor.example.com"})]),
    ("mx.example.com 1; none", "mx.example.com", []),
    ('mx.example.com (comment (nested; with ;)); dkim/1=fail reason="bad; sig" header.d=x.org',
     "mx.example.com", [("dkim", "fail", {"reason": "bad; sig", "header.d": "x.org"})]),
    ("", "", []),
])
def test_authentication_results_are_parsed(header: str, server: str,
                                           methods: list[tuple[str, str, dict[str, str]]]) -> None:
    found_server, found = parse_authentication_results(header)
    assert found_server == server
    assert [(m.name, m.result, dict(m.properties)) for m in found] == methods


def test_only_the_topmost_results_of_the_own_server_count() -> None:
    forged_below = with_results("mx.example.com; dkim=none; dmarc=fail header.from=monitor.example.com",
                                "mx.example.com; dkim=pass header.d=monitor.example.com; dmarc=pass")
    assert verdict(forged_below) == "not authenticated: dkim=none, dmarc=fail per mx.example.com (required: dkim|dmarc)"
    other_server = with_results("mx.evil.example.net; dkim=pass header.d=monitor.example.com; dmarc=pass")
    assert verdict(other_server) == "not authenticated: no Authentication-Results from mx.example.com" \
                                    " (required: dkim|dmarc)"
    below_other = with_results("relay.example.org; dkim=fail", "mx.example.com; dmarc=pass")
    assert verdict(below_other) is None


@pytest.mark.parametrize(("results", "believed"), [
    ("dkim=pass header.d=monitor.example.com", True),
    ("dkim=pass header.d=example.com", True),  # relaxed alignment: a parent domain signs
    ("dkim=pass header.i=@monitor.example.com", True),
    ("dkim=pass header.d=evil.example.net", False),  # a valid signature, of someone else
    ("dkim=pass header.d=com", False),
    ("dkim=pass header.d=other.example.com", False),  # a sibling is not aligned
    ("dkim=fail header.d=monitor.example.com", False),
    ("dmarc=pass header.from=monitor.example.com", True),
    ("dmarc=pass", True),  # the server judged this mail's own From
    ("dmarc=pass header.from=evil.example.net", False),
    ("dmarc=bestguesspass header.from=monitor.example.com", False),
    ("spf=pass smtp.mailfrom=alerts@monitor.example.com", False),  # SPF says nothing about From
])
def test_dkim_and_dmarc_must_pass_for_the_from_domain(results: str, believed: bool) -> None:
    assert (verdict(with_results(f"mx.example.com; {results}")) is None) is believed


def test_a_single_requirement_is_honoured() -> None:
    dkim_only = with_results("mx.example.com; dkim=pass header.d=monitor.example.com; dmarc=fail")
    assert verdict(dkim_only, frozenset({"dkim"})) is None
    assert verdict(dkim_only, frozenset({"dmarc"})) == (
        "not authenticated: dkim=pass, dmarc=fail per mx.example.com (required: dmarc)")


def test_the_allow_list_is_checked_even_when_authenticated() -> None:
    stranger = with_results("mx.example.com; dkim=pass header.d=example.org", sender="someone@example.org")
    assert verdict(stranger) == "someone@example.org is not on the senders allow-list"
    assert verdict(stranger, senders=("@example.org",)) is None
    assert verdict(stranger, senders=()) is None
    assert verdict(sample("mail-911-spoofed"), frozenset({"none"})) is None  # require: none trusts the From


def test_mail_with_two_senders_or_subjects_is_never_believed() -> None:
    raw = sample("mail-911")
    assert verdict(b"Subject: [911] injected\r\n" + raw) == "the mail has more than one From or Subject header"
    assert verdict(b"From: alerts@monitor.example.com\r\n" + raw) == "the mail has more than one From or Subject header"
    two_in_one = raw.replace(b"From: Monitor <alerts@monitor.example.com>",
                             b"From: a@x.org, alerts@monitor.example.com")
    assert verdict(two_in_one) == "the mail has no From address, or more than one"


def test_alignment() -> None:
    assert aligned("monitor.example.com", "Example.COM.")
    assert not aligned("example.com", "monitor.example.com")  # strict direction: without a suffix list
    assert not aligned("", "example.com") and not aligned("badexample.com", "example.com")


# ---- DKIM verified here (the SMTP receiver) ------------------------------------------------------------


def dkim_verdict(raw: bytes, key: SigningKey, require: frozenset[str] = frozenset({"dkim"})) -> str | None:
    mail = parse_mail(raw)
    return check(mail, verify_dkim(raw, key.lookup), SENDERS, require)


def test_a_dkim_signed_mail_verifies_through_the_injected_lookup(key: SigningKey) -> None:
    signed = key.sign(sample("mail-911"))
    evidence = verify_dkim(signed, key.lookup)
    assert evidence == Evidence(dkim_domains=frozenset({"monitor.example.com"}), seen="dkim=pass d=monitor.example.com")
    assert dkim_verdict(signed, key) is None


def test_unsigned_tampered_and_foreign_signatures_fail(key: SigningKey, tmp_path: Path) -> None:
    unsigned = sample("mail-911")
    assert dkim_verdict(unsigned, key) == "not authenticated: dkim=none (no signature) (required: dkim)"
    tampered = key.sign(variant(unsigned, subject="[912] harmless")).replace(b"[912] harmless", b"[911] panic")
    assert dkim_verdict(tampered, key) == "not authenticated: dkim=fail d=monitor.example.com (required: dkim)"
    stranger = make_key(tmp_path, "evil.example.net")
    foreign = stranger.sign(unsigned)  # a good signature, but by evil.example.net
    assert check(parse_mail(foreign), verify_dkim(foreign, stranger.lookup), SENDERS, frozenset({"dkim"})) == (
        "not authenticated: dkim=pass d=evil.example.net (required: dkim)")
    no_key = key.sign(unsigned)
    assert "dkim=fail" in (check(parse_mail(no_key), verify_dkim(no_key, lambda name, timeout=5: None),
                                 SENDERS, frozenset({"dkim"})) or "")


def test_signatures_that_leave_the_subject_or_body_open_do_not_count(key: SigningKey) -> None:
    raw = sample("mail-911")
    without_subject = key.sign(raw, headers=("from", "to", "date"))
    assert dkim_verdict(without_subject, key) == (
        "not authenticated: dkim=pass d=monitor.example.com but the signature does not cover From and Subject"
        " (required: dkim)")
    partial_body = key.sign(raw, length=True)
    assert "covers only part of the body (l=)" in (dkim_verdict(partial_body, key) or "")


def test_a_subject_injected_above_a_signed_mail_is_refused(key: SigningKey) -> None:
    signed = key.sign(variant(sample("mail-911"), subject="[912] routine"))
    injected = b"Subject: [911] injected\r\n" + signed  # DKIM checks the bottom Subject, readers show the top one
    assert verify_dkim(injected, key.lookup).dkim_domains == {"monitor.example.com"}
    assert dkim_verdict(injected, key) == "the mail has more than one From or Subject header"


def test_pinned_records_answer_before_dns(key: SigningKey) -> None:
    asked: list[bytes] = []

    def dns(name: bytes, timeout: float = 5.0) -> bytes | None:
        asked.append(name)
        return None

    lookup = pinned_lookup({f"{key.dns_name}.": key.record}, dns)
    assert lookup(f"{key.dns_name.upper()}.".encode()) == key.record.encode()
    assert lookup(b"other._domainkey.example.com.") is None and asked == [b"other._domainkey.example.com."]
    assert pinned_lookup({}, None)(b"x.") is None
