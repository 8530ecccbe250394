"""The compose file and the Home Assistant app: they parse, name files that exist, and the app's run
script turns the app's options into a configuration `lamplighter check` accepts.

The app's image is built and started in tests/test_container.py; no Supervisor runs here (see
README, "Running it as a service", for what is not tested).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ADDON = ROOT / "packaging" / "home-assistant" / "lamplighter"
MQTT_SERVICE = {"addon": "core_mosquitto", "host": "core-mosquitto", "port": 1883, "ssl": False,
                "protocol": "3.1.1", "username": "addons", "password": "broker-secret-1"}
OPTIONS: dict[str, Any] = {  # as the Supervisor writes /data/options.json
    "lamps": [{"name": "desk", "url": "virtual://desk"}, {"name": "hall", "url": "wled://192.168.1.30"}],
    "levels": [{"name": "911", "color": "red", "effect": "blink"},
               {"name": "deploy", "color": "#0080ff", "priority": 50, "hold": "2m", "brightness": 60}],
    "token": "app-token-0123456789",
    "alertmanager_token": "am-token-0123456789",
    "frigate": True,
    "frigate_cameras": ["front"],
    "mqtt_topics": [{"topic": "zigbee2mqtt/doorbell", "level": "door", "title": "Doorbell"}],
    "log_level": "info",
}


def run_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("addon_run", ADDON / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def containerfile_healthcheck() -> list[str]:
    text = (ROOT / "Containerfile").read_text().replace("\\\n", " ")
    line = next(line for line in text.splitlines() if line.startswith("HEALTHCHECK"))
    return list(json.loads(line.split(" CMD ", 1)[1]))


def test_compose_runs_the_containerfile_on_the_host_network_with_a_state_volume() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    service = compose["services"]["lamplighter"]
    assert (ROOT / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
    assert service["network_mode"] == "host"
    assert "lamplighter-data:/data" in service["volumes"] and "lamplighter-data" in compose["volumes"]
    assert service["env_file"] == [{"path": "secrets.env", "required": False}]
    assert service["restart"] == "unless-stopped"
    assert service["healthcheck"]["test"] == ["CMD", *containerfile_healthcheck()]


def test_the_app_config_names_files_that_exist_and_options_its_schema_knows() -> None:
    config = yaml.safe_load((ADDON / "config.yaml").read_text())
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert config["version"] == version and config["slug"] == "lamplighter"
    assert set(config["arch"]) == {"amd64", "aarch64"}
    assert config["services"] == ["mqtt:want"] and config["host_network"] is True
    assert config["ingress"] is True and f"0.0.0.0:{config['ingress_port']}" == run_script().LISTEN
    assert set(config["options"]) <= set(config["schema"])
    assert set(OPTIONS) <= set(config["schema"])  # the sample options of the tests below are valid ones
    build = yaml.safe_load((ADDON / "build.yaml").read_text())
    assert set(build["build_from"]) == set(config["arch"])
    dockerfile = (ADDON / "Dockerfile").read_text()
    assert "COPY run.py /run.py" in dockerfile and (ADDON / "run.py").is_file()


def check(config: dict[str, Any], secrets: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`lamplighter check` on the configuration, with the secrets in the environment as the run script passes them."""
    path = tmp_path / "lamplighter.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    env = {name: value for name, value in os.environ.items() if not name.endswith("_TOKEN")}
    return subprocess.run([sys.executable, "-m", "lamplighter", "check", "-c", str(path)],
                          capture_output=True, text=True, timeout=60, env={**env, **secrets})


def test_the_run_script_builds_a_configuration_lamplighter_accepts(tmp_path: Path) -> None:
    config, secrets = run_script().build_config(OPTIONS, MQTT_SERVICE)
    written = yaml.safe_dump(config)
    for secret in (OPTIONS["token"], OPTIONS["alertmanager_token"], MQTT_SERVICE["password"]):
        assert secret not in written  # the file names ${VARIABLES}; the values travel in the environment
        assert secret in secrets.values()
    checked = check(config, secrets, tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "listen: 0.0.0.0:8911" in checked.stdout
    assert "lamp hall: wled://192.168.1.30" in checked.stdout
    assert "level deploy: #0080ff solid, priority 50, hold 2m" in checked.stdout
    assert "level 911: #ff0000 blink, priority 300" in checked.stdout
    sources = {source["type"]: source for source in config["sources"]}
    assert sources["frigate"]["broker"] == "core-mosquitto:1883" and sources["frigate"]["cameras"] == ["front"]
    assert sources["mqtt"]["topics"][0]["topic"] == "zigbee2mqtt/doorbell"


def test_the_smallest_options_run_without_a_broker(tmp_path: Path) -> None:
    options = {"lamps": [{"name": "desk", "url": "virtual://desk"}], "levels": [], "frigate": False,
               "frigate_cameras": [], "mqtt_topics": []}
    config, secrets = run_script().build_config(options, None)
    assert secrets == {} and "sources" not in config and "token" not in config["server"]
    checked = check(config, secrets, tmp_path)
    assert checked.returncode == 0, checked.stderr


def test_frigate_without_a_broker_is_refused_with_the_reason() -> None:
    script = run_script()
    with pytest.raises(script.OptionsError, match="Mosquitto"):
        script.build_config({**OPTIONS, "mqtt_topics": []}, None)


def test_a_bad_option_is_reported_by_lamplighter_with_its_place(tmp_path: Path) -> None:
    options = {**OPTIONS, "levels": [{"name": "911", "color": "ultraviolet"}]}
    config, secrets = run_script().build_config(options, MQTT_SERVICE)
    checked = check(config, secrets, tmp_path)
    assert checked.returncode == 2 and "ultraviolet" in checked.stderr and "levels.911.color" in checked.stderr


def make_dry_run(workdir: Path, target: str) -> list[str]:
    """The commands `make TARGET` would run in `workdir` (a copy of the Makefile and what it depends on)."""
    # Under `make test` the parent make's variables would make this one print "Entering directory" lines.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", target],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=60, check=True,
    )
    return done.stdout.splitlines()


def test_make_run_installs_the_runtime_only_and_nothing_after_make_test(tmp_path: Path) -> None:
    for name in ("Makefile", "pyproject.toml", "requirements.lock"):
        (tmp_path / name).write_bytes((ROOT / name).read_bytes())
    fresh = make_dry_run(tmp_path, "run")
    installs = [line for line in fresh if " install " in line]
    assert installs[-1].endswith("pip install --progress-bar on -c requirements.lock -e .")  # no [test], no --quiet
    assert any(line.startswith("echo") and "installing the runtime" in line for line in fresh)
    assert fresh[-1] == ".venv/bin/lamplighter run"

    fresh_test = make_dry_run(tmp_path, "test")
    assert any(line.endswith("-e '.[test]'") for line in fresh_test)

    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / ".installed-runtime").touch()
    (tmp_path / ".venv" / ".installed-test").touch()  # as `make test` leaves them
    assert make_dry_run(tmp_path, "run") == [".venv/bin/lamplighter run"]
