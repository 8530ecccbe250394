"""The API token: from the config, the environment, or generated once into the state directory.

A token shorter than MIN_TOKEN_CHARS (an empty environment variable, an empty file left by
a failed write) would make authentication meaningless, so it is refused with a message that
names where it came from. A generated token is written atomically: a crash or a full disk
leaves either no file or the whole token, never an empty file.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lamplighter.config import MIN_TOKEN_CHARS, Config
from lamplighter.errors import ConfigError, StoreError

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
    """The token a client or the daemon should use, without creating one; ConfigError if it is too short."""
    if config.server.token is not None:
        return Token(config.server.token.get_secret_value(), "config")  # its length is checked with the file
    if env.get(TOKEN_ENV):  # set but empty counts as not set: the next place is looked at
        return _long_enough(Token(env[TOKEN_ENV], "environment"), f"the environment variable {TOKEN_ENV}")
    path = token_path(config.state_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([(str(path), f"cannot read the API token: {exc}")]) from None
    return _long_enough(Token(text.strip(), "state directory"),
                        f"{path} (delete it to have a new token generated at the next start)")


def _long_enough(token: Token, where: str) -> Token:
    if len(token.value) < MIN_TOKEN_CHARS:
        raise ConfigError([("", f"the API token from {where} has {len(token.value)} characters; "
                                f"it needs at least {MIN_TOKEN_CHARS}")])
    return token


def ensure_token(config: Config, env: Mapping[str, str]) -> Token:
    """The daemon's token; when none is configured, generate one readable only by this user."""
    found = find_token(config, env)
    if found is not None:
        return found
    path = token_path(config.state_dir)
    value = secrets.token_urlsafe(24)
    try:
        _write_atomically(path, value + "\n")
    except OSError as exc:
        raise StoreError(f"cannot save a new API token to {path}: {exc.strerror or exc}") from None
    return Token(value, "generated")


def _write_atomically(path: Path, text: str) -> None:
    """Write a file readable only by this user: to a temporary file, flushed to disk, then renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(temporary, path)
    except OSError:
        temporary.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
