"""Carry out a Containerfile's steps without a container engine: chroot over a debootstrap'd Debian.

No container engine runs on the test machines, so this builds the image the way an engine
would, step by step: `FROM debian:bookworm-slim` is a `debootstrap --variant=minbase` root
(scripts/ensure-bookworm-rootfs), every stage is an overlay mount over it, RUN runs
`/bin/sh -c` in a chroot inside a mount namespace of its own, COPY copies from the build
context or (`--from=STAGE`) from an earlier stage, ENV, WORKDIR and USER apply to what follows.
RUN steps before a stage's first COPY are cached under .cache/peers/container-layers, as an
engine caches layers, so apt-get runs once. The image's CMD and HEALTHCHECK then run in a
network namespace of their own (loopback only), as the user the image names.

`RUN --mount=type=cache,target=DIR` binds a directory kept under .cache/peers/container-build-cache
there, as BuildKit does (pip's cache: the image stays without it, a rebuild downloads nothing).
Enough of the format for our two image definitions, no more: exec-form CMD and HEALTHCHECK, ARG
only before the first FROM, globs only in COPY from the context, no whiteouts when reading
another stage's files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shlex
import shutil
import signal
import string
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

BASES = {"debian:bookworm-slim"}
HOST_NETWORK_FILES = ("etc/resolv.conf", "etc/ssl/certs/ca-certificates.crt")
LAYER_CACHE = Path(__file__).resolve().parents[1] / ".cache" / "peers" / "container-layers"
BUILD_CACHE = LAYER_CACHE.with_name("container-build-cache")


@dataclass
class Instruction:
    keyword: str
    argument: str


@dataclass
class Stage:
    base: str
    name: str | None
    steps: list[Instruction] = field(default_factory=list)


def parse(text: str, args: Mapping[str, str] | None = None) -> list[Stage]:
    """The stages of a Containerfile: continuation lines joined, comments dropped, and `FROM $ARG`
    resolved from the ARGs before the first FROM, their defaults overridden by `args` (--build-arg)."""
    stages: list[Stage] = []
    known: dict[str, str] = {}
    logical = ""
    for line in text.splitlines():
        if not logical and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            logical += line.rstrip()[:-1] + " "
            continue
        keyword, _, argument = (logical + line).strip().partition(" ")
        logical = ""
        if keyword.upper() == "ARG" and not stages:
            name, _, default = argument.strip().partition("=")
            known[name] = (args or {}).get(name, default)
        elif keyword.upper() == "FROM":
            base, _, name = argument.partition(" AS ")
            stages.append(Stage(string.Template(base.strip()).substitute(known), name.strip() or None))
        else:
            stages[-1].steps.append(Instruction(keyword.upper(), argument.strip()))
    return stages


@dataclass
class Image:
    """A built stage: its layers (lowest first), a writable top, and the settings its steps left."""

    layers: list[Path]
    top: Path
    env: dict[str, str] = field(default_factory=lambda: {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root"})
    workdir: str = "/"
    user: str = "root"
    cmd: list[str] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)
    exposed: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)

    def find(self, path: str) -> Path:
        """Where a path of the image's file system lies on the host (the topmost layer that has it)."""
        for layer in [self.top, *reversed(self.layers)]:
            if (layer / path.lstrip("/")).exists():
                return layer / path.lstrip("/")
        raise FileNotFoundError(path)

    def ids(self, user: str) -> tuple[int, int]:
        """The numeric user and group of `user` in the image's /etc/passwd."""
        for line in self.find("/etc/passwd").read_text().splitlines():
            fields = line.split(":")
            if fields[0] == user or fields[2] == user:
                return int(fields[2]), int(fields[3])
        raise KeyError(f"no user {user} in the image")

    def script(self, merged: Path, command: str, *, network: bool, env: dict[str, str] | None = None,
               caches: tuple[str, ...] = ()) -> str:
        """A shell script that mounts the image at `merged` and runs `command` in it as the image's user,
        with a kept directory of the host mounted at each of `caches` (RUN --mount=type=cache)."""
        work = self.top.with_name(self.top.name + ".work")
        work.mkdir(exist_ok=True)
        lower = ":".join(str(layer) for layer in reversed(self.layers))
        uid, gid = self.ids(self.user)
        variables = " ".join(shlex.quote(f"{k}={v}") for k, v in {**self.env, **(env or {})}.items())
        inner = f"cd {shlex.quote(self.workdir)} && {command}"
        lines = [
            "set -e",
            f"mount -t overlay overlay -o lowerdir={lower},upperdir={self.top},workdir={work} {merged}",
            f"mount -t proc proc {merged}/proc",
            f"mount --rbind /dev {merged}/dev",
            *(_host_network(merged) if network else ["ip link set lo up"]),
            *(f"mkdir -p {merged}{target} {_cache_dir(target)} && mount --bind {_cache_dir(target)} {merged}{target}"
              for target in caches),
            f"exec chroot --userspec={uid}:{gid} --groups={gid} {merged} /usr/bin/env -i {variables} "
            f"/bin/sh -c {shlex.quote(inner)}",
        ]
        return "\n".join(lines)

    def run(self, argument: str, timeout: float = 600) -> None:
        """A RUN step: on the host's network (apt, pip), in a mount namespace of its own."""
        caches, command = _run_mounts(argument)
        with tempfile.TemporaryDirectory() as merged:
            done = subprocess.run(["unshare", "--mount", "--fork", "sh", "-c",
                                   self.script(Path(merged), command, network=True, caches=caches)],
                                  capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"RUN {command} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")

    def start(self, merged: Path, command: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
        """Run `command` (the CMD) in its own mount and network namespaces; it sees only loopback."""
        with log.open("ab") as out:
            return subprocess.Popen(["unshare", "--mount", "--net", "--fork", "--kill-child", "sh", "-c",
                                     self.script(merged, f"exec {shlex.join(command)}", network=False, env=env)],
                                    stdout=out, stderr=subprocess.STDOUT)

    def enter(self, running: subprocess.Popen[bytes], merged: Path, command: list[str],
              timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run `command` beside the running CMD (its namespaces, the image's user): HEALTHCHECK does this."""
        uid, gid = self.ids(self.user)
        variables = [f"{k}={v}" for k, v in self.env.items()]
        inner = f"cd {shlex.quote(self.workdir)} && exec {shlex.join(command)}"
        return subprocess.run(["nsenter", f"--target={namespaced(running.pid)}", "--mount", "--net", "--",
                               "chroot", f"--userspec={uid}:{gid}", f"--groups={gid}", str(merged),
                               "/usr/bin/env", "-i", *variables, "/bin/sh", "-c", inner],
                              capture_output=True, text=True, timeout=timeout)


def _run_mounts(argument: str) -> tuple[tuple[str, ...], str]:
    """RUN [--mount=type=cache,target=DIR]... COMMAND: the cache targets and the command."""
    targets = []
    while argument.startswith("--mount="):
        option, _, argument = argument.partition(" ")
        fields = dict(item.split("=", 1) for item in option.removeprefix("--mount=").split(","))
        if fields.get("type") != "cache":
            raise ValueError(f"{option}: only type=cache mounts are carried out here")
        targets.append(fields["target"])
    return tuple(targets), argument.strip()


def _cache_dir(target: str) -> Path:
    """The host directory kept for a cache mount at `target`, as BuildKit keeps one per target."""
    return BUILD_CACHE / hashlib.sha256(target.encode()).hexdigest()[:16]


def _host_network(merged: Path) -> list[str]:
    """A build step uses the host's name servers and trusts the CAs the host trusts (a TLS-inspecting
    proxy's too), as an engine's build does on this host; once the image has a CA bundle to cover."""
    return [f"[ ! -f {merged}/{path} ] || mount --bind /{path} {merged}/{path}" for path in HOST_NETWORK_FILES]


def namespaced(unshare_pid: int) -> int:
    """The process `unshare --fork` started: the one inside the new namespaces."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        children = Path(f"/proc/{unshare_pid}/task/{unshare_pid}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.01)
    raise RuntimeError("unshare started nothing")


def stop(running: subprocess.Popen[bytes], timeout: float = 15) -> int:
    """SIGTERM to the CMD (as `docker stop` sends it); its exit status."""
    os.kill(namespaced(running.pid), signal.SIGTERM)
    return running.wait(timeout=timeout)


def build(containerfile: Path, context: Path, base_rootfs: Path, workdir: Path,
          args: Mapping[str, str] | None = None) -> Image:
    """Build every stage of `containerfile` (with `args` as --build-arg); the last stage's image."""
    built: dict[str, Image] = {}
    image: Image | None = None
    for number, stage in enumerate(parse(containerfile.read_text(), args)):
        image = _build_stage(stage, built, context, base_rootfs, workdir / f"stage{number}")
        if stage.name:
            built[stage.name] = image
    assert image is not None, "no FROM"
    return image


def _build_stage(stage: Stage, built: dict[str, Image], context: Path, base: Path, top: Path) -> Image:
    if stage.base not in BASES:
        raise ValueError(f"FROM {stage.base}: only {sorted(BASES)} is known here")
    top.mkdir(parents=True)
    image = Image([base], top)
    key = hashlib.sha256(str(base).encode()).hexdigest()
    cacheable = True
    for step in stage.steps:
        if step.keyword == "RUN" and cacheable:
            key = hashlib.sha256(f"{key}\n{step.argument}\n{image.env}".encode()).hexdigest()
            image.layers.append(_cached_layer(image, key, step.argument))
        elif step.keyword == "RUN":
            image.run(step.argument)
        elif step.keyword == "COPY":
            cacheable = False
            _copy(step.argument, image, built, context)
        elif step.keyword == "ENV":
            image.env.update(dict(pair.split("=", 1) for pair in shlex.split(step.argument)))
        elif step.keyword == "WORKDIR":
            image.workdir = step.argument
        elif step.keyword == "USER":
            image.user = step.argument
        elif step.keyword == "CMD":
            image.cmd = json.loads(step.argument)
        elif step.keyword == "HEALTHCHECK":
            image.healthcheck = json.loads(step.argument.split(" CMD ", 1)[1])
        elif step.keyword == "EXPOSE":
            image.exposed += step.argument.split()
        elif step.keyword == "VOLUME":
            image.volumes += step.argument.split()
        else:
            raise ValueError(f"{step.keyword} is not carried out by tests/container.py")
    return image


def _cached_layer(image: Image, key: str, command: str) -> Path:
    """The layer a RUN step leaves, from the cache or made now (in a fresh top, then kept)."""
    layer = LAYER_CACHE / key[:24]
    if layer.is_dir():
        return layer
    LAYER_CACHE.mkdir(parents=True, exist_ok=True)
    making = Path(tempfile.mkdtemp(dir=LAYER_CACHE, prefix=f"{key[:24]}.making."))
    fresh = Image(list(image.layers), making / "top", dict(image.env), image.workdir, image.user)
    fresh.top.mkdir()
    fresh.run(command)
    with contextlib.suppress(OSError):  # another run made it first
        fresh.top.rename(layer)
    shutil.rmtree(making)
    return layer


def _copy(argument: str, image: Image, built: dict[str, Image], context: Path) -> None:
    """COPY [--from=STAGE] SRC... DEST: a directory's contents, or files, into the writable top."""
    words = argument.split()
    source_image = None
    if words[0].startswith("--from="):
        source_image = built[words.pop(0).removeprefix("--from=")]
    *patterns, destination = words
    sources = [str(found.relative_to(context)) for pattern in patterns
               for found in sorted(context.glob(pattern))] if source_image is None else patterns
    if not sources:
        raise FileNotFoundError(f"COPY {argument}: nothing matches in {context}")
    for source in sources:
        origin = source_image.find(source) if source_image else context / source
        target = image.top / destination.lstrip("/")
        if origin.is_dir():
            shutil.copytree(origin, target, dirs_exist_ok=True)
            continue
        if destination.endswith("/") or len(sources) > 1:
            target = target / origin.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(origin, target)
