"""Slack: slash command to reply, and slash command to lamp apply, against a real daemon.

One real `lamplighter run` with one `virtual://desk` lamp and a Slack source whose
`api_url` points at tests/peers/fake_slack.py in this process: Slack's Web API and Socket
Mode websocket on loopback. Per iteration over Socket Mode: send a `/911` envelope and time
its acknowledgement (which carries the reply the sender sees; Slack allows 3 s), wait for
the red state on GET /lamp/desk/events (command -> lamp apply), then `/lamp ack` and wait for
the restore. Over HTTP, the same with a signed POST /hooks/slack, when the daemon's webhook
route answers with the reply (the `answer` hook); otherwise that part is reported as not wired.

    .venv/bin/python bench/slack.py [--commands 200] [--gap-ms 25] [--warmup 5]

Prints a report and writes bench/results/slack.json. Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from bench._stats import SseReader, daemon, format_summary, machine, machine_line, summary_ms, write_results
from tests.peers.fake_slack import APP_TOKEN, BOT_TOKEN, SIGNING_SECRET, FakeSlack, form_body, signed_headers

LAMP = "desk"
RED = "#ff0000"
WAIT_SECONDS = 5.0
ENVIRONMENT = {"SLACK_APP_TOKEN": APP_TOKEN, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET}


def config(slack: FakeSlack) -> str:
    return f"""\
lamps: {{{LAMP}: virtual://{LAMP}}}
guards:
  rate_limit:
    per_sender: {{every: 1ms, burst: 100000}}
    per_source: {{every: 1ms, burst: 100000}}
sources:
  - type: slack
    app_token: ${{SLACK_APP_TOKEN}}
    bot_token: ${{SLACK_BOT_TOKEN}}
    signing_secret: ${{SLACK_SIGNING_SECRET}}
    api_url: {slack.api_url}
"""


def red_titled(title: str) -> Callable[[dict[str, Any]], bool]:
    def check(view: dict[str, Any]) -> bool:
        state, showing = view.get("state") or {}, view.get("showing") or {}
        return bool(state.get("on")) and state.get("color") == RED and showing.get("title") == title
    return check


def restored(view: dict[str, Any]) -> bool:
    return view.get("showing") is None and not (view.get("state") or {}).get("on")


Send = Callable[[str], Awaitable[dict[str, Any]]]


async def cycle(send: Send, ack: Callable[[], Awaitable[object]], sse: SseReader, title: str) -> dict[str, Any]:
    """One /911 -> red -> /lamp ack -> restored cycle; seconds from the send."""
    began = time.perf_counter()
    reply = await send(title)
    replied = time.perf_counter() - began
    red, _ = await asyncio.to_thread(sse.wait_for, red_titled(title), WAIT_SECONDS)
    row: dict[str, Any] = {"reply": replied, "text": reply.get("text", ""), "lamp": None if red is None
                           else red[0] - began}
    await asyncio.sleep(0.025)  # let the virtual driver's 20 ms min_interval pass
    await ack()
    back, _ = await asyncio.to_thread(sse.wait_for, restored, WAIT_SECONDS)
    row["restored"] = back is not None
    return row


def socket_send(slack: FakeSlack) -> tuple[Send, Callable[[], Awaitable[object]]]:
    async def send(title: str) -> dict[str, Any]:
        return dict((await slack.slash_command(text=title))["payload"])

    async def ack() -> object:
        return await slack.slash_command(command="/lamp", text="ack")
    return send, ack


def http_send(client: httpx.AsyncClient) -> tuple[Send, Callable[[], Awaitable[object]]]:
    counter = iter(range(10**9))

    async def post(**fields: str) -> dict[str, Any]:
        body = form_body(trigger_id=f"bench.{next(counter)}", **fields)
        response = await client.post("/hooks/slack", content=body, headers=signed_headers(body))
        if response.status_code != 200 or "response_type" not in response.json():
            raise NotWired(f"POST /hooks/slack answered {response.status_code} {response.text[:200]}")
        return dict(response.json())

    async def send(title: str) -> dict[str, Any]:
        return await post(text=title)

    async def ack() -> object:
        return await post(command="/lamp", text="ack")
    return send, ack


class NotWired(Exception):
    """The daemon's webhook route does not answer with the reply yet."""


async def measure(label: str, sender: tuple[Send, Callable[[], Awaitable[object]]], sse: SseReader,
                  commands: int, warmup: int, gap: float, problems: list[str]) -> list[dict[str, Any]]:
    send, ack = sender
    rows = []
    for i in range(-warmup, commands):
        row = await cycle(send, ack, sse, f"bench {label} {time.time():.0f} #{i}")
        if row["lamp"] is None or not row["restored"] or not row["text"].startswith("💡"):
            problems.append(f"{label} #{i}: reply {row['text'][:80]!r}, red {row['lamp']}, restored {row['restored']}")
            if len(problems) > 20:
                break
        elif i >= 0:
            rows.append(row)
        await asyncio.sleep(gap)
    return rows


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"command_to_reply_ms": summary_ms([r["reply"] for r in rows]),
            "command_to_lamp_ms": summary_ms([r["lamp"] for r in rows])}


async def run(commands: int, gap: float, warmup: int) -> dict[str, Any]:
    info = machine()
    print(machine_line(info))
    print(f"slack: {commands} commands per path (+{warmup} warm-up), gap {gap * 1000:.0f} ms, lamp virtual://{LAMP}")
    os.environ.update(ENVIRONMENT)  # the daemon reads its secrets from ${ENV}, as a user's would
    problems: list[str] = []
    result: dict[str, Any] = {"machine": info, "params": {"commands": commands, "warmup": warmup,
                                                          "gap_ms": gap * 1000}}
    async with FakeSlack() as slack:
        started = daemon("slack", config(slack))
        d = await asyncio.to_thread(started.__enter__)  # in a thread: the fake Slack answers meanwhile
        try:
            await slack.connected()
            sse = SseReader(d, LAMP)
            sse.open()
            result["socket_mode"] = summary(await measure("socket", socket_send(slack), sse, commands, warmup, gap,
                                                          problems))
            async with httpx.AsyncClient(base_url=d.url, timeout=10) as client:
                try:
                    result["http"] = summary(await measure("http", http_send(client), sse, commands, warmup, gap,
                                                           problems))
                except NotWired as exc:
                    result["http"] = {"not_wired": str(exc)}
            sse.close()
        finally:
            await asyncio.to_thread(started.__exit__, None, None, None)
        result["daemon_stop_s"] = round(d.stop_seconds, 2)  # type: ignore[attr-defined]
    result["problems"] = problems
    return result


def report(result: dict[str, Any]) -> None:
    for path in ("socket_mode", "http"):
        found = result.get(path, {})
        if "not_wired" in found:
            print(f"{path}: not measured: {found['not_wired']}")
            continue
        print(format_summary(f"{path}: slash command -> reply (Slack allows 3000 ms)", found["command_to_reply_ms"]))
        print(format_summary(f"{path}: slash command -> lamp red on SSE", found["command_to_lamp_ms"]))
    for problem in result["problems"]:
        print(f"PROBLEM: {problem}")
    print(f"daemon stopped in {result['daemon_stop_s']} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=200, help="measured commands per path (default 200)")
    parser.add_argument("--gap-ms", type=float, default=25.0, help="pause after each cycle (default 25)")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured commands first (default 5)")
    args = parser.parse_args()
    result = asyncio.run(run(args.commands, args.gap_ms / 1000, args.warmup))
    report(result)
    print(f"results: {write_results('slack', result)}")


if __name__ == "__main__":
    main()
