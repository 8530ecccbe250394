"""`lamplighter discover`: find the lamps on this network and print their lamp URLs, ready to paste.

Progress goes to stderr (a line per protocol as it finishes; on a terminal also a live line
of counts), results to stdout: a table, how to finish a Hue bridge's URL, and a `lamps:`
block named after the devices' own labels. Exit status 1 when nothing answered.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import shutil
import sys
import unicodedata
from collections.abc import Sequence

import click
import yaml

from lamplighter.drivers.base import LampUrl
from lamplighter.drivers.discovery import DEFAULT_PORTS, SCANNERS, Found, Outcome, Scanner, Target, scan

KINDS = [scanner.kind for scanner in SCANNERS]
CLEAR_LINE = "\r\033[K"

NOTHING_FOUND = """\
No lamps answered within {timeout:g} s. Things to check:
  - Is this computer on the same network as the lamps? Guest Wi-Fi, "AP/client isolation"
    and separate VLANs keep devices apart; so can a VPN.
  - A firewall here may drop the lamps' answers (UDP from the lamps; mDNS on UDP 5353).
  - Some routers block UDP broadcast and multicast: try --target with your network's
    broadcast address (e.g. 192.168.1.255) or one lamp's own IP address.
  - Yeelight and Govee answer only with "LAN Control" switched on in their apps.
  - A busy network may need longer: try --timeout 10."""

HUE_HINT = """\
The Hue bridge at {host} needs an app key: press its link button, then within 30 seconds run
  curl -X POST http://{host}/api -d '{{"devicetype":"lamplighter#discover"}}'
The "username" in its answer is the APPKEY. The lights and their numbers (the ID) are listed by
  curl -k https://{address}/api/APPKEY/lights"""


