"""A small HTTP client for the running daemon, used by the client commands (`send`, `status`, `ack`, ...).

A client needs only two things: where the daemon listens and its API token. Each comes from
the command line (`--url`, `--token`), else the environment (LAMPLIGHTER_URL,
LAMPLIGHTER_TOKEN), else the configuration file, of which only `server:` and `state_dir:` are
read: a source's secret that the daemon needs is not needed here, nor checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from lamplighter import i18n
from lamplighter.config import Config, LoadedConfig, load_config
from lamplighter.i18n import _

if TYPE_CHECKING:
    import httpx
from lamplighter.service.tokens import TOKEN_ENV, find_token, token_path

URL_ENV = "LAMPLIGHTER_URL"
TIMEOUT_SECONDS = 5.0
CLIENT_KEYS = ("server", "state_dir", "locale")  # all a client reads of the file


def daemon_url(config: Config, env: Mapping[str, str]) -> str:
    """LAMPLIGHTER_URL, else the configured listen address (a wildcard host means this machine)."""
    if env.get(URL_ENV):
        return env[URL_ENV].rstrip("/")
    host = config.server.host
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{config.server.port}"


@dataclass(frozen=True)
class Credential:
    """The API token a client sends, and where it came from (for a message when it is refused)."""

    value: str
    where: str


def client_config(config_path: Path | None, env: Mapping[str, str]) -> LoadedConfig:
    """The part of the configuration a client needs (`server`, `state_dir`, `locale`); ConfigError if it is wrong."""
    return load_config(config_path, env, only=CLIENT_KEYS)


def find_credential(loaded: LoadedConfig, env: Mapping[str, str], flag: str | None) -> Credential:
    """--token, else the token the daemon uses (config, environment, token file); ClickException if none."""
    if flag:
        return Credential(flag, "--token")
    token = find_token(loaded.config, env)
    path = token_path(loaded.config.state_dir)
    if token is None:
        raise click.ClickException(_(
            "no API token: pass --token, set {env}, set server.token in the config, or start the daemon "
            "once so that it writes {path}").format(env=TOKEN_ENV, path=path))
    where = {"config": _("server.token in {file}").format(file=loaded.path or _("the configuration")),
             "environment": _("the environment variable {env}").format(env=TOKEN_ENV)}.get(
        token.origin, _("the token file {path}").format(path=path))
    return Credential(token.value, where)


class Client:
    def __init__(self, url: str, credential: Credential) -> None:
        self.url = url
        self.credential = credential
        import httpx  # here: `lamplighter run` never needs it, and it imports its own CLI's libraries

        self._http = httpx.Client(base_url=self.url, timeout=TIMEOUT_SECONDS,
                                  headers={"Authorization": f"Bearer {credential.value}"})
        self._transport_error = httpx.TransportError

    def request(self, method: str, path: str, refusals: tuple[int, ...] = (), **kwargs: Any) -> Any:
        """The JSON answer; ClickException for an error status, except `refusals` (returned as JSON)."""
        try:
            response = self._http.request(method, path, **kwargs)
        except self._transport_error as exc:
            raise click.ClickException(_(
                "cannot reach Lamplighter at {url} ({error}); is `lamplighter run` running?").format(
                url=self.url, error=exc)) from None
        if response.status_code == 401:
            raise click.ClickException(_("Lamplighter at {url} refused the token from {where}: {error}").format(
                url=self.url, where=self.credential.where, error=_error(response)))
        if response.status_code >= 400 and response.status_code not in refusals:
            raise click.ClickException(f"{_error(response)} (HTTP {response.status_code})")
        return response.json()


def _error(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", response.text))
    except ValueError:
        return response.text


def connect(config_path: Path | None, url: str | None, token: str | None, env: Mapping[str, str]) -> Client:
    """A client for --url/--token, filling what is not given from the environment and the configuration
    (whose `locale:` it then speaks)."""
    needs_file = not (url and token) or config_path is not None
    loaded = client_config(config_path, env) if needs_file else LoadedConfig(Config(), None)
    i18n.set_default(loaded.config.locale)
    return Client((url or daemon_url(loaded.config, env)).rstrip("/"), find_credential(loaded, env, token))
