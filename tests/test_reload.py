"""What a reload changes (service/reload.py), as tables: the diff between two configurations, and where an
active signal goes under its level's new settings."""

from __future__ import annotations

from dataclasses import replace

import pytest

from lamplighter.config import Config, parse_config
from lamplighter.model import Level, Signal, SystemClock
from lamplighter.service.reload import Changes, diff_configs, in_effect, retarget
from lamplighter.sources import build_sources
from lamplighter.sources.base import SourceSettings

BASE = """
lamps: {desk: virtual://desk, strip: "wled://10.0.0.31?segment=1"}
sirens: {bell: "virtual://bell"}
levels: {911: {hold: until_ack}}
sources:
  - {type: webhook, name: kuma, token: t0123456789abcdef, level: '911', title: '{msg}'}
  - {type: mqtt, name: home, broker: 10.0.0.2, topics: [{topic: door/#, level: door, title: door}]}
"""

HOOK = "  - {type: webhook, name: kuma, token: t0123456789abcdef, level: '911', title: '{msg}'}\n"
MQTT = "  - {type: mqtt, name: home, broker: 10.0.0.2, topics: [{topic: door/#, level: door, title: door}]}\n"


def parsed(text: str) -> Config:
    return parse_config(text, env={})


def settings(config: Config) -> dict[str, SourceSettings]:
    return {name: source.settings
            for name, source in build_sources([e.model_dump() for e in config.sources], SystemClock()).items()}


def changed(edit: tuple[str, str]) -> Changes:
    old = parsed(BASE)
    new = parsed(BASE.replace(*edit))
    return diff_configs(old, new, settings(old), settings(new))


@pytest.mark.parametrize(("edit", "expected"), [
    (("", ""), Changes()),
    (("lamps: {desk: virtual://desk,", "lamps: {porch: virtual://porch, desk: virtual://desk,"),
     Changes(lamps_added=("porch",))),
    (("desk: virtual://desk, ", ""), Changes(lamps_removed=("desk",))),
    (("segment=1", "segment=2"), Changes(lamps_replaced=("strip",))),  # an option is part of the URL
    (("wled://10.0.0.31", "wled://10.0.0.32"), Changes(lamps_replaced=("strip",))),
    (('{desk: virtual://desk, strip: "wled://10.0.0.31?segment=1"}\nsirens: {bell: "virtual://bell"}',
      '{strip: "wled://10.0.0.31?segment=1"}\nsirens: {desk: "virtual://desk"}'),  # a lamp became a siren
     Changes(lamps_removed=("bell",), lamps_replaced=("desk",), levels_changed=("911",))),
    (("lamps: {desk: virtual://desk, strip: \"wled://10.0.0.31?segment=1\"}",
      "lamps: {strip: \"wled://10.0.0.31?segment=1\", desk: virtual://desk}"), Changes()),  # order alone
    (("{hold: until_ack}", "{hold: until_ack, color: purple}"), Changes(levels_changed=("911",))),
    (("{911: {hold: until_ack}}", "{911: {hold: until_ack}, 912: {lamps: [desk]}}"), Changes(levels_changed=("912",))),
    (("{911: {hold: until_ack}}", "{911: {hold: until_ack}, deploy: {color: blue, priority: 50}}"),
     Changes(levels_changed=("deploy",))),
    (("levels:", "guards: {dedup_window: 5m}\nlevels:"), Changes(guards_changed=True)),
    (("lamps:", "server: {listen: 0.0.0.0:8911}\nlamps:"), Changes(needs_restart=("server.listen",))),
    (("lamps:", "server: {token: abcdefghijklmnopqrstuvwxyz}\nlamps:"), Changes(needs_restart=("server.token",))),
    (("lamps:", "server: {body_timeout: 5s}\nstate_dir: /srv/lamps\nlamps:"),
     Changes(needs_restart=("server.body_timeout", "state_dir"))),
    ((HOOK + MQTT, MQTT + HOOK), Changes()),  # sources are known by name, not by place
    (("broker: 10.0.0.2", "broker: 10.0.0.2, tls: false"), Changes()),  # a default written out
    (("door/#", "door/+"), Changes(sources_restarted=("home",))),
    (("broker: 10.0.0.2", "broker: '10.0.0.2:1883'"), Changes(sources_restarted=("home",))),
    (("t0123456789abcdef", "t0123456789abcdeX"), Changes(sources_restarted=("kuma",))),
    ((MQTT, ""), Changes(sources_removed=("home",))),
    ((MQTT, MQTT + MQTT.replace("home", "garden")), Changes(sources_added=("garden",))),
    ((MQTT, MQTT.replace("home", "garden")), Changes(sources_added=("garden",), sources_removed=("home",))),
], ids=lambda value: None if isinstance(value, Changes) else repr(value[1])[:40])
def test_what_a_reload_changes(edit: tuple[str, str], expected: Changes) -> None:
    assert changed(edit) == expected


