"""`lamplighter hub` and `lamplighter agent`: the two ends of the hub-and-rooms setup, run in the foreground."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re

import click
import uvloop

from lamplighter.cli.client import daemon_url
from lamplighter.config import NAME_PATTERN, LoadedConfig
from lamplighter.service.tokens import ensure_token, token_path


def needs_hub(loaded: LoadedConfig, rooms: bool) -> list[tuple[str, str]]:
    """Problems that stop a hub (rooms=True) or an agent from starting with this file."""
    config = loaded.config
    if config.hub is None:
        return [(loaded.place("hub"), "needs hub: {broker: mqtt://HOST, home: NAME}")]
    if rooms and not config.rooms:
        return [(loaded.place("rooms"), "a hub needs rooms: (e.g. rooms: {study: {}, office: {levels: [911]}})")]
    return []


def run_hub(loaded: LoadedConfig) -> None:
    from lamplighter.service.hub import Hub
    from lamplighter.web.server import serve_hub

    config = loaded.config
    assert config.hub is not None
    token = ensure_token(config, os.environ)
    hub = Hub(config)
    click.echo(f"Lamplighter hub of home {config.hub.home} on {daemon_url(config, {})}, broker {config.hub.broker}")
    click.echo(f"  rooms: {', '.join(config.rooms)}")
    click.echo(f"  agents: {daemon_url(config, {})}/api/agents (token from {token.origin}"
               f"{' ' + str(token_path(config.state_dir)) if token.generated else ''})")
    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve_hub(hub, token.value))


def run_agent(loaded: LoadedConfig, room: str) -> None:
    from lamplighter.service.agent import Agent
    from lamplighter.web.agent_app import agent_server

    if not re.fullmatch(NAME_PATTERN, room):
        raise click.BadParameter("a room name is letters, digits, '_', '-' or '.'", param_hint="--room")
    config = loaded.config
    assert config.hub is not None
    token = ensure_token(config, os.environ)

    async def serve() -> None:
        agent = Agent(config, room)
        server = agent_server(agent, token.value, config.server.host, config.server.port)
        await agent.start()
        try:
            await server.serve()
        finally:
            await agent.stop()

    click.echo(f"Lamplighter agent of room {room} (home {config.hub.home}), broker {config.hub.broker}")
    click.echo(f"  lamps: {', '.join(config.lamps)}; acknowledge with: lamplighter ack -c {loaded.path} EVENT_ID")
    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve())
