"""The Home Assistant app's start: Lamplighter's configuration from the app's options, then `lamplighter run`.

The Supervisor writes the options the user set to /data/options.json and, when a Mosquitto
app provides MQTT (`services: [mqtt:want]`), tells its broker and credentials at
http://supervisor/services/mqtt. This writes /data/lamplighter.yaml with `${NAME}` in place
of every secret and hands the secrets to Lamplighter in its environment, so the file holds none.
Plain Python (the standard library and PyYAML, which Lamplighter needs anyway) instead of bashio.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

DATA = Path(os.environ.get("LAMPLIGHTER_ADDON_DATA", "/data"))
LISTEN = "0.0.0.0:8911"
MQTT_SERVICE = "http://supervisor/services/mqtt"
LEVEL_FIELDS = ("color", "effect", "brightness", "hold", "priority")


class OptionsError(Exception):
    """The options ask for something this installation cannot give (e.g. MQTT without a broker)."""


def build_config(options: Mapping[str, Any], mqtt: Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, str]]:
    """Lamplighter's configuration for these options and this broker, and the secrets it names."""
    secrets: dict[str, str] = {}
    server: dict[str, Any] = {"listen": LISTEN}
    if options.get("token"):
        server["token"] = "${LAMPLIGHTER_TOKEN}"
        secrets["LAMPLIGHTER_TOKEN"] = options["token"]
    config: dict[str, Any] = {
        "server": server,
        "state_dir": str(DATA / "state"),
        "lamps": {lamp["name"]: lamp["url"] for lamp in options.get("lamps", [])},
    }
    levels = {level["name"]: {key: level[key] for key in LEVEL_FIELDS if level.get(key) is not None}
              for level in options.get("levels", [])}
    if levels:
        config["levels"] = levels
    sources: list[dict[str, Any]] = []
    if options.get("alertmanager_token"):
        sources.append({"type": "alertmanager", "name": "alertmanager", "token": "${ALERTMANAGER_TOKEN}"})
        secrets["ALERTMANAGER_TOKEN"] = options["alertmanager_token"]
    wants_mqtt = bool(options.get("frigate")) or bool(options.get("mqtt_topics"))
    if wants_mqtt:
        if mqtt is None:
            raise OptionsError("frigate and mqtt_topics need an MQTT broker: install the Mosquitto broker app "
                               "(or turn them off)")
        broker = _broker(mqtt, secrets)
        if options.get("frigate"):
            frigate = {"type": "frigate", **broker}
            if options.get("frigate_cameras"):
                frigate["cameras"] = list(options["frigate_cameras"])
            sources.append(frigate)
        if options.get("mqtt_topics"):
            topics = [{"topic": rule["topic"], "level": rule["level"], "title": rule["title"]}
                      for rule in options["mqtt_topics"]]
            sources.append({"type": "mqtt", "name": "mqtt", **broker, "topics": topics})
    if sources:
        config["sources"] = sources
    return config, secrets


def _broker(mqtt: Mapping[str, Any], secrets: dict[str, str]) -> dict[str, Any]:
    """A source's broker settings from the Supervisor's MQTT service; the password goes to `secrets`."""
    broker: dict[str, Any] = {"broker": f"{mqtt['host']}:{mqtt['port']}", "tls": bool(mqtt.get("ssl"))}
    if mqtt.get("username"):
        broker["username"] = mqtt["username"]
    if mqtt.get("password"):
        broker["password"] = "${MQTT_PASSWORD}"
        secrets["MQTT_PASSWORD"] = mqtt["password"]
    return broker


def supervisor_mqtt(environ: Mapping[str, str]) -> dict[str, Any] | None:
    """The Supervisor's MQTT service (host, port, ssl, username, password), or None without one."""
    token = environ.get("SUPERVISOR_TOKEN")
    if not token:
        return None
    request = urllib.request.Request(MQTT_SERVICE, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            data: dict[str, Any] | None = json.load(answer).get("data")
    except OSError:  # no MQTT service: the Supervisor answers 400
        return None
    return data or None


def main() -> None:
    options = json.loads((DATA / "options.json").read_text(encoding="utf-8"))
    wants_mqtt = bool(options.get("frigate")) or bool(options.get("mqtt_topics"))
    try:
        config, secrets = build_config(options, supervisor_mqtt(os.environ) if wants_mqtt else None)
    except OptionsError as exc:
        sys.exit(f"lamplighter: {exc}")
    path = DATA / "lamplighter.yaml"
    path.write_text("# written by the app from its options at every start; change the options instead\n"
                    + yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    command = ["lamplighter", "run", "-c", str(path)] + (["--verbose"] if options.get("log_level") == "debug" else [])
    executable = Path(sys.executable).parent / "lamplighter"
    os.execve(executable, command, {**os.environ, **secrets})


if __name__ == "__main__":
    main()