def _ip_address(context: click.Context, parameter: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise click.BadParameter(f"{value!r} is not an IP address (e.g. 192.168.1.255)") from None
    return value


def _chosen(context: click.Context, parameter: click.Parameter, only: str | None) -> list[Scanner]:
    if only is None:
        return list(SCANNERS)
    wanted = {kind.strip().lower() for kind in only.split(",") if kind.strip()}
    unknown = sorted(wanted - set(KINDS))
    if unknown or not wanted:
        raise click.BadParameter(f"{', '.join(unknown) or only!r} is not one of {','.join(KINDS)}")
    return [scanner for scanner in SCANNERS if scanner.kind in wanted]


def _parse_ports(context: click.Context, parameter: click.Parameter, values: tuple[str, ...]) -> dict[str, int]:
    ports = {}
    for value in values:
        name, _, number = value.partition("=")
        if name not in DEFAULT_PORTS or not number.isdigit() or not 0 < int(number) < 65536:
            raise click.BadParameter(f"{value!r} is not NAME=PORT with NAME one of {', '.join(DEFAULT_PORTS)}")
        ports[name] = int(number)
    return ports


@click.command(short_help="Find the lamps on this network and print their URLs.")
@click.option("--timeout", type=click.FloatRange(min=0.1, max=120), default=3.0, show_default=True,
              help="Seconds to listen for answers.")
@click.option("--target", "--broadcast", "target", metavar="ADDRESS", default=None, callback=_ip_address,
              help="Ask here instead of each protocol's broadcast or multicast address: your network's "
                   "broadcast address (e.g. 192.168.1.255), one lamp's IP, or 127.0.0.1 for an emulator. "
                   "Hue and WLED are then browsed on the interface that reaches it.")
@click.option("--only", "scanners", metavar="KINDS", default=None, callback=_chosen,
              help=f"Comma-separated, from: {','.join(KINDS)} (default: all).")
@click.option("--port", "ports", multiple=True, metavar="NAME=PORT", callback=_parse_ports,
              help=f"Ask on another UDP port, for emulators; NAME is one of {', '.join(DEFAULT_PORTS)}. Repeatable.")
@click.option("-v", "--verbose", is_flag=True, help="Log what the device libraries do.")
def discover(timeout: float, target: str | None, scanners: list[Scanner], ports: dict[str, int],
             verbose: bool) -> None:
    """Find LIFX, WiZ, Yeelight, Kasa and Govee lamps, Hue bridges and WLED on this network."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.ERROR,
                        format="%(levelname)s %(name)s: %(message)s")
    progress = StatusLine(scanners, live=sys.stderr.isatty())
    progress.start(timeout)
    outcomes = asyncio.run(scan(scanners, Target(target, ports), timeout, progress))
    found = [device for outcome in outcomes for device in sorted(outcome.found, key=lambda d: d.url)]
    if not found:
        click.echo(NOTHING_FOUND.format(timeout=timeout))
        raise SystemExit(1)
    click.echo(_results(found))


class StatusLine:
    """Progress on stderr: a line per protocol as it finishes; on a terminal also a live line of counts."""

    def __init__(self, scanners: Sequence[Scanner], live: bool) -> None:
        self._scanning = {scanner.title: 0 for scanner in scanners}
        self._live = live
        self._shown = False

    def start(self, timeout: float) -> None:
        if not self._live:
            click.echo(f"scanning {', '.join(self._scanning)} for {timeout:g} s…", err=True)
        self._redraw()

    def found(self, scanner: Scanner, count: int) -> None:
        self._scanning[scanner.title] = count
        self._redraw()

    def finished(self, outcome: Outcome) -> None:
        self._scanning.pop(outcome.scanner.title, None)
        self._clear()
        click.echo(f"{outcome.scanner.title}: {_summary(outcome)}", err=True)
        self._redraw()

    def _redraw(self) -> None:
        if self._live and self._scanning:
            text = "scanning " + ", ".join(f"{title}… {count} found" for title, count in self._scanning.items())
            click.echo(CLEAR_LINE + text[: shutil.get_terminal_size().columns - 1], err=True, nl=False, color=True)
            self._shown = True

    def _clear(self) -> None:
        if self._shown:
            click.echo(CLEAR_LINE, err=True, nl=False, color=True)
            self._shown = False


def _summary(outcome: Outcome) -> str:
    if outcome.skipped:
        return f"skipped: {outcome.skipped}"
    found = f"{len(outcome.found)} found"
    return f"{found}, then failed: {outcome.failed}" if outcome.failed else found


def _results(found: list[Found]) -> str:
    names = lamp_names(found)
    sections = [_table(found), *(_hue_hint(device.url) for device in found if device.kind == "hue"),
                lamps_block(found, names)]
    return "\n\n".join(sections)


def _table(found: list[Found]) -> str:
    rows = [("NAME", "MODEL", "URL", "DETAIL")] + [(d.name or "-", d.model or "-", d.url, d.detail) for d in found]
    widths = [max(len(row[column]) for row in rows) for column in range(3)]  # the last column runs on
    lines = ("  ".join([*(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)), row[3]])
             for row in rows)
    return "\n".join(line.rstrip() for line in lines)


def _hue_hint(url: str) -> str:
    bridge = LampUrl.parse(url)
    address = f"{bridge.host}:{bridge.port}" if bridge.port else bridge.host
    return HUE_HINT.format(host=bridge.host, address=address)


def lamps_block(found: list[Found], names: list[str]) -> str:
    """The `lamps:` block to paste; URLs still to be completed are there as comments."""
    ready = {name: device.url for name, device in zip(names, found, strict=True) if device.complete}
    block = yaml.safe_dump({"lamps": ready}, sort_keys=False, allow_unicode=True, width=1000).rstrip("\n")
    todo = [f"  # {name}: {device.url}   # fill in {device.todo}"
            for name, device in zip(names, found, strict=True) if not device.complete]
    return "\n".join(["# Paste into lamplighter.yaml (merge with the lamps: you have):", block, *todo])


def lamp_names(found: list[Found]) -> list[str]:
    """A lamp name for each device, from its own label (else its kind), unique: desk, desk_2, wiz, wiz_2."""
    names: list[str] = []
    for device in found:
        base = _slug(device.name) or device.kind
        name, number = base, 1
        while name in names:
            number += 1
            name = f"{base}_{number}"
        names.append(name)
    return names


def _slug(text: str) -> str:
    """`Küche Decke 2` -> `kuche_decke_2`."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")
