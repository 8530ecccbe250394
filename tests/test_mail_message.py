"""Real-world mail reduced to subject, addresses and text: multipart, HTML only, Korean headers, forwards."""

from __future__ import annotations

import base64
from pathlib import Path

from lamplighter.sources.mail.message import html_to_text, parse_mail

SAMPLES = Path(__file__).parent / "data" / "mail"


def b_word(text: str, charset: str) -> str:
    """An RFC 2047 encoded word, the way mail programs write non-ASCII subjects."""
    return f"=?{charset}?B?{base64.b64encode(text.encode(charset)).decode()}?="


def test_the_samples() -> None:
    mail = parse_mail((SAMPLES / "mail-911.eml").read_bytes())
    assert mail.subject == "[911] payments-api: error rate 34% for 5 minutes"
    assert (mail.from_address, mail.from_name, mail.from_domain) == (
        "alerts@monitor.example.com", "Monitor", "monitor.example.com")
    assert mail.recipients == ("oncall@example.com",)
    assert mail.message_id == "<20261124203107.1234@monitor.example.com>"
    assert mail.body.startswith("payments-api 5xx rate is 34%") and "Runbook:" in mail.body
    assert mail.date == 1795552267.0
    [results] = mail.header_values("authentication-results")
    assert results.startswith("mx.example.com; dkim=pass header.d=monitor.example.com")


def test_multipart_alternative_prefers_the_plain_text() -> None:
    raw = (b"From: alerts@example.com\r\nSubject: [912] disk\r\nMIME-Version: 1.0\r\n"
           b'Content-Type: multipart/alternative; boundary="b1"\r\n\r\n'
           b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\ndisk 91% on db-2\r\n"
           b"--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>disk <b>91%</b> on db-2</p>\r\n--b1--\r\n")
    assert parse_mail(raw).body == "disk 91% on db-2"


def test_an_html_only_body_becomes_its_visible_text() -> None:
    html = ("<html><head><title>Alert</title><style>p {color: red}</style></head><body>"
            "<h1>[911] checkout down</h1><p>Error rate &gt; 30% &amp; rising</p><script>track()</script>"
            "<table><tr><td>service</td><td>checkout</td></tr></table>Runbook<br>https://wiki/x</body></html>")
    raw = ("From: alerts@example.com\r\nSubject: alert\r\nMIME-Version: 1.0\r\n"
           "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           + base64.encodebytes(html.encode()).decode()).encode()
    body = parse_mail(raw).body
    assert body.splitlines() == ["[911] checkout down", "", "Error rate > 30% & rising", "", "service checkout",
                                 "", "Runbook", "https://wiki/x"]
    assert "color" not in body and "track" not in body and "Alert" not in body


def test_encoded_subjects_utf8_and_korean_legacy_charsets() -> None:
    for charset in ("utf-8", "euc-kr", "ks_c_5601-1987"):  # the last is what Outlook writes for Korean
        raw = (f"From: {b_word('모니터링', charset)} <alerts@example.kr>\r\n"
               f"Subject: [911] {b_word('결제 서비스 장애', charset)}\r\n\r\nbody\r\n").encode()
        mail = parse_mail(raw)
        assert mail.subject == "[911] 결제 서비스 장애", charset
        assert (mail.from_name, mail.from_address) == ("모니터링", "alerts@example.kr")


def test_raw_utf8_headers_and_a_korean_body_in_euc_kr() -> None:
    body = base64.encodebytes("결제 오류율 34%".encode("euc-kr")).decode()
    raw = ("From: 알림 <alerts@example.kr>\r\nSubject: [912] 배치 지연\r\nMIME-Version: 1.0\r\n"
           "Content-Type: text/plain; charset=euc-kr\r\nContent-Transfer-Encoding: base64\r\n\r\n" + body).encode()
    mail = parse_mail(raw)
    assert (mail.subject, mail.from_name, mail.body) == ("[912] 배치 지연", "알림", "결제 오류율 34%")


def test_unknown_charsets_and_broken_encodings_never_fail() -> None:
    raw = (b"From: alerts@example.com\r\nSubject: =?x-unknown?Q?caf=E9?= \xff\xfe broken\r\n"
           b"Content-Type: text/plain; charset=x-no-such-charset\r\n\r\ncaf\xc3\xa9 \xff ok\r\n")
    mail = parse_mail(raw)
    assert "broken" in mail.subject
    assert mail.body == "café \ufffd ok"


def test_a_mail_forwarded_inline_and_one_forwarded_as_attachment() -> None:
    inline = (b"From: Kim <kim@example.com>\r\nSubject: Fwd: [911] payments-api down\r\n\r\n"
              b"look at this\r\n\r\n---------- Forwarded message ---------\r\nFrom: alerts@monitor.example.com\r\n"
              b"Subject: [911] payments-api down\r\n\r\nerror rate 34%\r\n")
    mail = parse_mail(inline)
    assert mail.subject == "Fwd: [911] payments-api down" and "error rate 34%" in mail.body
    attached = (b"From: Kim <kim@example.com>\r\nSubject: Fwd: alert\r\nMIME-Version: 1.0\r\n"
                b'Content-Type: multipart/mixed; boundary="m"\r\n\r\n'
                b"--m\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
                b"--m\r\nContent-Type: message/rfc822\r\n\r\n"
                b"From: Monitor <alerts@monitor.example.com>\r\n"
                b"Subject: =?utf-8?q?=5B911=5D_checkout_=E2=80=94_down?=\r\n"
                b"Content-Type: text/html\r\n\r\n<p>checkout &mdash; error rate 34%</p>\r\n--m--\r\n")
    mail = parse_mail(attached)
    assert mail.from_address == "kim@example.com"  # the outer mail is what was delivered and authenticated
    assert mail.body.splitlines() == ["see attached", "", "---------- Forwarded message ----------",
                                      "From: Monitor <alerts@monitor.example.com>", "Subject: [911] checkout — down",
                                      "", "checkout — error rate 34%"]


def test_from_must_name_exactly_one_address() -> None:
    assert parse_mail(b"From: a@example.com, b@example.com\r\nSubject: x\r\n\r\n").from_address == ""
    assert parse_mail(b"Subject: x\r\n\r\n").from_address == ""
    doubled = parse_mail(b"From: a@example.com\r\nFrom: b@example.com\r\nSubject: x\r\n\r\n")
    assert doubled.count("from") == 2


def test_a_mail_without_subject_message_id_or_date() -> None:
    mail = parse_mail(b"From: alerts@example.com\r\n\r\nonly a body\r\n")
    assert (mail.subject, mail.message_id, mail.date, mail.body) == ("", "", None, "only a body")


def test_html_to_text_keeps_lines_and_drops_markup() -> None:
    assert html_to_text("<div>a&nbsp;b</div><div>c</div>\n\n\n<p>d</p>") == "a b\n\nc\n\nd"
