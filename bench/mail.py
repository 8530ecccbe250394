"""Mail latency: a 911 mail APPENDed to Dovecot (IMAP IDLE), or sent over SMTP, to the lamp turning red.

One real `lamplighter run` with one `virtual://desk` lamp, an `imap` source on a real
Dovecot (tests/peers/dovecot.py) and an `smtp` source with a pinned DKIM key. Per mail: a
911 of its own incident (authenticated: the sample's Authentication-Results for IMAP, a
DKIM signature for SMTP), then wait for the red state on GET /lamp/desk/events, ack it
over the API, wait for the restore, pause.

    .venv/bin/python bench/mail.py [--mails 50] [--gap-ms 50]

Measured (time.perf_counter in this process; "stored" from the event's received_at, the
daemon's wall clock, against time.time() here):
    IMAP  APPEND sent -> event stored; APPEND sent -> lamp red on the SSE stream
    SMTP  DATA sent -> 250 (the event is stored before the 250); DATA sent -> lamp red
Prints a report and writes bench/results/mail.json. Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import smtplib
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from imapclient import IMAPClient

from bench._stats import SseReader, daemon, format_summary, machine, machine_line, summary_ms, write_results
from tests.daemon import free_port
from tests.mail_signing import SigningKey, make_key, sample, variant
from tests.peers.dovecot import PASSWORD, USER, Dovecot

RED = "#ff0000"
WAIT_SECONDS = 5.0
RECIPIENT = "lamp@lamplighter.test"


def config(server: Dovecot, smtp_port: int, key: SigningKey, state_file: Path) -> str:
    rules = r"""
    rules:
      - match: {subject: '\[911\]\s*(?P<service>[\w.-]+):'}
        level: "911"
        key: "{service}"
"""
    return f"""\
