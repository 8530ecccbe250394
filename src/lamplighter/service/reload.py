"""Reloading the configuration: what changed between two valid configurations, and where signals go now.

Both functions are pure; the service (core.py) checks the new file, asks `diff_configs`
what to rebuild, and swaps the parts in:

- a lamp or siren is kept (with its controller, memory and restore snapshot) while its
  kind and URL, options included, are the same; a new URL or kind replaces it;
- a source is kept running while its validated settings are equal; otherwise it restarts;
- settings the running daemon cannot take (the listen address, the token, the state
  directory, the HTTP limits) are listed as needing a restart and keep their old value;
- `retarget` moves an active signal to its level's new look, lamps and sirens.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from lamplighter.config import Config, ServerConfig
from lamplighter.model import Level, Signal
from lamplighter.rules.router import level_lamps
from lamplighter.sources.base import SourceSettings

RESTART_ONLY = ("state_dir",)  # top-level keys the running daemon cannot change (besides `server`)


@dataclass(frozen=True)
class Changes:
    """What a reload changes. Lamps include sirens (both are outputs the service drives)."""

    lamps_added: tuple[str, ...] = ()
    lamps_removed: tuple[str, ...] = ()
    lamps_replaced: tuple[str, ...] = ()  # same name, another URL (or kind): the old one is put back first
    levels_changed: tuple[str, ...] = ()  # added, removed or with another look or policy
    guards_changed: bool = False
    sources_added: tuple[str, ...] = ()
    sources_removed: tuple[str, ...] = ()
    sources_restarted: tuple[str, ...] = ()
    needs_restart: tuple[str, ...] = ()  # paths whose new value applies only after a restart

    def to_json(self) -> dict[str, Any]:
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v for f in fields(self)}

    def summary(self) -> str:
        """One line for the log and the CLI, e.g. `lamps added: porch; needs a restart: server.listen`."""
        parts = [f"{f.name.replace('_', ' ')}: {', '.join(value)}" for f in fields(self)
                 if isinstance(value := getattr(self, f.name), tuple) and value and f.name != "needs_restart"]
        if self.guards_changed:
            parts.append("guards changed")
        if self.needs_restart:
            parts.append(f"needs a restart: {', '.join(self.needs_restart)}")
        return "; ".join(parts) or "nothing changed"


def diff_configs(old: Config, new: Config, old_sources: Mapping[str, SourceSettings],
                 new_sources: Mapping[str, SourceSettings]) -> Changes:
    """What changes from `old` to `new`; the sources are given by name with their validated settings."""
    before, after = _outputs(old), _outputs(new)
    old_levels, new_levels = old.resolved_levels(), new.resolved_levels()
    return Changes(
        lamps_added=_names(after.keys() - before.keys(), after),
        lamps_removed=_names(before.keys() - after.keys(), before),
        lamps_replaced=_names({n for n in before.keys() & after.keys() if before[n] != after[n]}, after),
        levels_changed=_names({n for n in old_levels.keys() | new_levels.keys()
                               if old_levels.get(n) != new_levels.get(n)}, {**old_levels, **new_levels}),
        guards_changed=old.guards != new.guards,
        sources_added=_names(new_sources.keys() - old_sources.keys(), new_sources),
        sources_removed=_names(old_sources.keys() - new_sources.keys(), old_sources),
        sources_restarted=_names({n for n in old_sources.keys() & new_sources.keys()
                                  if not _same_settings(old_sources[n], new_sources[n])}, new_sources),
        needs_restart=_needs_restart(old, new),
    )


def _outputs(config: Config) -> dict[str, tuple[str, str]]:
    """Every lamp and siren by name, as (kind, URL)."""
    return {**{n: ("lamp", url) for n, url in config.lamps.items()},
            **{n: ("siren", url) for n, url in config.sirens.items()}}


def _names(names: set[str] | frozenset[str], order: Mapping[str, object]) -> tuple[str, ...]:
    """`names` in the order of the file (of `order`), so summaries read like the file."""
    return tuple(n for n in order if n in names)


def _same_settings(old: SourceSettings, new: SourceSettings) -> bool:
    return type(old) is type(new) and old == new


def _needs_restart(old: Config, new: Config) -> tuple[str, ...]:
    server = [f"server.{name}" for name in ServerConfig.model_fields
              if getattr(old.server, name) != getattr(new.server, name)]
    return (*server, *(name for name in RESTART_ONLY if getattr(old, name) != getattr(new, name)))


def in_effect(old: Config, new: Config) -> Config:
    """The configuration a reload leaves running: the new one, with the settings that need a restart kept."""
    return new.model_copy(update={"server": old.server, **{name: getattr(old, name) for name in RESTART_ONLY}})


def retarget(signal: Signal, before: Level | None, after: Level, lamps_before: frozenset[str],
             lamps_after: frozenset[str], sirens_after: frozenset[str]) -> Signal:
    """An active signal under its level's new settings: look, priority, sirens and escalation follow the
    level. A signal on the lamps its level named goes to the lamps it names now; one whose event named
    its own lamps keeps those that still exist."""
    followed_level = before is not None and signal.lamps == level_lamps(before, lamps_before)
    lamps = level_lamps(after, lamps_after) if followed_level else signal.lamps & lamps_after
    sirens = frozenset(after.sirens or ()) & sirens_after
    return replace(signal, priority=after.priority, look=after.look, lamps=lamps, sirens=sirens,
                   escalates_at=signal.started_at + after.escalate_after if sirens else None,
                   fallbacks=signal.fallbacks & (lamps_after | sirens_after))
