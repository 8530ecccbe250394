"""The API token: from the config, the environment, or generated once into the state directory."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lamplighter.config import Config

TOKEN_ENV = "LAMPLIGHTER_TOKEN"
TOKEN_FILE = "token"


@dataclass(frozen=True)
class Token:
    value: str
    origin: str  # "config", "environment", "state directory" or "generated"

    @property
    def generated(self) -> bool:
        return self.origin == "generated"


def token_path(state_dir: Path) -> Path:
    return state_dir / TOKEN_FILE


def find_token(config: Config, env: Mapping[str, str]) -> Token | None:
    """The token a client or the daemon should use, without creating one."""
    if config.server.token is not None:
        return Token(config.server.token.get_secret_value(), "config")
    if env.get(TOKEN_ENV):
        return Token(env[TOKEN_ENV], "environment")
    path = token_path(config.state_dir)
    if path.exists():
        return Token(path.read_text(encoding="utf-8").strip(), "state directory")
    return None


def ensure_token(config: Config, env: Mapping[str, str]) -> Token:
    """The daemon's token; when none is configured, generate one readable only by this user."""
    found = find_token(config, env)
    if found is not None:
        return found
    path = token_path(config.state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    return Token(value, "generated")
