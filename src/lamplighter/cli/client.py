"""A small HTTP client for the running daemon, used by `send`, `status`, `ack`, `reload` and the rest."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click
import httpx

from lamplighter.config import Config
from lamplighter.service.tokens import find_token, token_path

URL_ENV = "LAMPLIGHTER_URL"
TIMEOUT_SECONDS = 5.0


def daemon_url(config: Config, env: Mapping[str, str]) -> str:
    """LAMPLIGHTER_URL, else the configured listen address (a wildcard host means this machine)."""
    if env.get(URL_ENV):
        return env[URL_ENV].rstrip("/")
    host = config.server.host
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{config.server.port}"


class Client:
    def __init__(self, config: Config, env: Mapping[str, str]) -> None:
        self.url = daemon_url(config, env)
        token = find_token(config, env)
        if token is None:
            raise click.ClickException(
                f"no API token: set LAMPLIGHTER_TOKEN, server.token in the config, or start the daemon once "
                f"so that it writes {token_path(config.state_dir)}")
        self._http = httpx.Client(base_url=self.url, timeout=TIMEOUT_SECONDS,
                                  headers={"Authorization": f"Bearer {token.value}"})

    def request(self, method: str, path: str, refusals: tuple[int, ...] = (), **kwargs: Any) -> Any:
        """The JSON answer; ClickException for an error status, except `refusals` (returned as JSON)."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise click.ClickException(
                f"cannot reach Lamplighter at {self.url} ({exc}); is `lamplighter run` running?") from None
        if response.status_code == 401:
            raise click.ClickException(f"Lamplighter at {self.url} refused the token: {response.json().get('error')}")
        if response.status_code >= 400 and response.status_code not in refusals:
            raise click.ClickException(f"{response.json().get('error', response.text)} (HTTP {response.status_code})")
        return response.json()