lamps: {{desk: virtual://desk}}
guards:
  dedup_window: 0s
  rate_limit:
    per_sender: {{every: 1ms, burst: 100000}}
    per_source: {{every: 1ms, burst: 100000}}
sources:
  - type: imap
    name: imap
    host: 127.0.0.1
    port: {server.port}
    tls: none
    username: {USER}
    password: {PASSWORD}
    authserv_id: mx.example.com
    senders: [alerts@monitor.example.com]
    state_file: {state_file}
{rules}
  - type: smtp
    name: smtp
    listen: 127.0.0.1:{smtp_port}
    recipients: [{RECIPIENT}]
    senders: [alerts@monitor.example.com]
    require: dkim
    dkim_dns: false
    dkim_keys: {{'{key.dns_name}': '{key.record}'}}
{rules}"""


def mail(run_id: str, path: str, i: int) -> bytes:
    service = f"{path}-{run_id}-{i}"
    return variant(sample("mail-911"), subject=f"[911] {service}: error rate 34%",
                   message_id=f"<{service}@monitor.example.com>")


def red_with(title: str) -> Callable[[dict[str, Any]], bool]:
    def check(view: dict[str, Any]) -> bool:
        state, showing = view.get("state") or {}, view.get("showing") or {}
        return state.get("color") == RED and showing.get("title") == title
    return check


def is_restored_to(initial: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    return lambda view: view.get("showing") is None and view.get("state") == initial


def run(mails: int, gap: float) -> dict[str, Any]:
    info = machine()
    print(machine_line(info))
    print(f"mail: {mails} mails per path, gap {gap * 1000:.0f} ms, lamp virtual://desk, Dovecot IMAP IDLE + SMTP")
    run_id = f"{time.time():.0f}"
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="lamplighter-bench-mail-") as tmp, Dovecot().start() as server:
        key = make_key(Path(tmp))
        smtp_port = free_port()
        with daemon("mail", config(server, smtp_port, key, Path(tmp) / "positions.json")) as d:
            wait_until(lambda: (Path(tmp) / "positions.json").exists(), "the IMAP source's first look")
            sse = SseReader(d, "desk")
            initial = sse.open()["state"]
            with d.client() as api:
                imap_rows = imap_path(server, api, sse, initial, run_id, mails, gap, problems)
                smtp_rows = smtp_path(smtp_port, key, api, sse, initial, run_id, mails, gap, problems)
            sse.close()
    return {
        "machine": info,
        "params": {"mails": mails, "gap_ms": gap * 1000},
        "imap_append_to_stored_ms": summary_ms([r["stored"] for r in imap_rows], (50, 90, 95, 99)),
        "imap_append_to_lamp_ms": summary_ms([r["red"] for r in imap_rows], (50, 90, 95, 99)),
        "imap_append_round_trip_ms": summary_ms([r["append_rtt"] for r in imap_rows]),
        "smtp_data_to_250_ms": summary_ms([r["stored"] for r in smtp_rows], (50, 90, 95, 99)),
        "smtp_data_to_lamp_ms": summary_ms([r["red"] for r in smtp_rows], (50, 90, 95, 99)),
        "problems": problems,
        "imap_rows": imap_rows,
        "smtp_rows": smtp_rows,
    }


def imap_path(server: Dovecot, api: httpx.Client, sse: SseReader, initial: dict[str, Any], run_id: str, mails: int,
              gap: float, problems: list[str]) -> list[dict[str, Any]]:
    rows = []
    deliverer = IMAPClient("127.0.0.1", port=server.port, ssl=False, timeout=10)
    deliverer.login(USER, PASSWORD)
    try:
        for i in range(mails):
            raw = mail(run_id, "imap", i)
            wall, t0 = time.time(), time.perf_counter()
            deliverer.append("INBOX", raw)
            row: dict[str, Any] = {"i": i, "append_rtt": time.perf_counter() - t0}
            if not lamp_cycle(api, sse, initial, raw, t0, wall, row, problems):
                break
            rows.append(row)
            time.sleep(gap)
    finally:
        deliverer.logout()
    return rows


def smtp_path(port: int, key: SigningKey, api: httpx.Client, sse: SseReader, initial: dict[str, Any], run_id: str,
              mails: int, gap: float, problems: list[str]) -> list[dict[str, Any]]:
    rows = []
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("monitor.example.com")
        for i in range(mails):
            raw = key.sign(mail(run_id, "smtp", i))
            client.mail("bounce@monitor.example.com")
            client.rcpt(RECIPIENT)
            wall, t0 = time.time(), time.perf_counter()
            code, text = client.data(raw)
            row: dict[str, Any] = {"i": i, "stored": time.perf_counter() - t0}
            if code != 250:
                problems.append(f"smtp #{i}: {code} {text.decode()}")
                break
            if not lamp_cycle(api, sse, initial, raw, t0, wall, row, problems, stored_known=True):
                break
            rows.append(row)
            time.sleep(gap)
    return rows


def lamp_cycle(api: httpx.Client, sse: SseReader, initial: dict[str, Any], raw: bytes, t0: float, wall: float,
               row: dict[str, Any], problems: list[str], stored_known: bool = False) -> bool:
    """Wait for red with this mail's title, note when it was stored, ack it, wait for the restore."""
    title = raw.split(b"Subject: [911] ", 1)[1].split(b"\n", 1)[0].decode().strip()
    red, _ = sse.wait_for(red_with(title), WAIT_SECONDS)
    if red is None:
        problems.append(f"{title}: no red lamp within {WAIT_SECONDS} s")
        return False
    row["red"] = red[0] - t0
    event_id = red[1]["showing"]["event_id"]
    if not stored_known:
        stored = api.get("/api/events", params={"limit": 5}).json()
        row["stored"] = next(e["received_at"] for e in stored if e["id"] == event_id) - wall
    time.sleep(0.025)  # the virtual driver's min_interval
    api.post(f"/api/events/{event_id}/ack", json={"by": "bench"})
    back, _ = sse.wait_for(is_restored_to(initial), WAIT_SECONDS)
    if back is None:
        problems.append(f"{title}: no restore within {WAIT_SECONDS} s")
        return False
    return True


def wait_until(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.01)


def report(result: dict[str, Any]) -> None:
    print(format_summary("IMAP: APPEND -> event stored", result["imap_append_to_stored_ms"]))
    print(format_summary("IMAP: APPEND -> lamp red on SSE", result["imap_append_to_lamp_ms"]))
    print(format_summary("IMAP: APPEND round trip (Dovecot)", result["imap_append_round_trip_ms"]))
    print(format_summary("SMTP: DATA -> 250 (stored)", result["smtp_data_to_250_ms"]))
    print(format_summary("SMTP: DATA -> lamp red on SSE", result["smtp_data_to_lamp_ms"]))
    for problem in result["problems"]:
        print(f"PROBLEM: {problem}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=50, help="mails per path (default 50)")
    parser.add_argument("--gap-ms", type=float, default=50.0, help="pause after each restore (default 50)")
    args = parser.parse_args()
    result = run(args.mails, args.gap_ms / 1000)
    report(result)
    print(f"results: {write_results('mail', result)}")


if __name__ == "__main__":
    main()
