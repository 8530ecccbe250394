"""How client commands print: words for a person, or `--json` for a program.

Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org): a pipe, a
file or a log gets plain text. JSON is printed as the daemon's API answered it, one document
per command, so `lamplighter status --json | jq` works.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TextIO

import click

OUTCOME_COLOURS = {"shown": "green", "acknowledged": "green", "resolved": "green",
                   "throttled": "yellow", "quiet": "yellow", "deduplicated": "blue",
                   "unrouted": "red", "rejected": "red"}
LEVEL_COLOURS = {"911": "red", "912": "yellow", "door": "green"}


def colour_wanted(stream: TextIO) -> bool:
    """Colour for a terminal, unless NO_COLOR is set to anything but the empty string."""
    return not os.environ.get("NO_COLOR") and stream.isatty()


@dataclass(frozen=True)
class Output:
    as_json: bool

    def show(self, data: Any, lines: Iterable[str]) -> None:
        """Print `data` as JSON, or else the `lines` (which may carry colour styles)."""
        if self.as_json:
            click.echo(json.dumps(data, indent=2, ensure_ascii=False))
            return
        colour = colour_wanted(sys.stdout)
        for line in lines:
            click.echo(line, color=colour)


def outcome(word: str, text: str | None = None) -> str:
    """`text` (else the API's outcome `word`) in the outcome's colour: green shown, yellow held back, red not routed."""
    return click.style(word if text is None else text, fg=OUTCOME_COLOURS.get(word), bold=word == "shown")


def level(name: str) -> str:
    """A level's name (padding kept) in its lamp's colour."""
    return click.style(name, fg=LEVEL_COLOURS.get(name.strip()), bold=name.strip() == "911")


def problem(text: str) -> str:
    return click.style(text, fg="red", bold=True) if text else text