def test_the_summary_names_every_change_and_what_needs_a_restart() -> None:
    changes = Changes(lamps_added=("porch",), lamps_removed=("strip", "hall"), guards_changed=True,
                      needs_restart=("server.listen",))
    assert changes.summary() == "lamps added: porch; lamps removed: strip, hall; guards changed; " \
                                "needs a restart: server.listen"
    assert Changes().summary() == "nothing changed"
    assert changes.to_json()["lamps_removed"] == ["strip", "hall"]


def test_settings_that_need_a_restart_keep_their_running_value() -> None:
    old = parsed("server: {listen: 127.0.0.1:8911}\nstate_dir: /a\nlamps: {desk: virtual://desk}\n")
    new = parsed("server: {listen: 0.0.0.0:9000}\nstate_dir: /b\nlamps: {porch: virtual://porch}\n")
    running = in_effect(old, new)
    assert (running.server.listen, str(running.state_dir), running.lamps) == ("127.0.0.1:8911", "/a",
                                                                               {"porch": "virtual://porch"})


LAMPS = frozenset({"desk", "strip", "porch"})
SIRENS = frozenset({"bell"})


def level_of(text: str, name: str = "911") -> Level:
    return parsed(f"lamps: {{desk: virtual://desk, strip: virtual://strip, porch: virtual://porch}}\n"
                  f"sirens: {{bell: virtual://bell}}\nlevels: {{{name}: {text}}}\n").resolved_levels()[name]


def signal_on(lamps: frozenset[str], before: Level) -> Signal:
    return Signal(7, "911", "k", "payments down", 300, before.look, lamps, 1000.0, None,
                  sirens=frozenset({"bell"}), escalates_at=1120.0)


@pytest.mark.parametrize(("before", "after", "on", "lamps_after", "expected_lamps"), [
    ("{hold: until_ack}", "{hold: until_ack, lamps: [porch]}", LAMPS, LAMPS, {"porch"}),  # follows its level
    ("{lamps: [desk]}", "{lamps: [desk, strip]}", {"desk"}, LAMPS, {"desk", "strip"}),
    ("{lamps: [desk]}", "{lamps: [desk, strip]}", {"porch"}, LAMPS, {"porch"}),  # the event named its own lamp
    ("{hold: until_ack}", "{hold: until_ack}", LAMPS, frozenset({"desk", "strip", "hall"}), {"desk", "strip", "hall"}),
    ("{lamps: [desk]}", "{lamps: [desk]}", {"porch"}, frozenset({"desk"}), set()),  # its own lamp was removed
])
def test_a_signal_goes_to_the_lamps_its_level_now_names(before: str, after: str, on: frozenset[str],
                                                        lamps_after: frozenset[str], expected_lamps: set[str]) -> None:
    old, new = level_of(before), level_of(after)
    moved = retarget(signal_on(frozenset(on), old), old, new, LAMPS, lamps_after, SIRENS)
    assert moved.lamps == expected_lamps


def test_a_signal_takes_its_levels_new_look_priority_and_escalation() -> None:
    old, new = level_of("{hold: until_ack}"), level_of("{color: purple, priority: 500, escalate_after: 5m}")
    signal = signal_on(LAMPS, old)
    moved = retarget(signal, old, new, LAMPS, LAMPS, SIRENS)
    assert (moved.look.color, moved.priority, moved.escalates_at) == ("#8000ff", 500, 1000.0 + 300)
    assert replace(moved, look=signal.look, priority=300, escalates_at=1120.0) == signal
    without_sirens = retarget(signal, old, new, LAMPS, LAMPS, frozenset())
    assert (without_sirens.sirens, without_sirens.escalates_at) == (frozenset(), None)
