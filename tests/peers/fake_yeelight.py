"""A Yeelight colour bulb on loopback, speaking its LAN control protocol (there is no Yeelight emulator).

The protocol, as the Yeelight WiFi Light Inter-Operation Specification and real bulbs have it:

- Newline-delimited JSON over TCP (55443 on a bulb; a free port here). A command
  `{"id":1,"method":"set_rgb","params":[16711680,"sudden",0]}` is answered
  `{"id":1,"result":["ok"]}`, or `{"id":1,"error":{"code":-1,"message":"..."}}`.
- `get_prop` answers each asked property as a string, "" for one the bulb does not have.
- Every change is announced on every connection: `{"method":"props","params":{"rgb":255}}`
  (numbers as numbers).
- `set_rgb`, `set_hsv`, `set_ct_abx`, `set_bright`, `start_cf` and `stop_cf` are accepted
  only while the bulb is on (the spec's note); `set_power` and `set_scene` in any state,
  `set_scene` switching the bulb on. Colour modes: 1 rgb, 2 colour temperature, 3 hsv.
- A colour flow (`start_cf` [count, action, "duration,mode,value,brightness,..."]; count
  0 = forever, else the number of steps run; action 0 recover, 1 stay, 2 off) is played
  step by step (mode 1 a colour, 2 a temperature, 7 a pause; brightness -1 keeps it),
  each step taking effect at its start. Any other change, or switching off, stops it;
  `flowing` and `flow_params` report it (`flow_params` keeps the last flow after it ends).
- Quota: at most `quota` commands per `window` seconds on one connection (60 a minute)
  and `total_quota` on all together (144); beyond, `client quota exceeded` (not executed,
  not counted). At most `max_connections` (4): a fifth connection is closed at once.
- Errors: a method the bulb lacks (`methods` lists those it has): -1 `method not
  supported`; a line that is not a command: -1 `invalid command`; bad parameters or a
  command refused in the current state: -5000 `general error` (the spec does not say
  which error a real bulb gives for these).

Every command is recorded with its arrival time, connection and answer (`commands`), and
every change of what the bulb shows with its time (`changes`).

    async with FakeYeelight() as bulb:
        url = bulb.lamp_url(timeout="0.5")
        bulb.unplug()            # off the network: connections closed, new ones refused
        bulb.unplug(hang=True)   # or: silent, connections stay open and nothing is answered
        await bulb.plug()
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from tests.daemon import free_port

ON_ONLY = frozenset({"set_rgb", "set_hsv", "set_ct_abx", "set_bright", "start_cf", "stop_cf"})
ALL_METHODS = frozenset({"get_prop", "set_power", "toggle", "set_scene", "set_default", "set_name", *ON_ONLY})
POWER_MODES = {1: 2, 2: 1, 3: 3}  # set_power's mode (1 CT, 2 RGB, 3 HSV) -> the color_mode it selects
COLOR_PROPS = ("color_mode", "rgb", "ct", "hue", "sat", "bright")
SHOWN_PROPS = ("power", *COLOR_PROPS)
SLEEP_STEP = 7
FOREVER = 0
RECOVER, STAY, OFF = 0, 1, 2
CLOSE_TIMEOUT = 2.0

Step = tuple[int, int, int, int]


class Refused(Exception):
    """A command the bulb answers with an error."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def general_error() -> Refused:
    return Refused(-5000, "general error")


@dataclass(frozen=True)
class Command:
    """One command line as the bulb received it, and its answer."""

    at: float  # time.monotonic() on arrival
    connection: int
    method: str
    params: list[Any]
    error: str = ""  # the error message answered; "" for ok

    @property
    def transition(self) -> tuple[str, int] | None:
        """The (effect, duration) of a command that takes one."""
        if self.method in ("set_rgb", "set_ct_abx", "set_bright", "set_power"):
            index = 2 if self.method == "set_power" else 1
            return self.params[index], self.params[index + 1]
        if self.method == "set_hsv":
            return self.params[2], self.params[3]
        return None


@dataclass
class Connection:
    number: int
    writer: asyncio.StreamWriter
    accepted: deque[float] = field(default_factory=deque)  # arrival times of executed commands


def initial_state() -> dict[str, Any]:
    return {"power": "on", "bright": 100, "color_mode": 2, "rgb": 16777215, "ct": 4000, "hue": 0, "sat": 0,
            "flowing": 0, "flow_params": "", "delayoff": 0, "music_on": 0, "name": "", "nl_br": 0,
            "active_mode": 0}


class FakeYeelight:
    def __init__(self, host: str = "127.0.0.1", *, quota: int = 60, total_quota: int = 144, window: float = 60.0,
                 max_connections: int = 4, methods: Iterable[str] = ALL_METHODS) -> None:
        self.host = host
        self.port = free_port()
        self.quota = quota
        self.total_quota = total_quota
        self.window = window
        self.max_connections = max_connections
        self.methods = frozenset(methods)
        self.state = initial_state()
        self.commands: list[Command] = []
        self.changes: list[tuple[float, dict[str, Any]]] = []
        self.most_connections = 0
        self.hanging = False
        self._connections: list[Connection] = []
        self._numbers = itertools.count(1)
        self._accepted: deque[float] = deque()
        self._server: asyncio.Server | None = None
        self._flow: asyncio.Task[None] | None = None

    def lamp_url(self, **options: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in options.items())
        return f"yeelight://{self.host}:{self.port}" + (f"?{query}" if query else "")

    @property
    def connections(self) -> int:
        return len(self._connections)

    def shows(self, **props: Any) -> bool:
        return all(self.state[k] == v for k, v in props.items())

    def errors(self) -> list[str]:
        return [c.error for c in self.commands if c.error]

    def executed(self, method: str | None = None) -> list[Command]:
        return [c for c in self.commands if not c.error and (method is None or c.method == method)]

    def start_flow(self, count: int, action: int, expression: str) -> None:
        """Start a flow as the Yeelight app does (a scene), from the test's side."""
        self._start_flow([count, action, expression])

    async def __aenter__(self) -> FakeYeelight:
        await self.plug()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        self.unplug()
        self._stop_flow()
        deadline = time.monotonic() + CLOSE_TIMEOUT
        while self._connections and time.monotonic() < deadline:  # let each connection's task end
            await asyncio.sleep(0.01)

    def unplug(self, hang: bool = False) -> None:
        """Leave the network: close every connection and refuse new ones; with `hang`, keep them
        open (and accept new ones) but read nothing and answer nothing, as a bulb whose Wi-Fi is gone."""
        self.hanging = hang
        if hang:
            return
        if self._server is not None:
            self._server.close()
            self._server = None
        for connection in self._connections:
            connection.writer.close()

    async def plug(self) -> None:
        self.hanging = False
        if self._server is None:
            self._server = await asyncio.start_server(self._serve, self.host, self.port)

    # ---- connections -----------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._connections) >= self.max_connections:
            writer.close()
            return
        connection = Connection(next(self._numbers), writer)
        self._connections.append(connection)
        self.most_connections = max(self.most_connections, len(self._connections))
        try:
            while line := await reader.readline():
                if not self.hanging and line.strip():
                    self._receive(connection, line)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._connections.remove(connection)
            writer.close()

    def _receive(self, connection: Connection, line: bytes) -> None:
        now = time.monotonic()
        try:
            request = json.loads(line)
            number, method, params = request["id"], str(request["method"]), list(request.get("params", []))
        except (ValueError, KeyError, TypeError):
            self._send(connection.writer, {"id": -1, "error": {"code": -1, "message": "invalid command"}})
            return
        try:
            self._check_quota(connection, now)
            result, changed = self._execute(method, params)
        except Refused as refused:
            self.commands.append(Command(now, connection.number, method, params, refused.message))
            self._send(connection.writer, {"id": number, "error": {"code": refused.code, "message": refused.message}})
            return
        self.commands.append(Command(now, connection.number, method, params))
        connection.accepted.append(now)
        self._accepted.append(now)
        self._send(connection.writer, {"id": number, "result": result})
        if changed:
            self._notify(changed)

    def _check_quota(self, connection: Connection, now: float) -> None:
        for accepted in (connection.accepted, self._accepted):
            while accepted and accepted[0] <= now - self.window:
                accepted.popleft()
        if len(connection.accepted) >= self.quota or len(self._accepted) >= self.total_quota:
            raise Refused(-1, "client quota exceeded")

    def _send(self, writer: asyncio.StreamWriter, message: dict[str, Any]) -> None:
        if not writer.is_closing():
            writer.write((json.dumps(message, separators=(",", ":")) + "\r\n").encode())

    def _notify(self, changed: dict[str, Any]) -> None:
        if not self.hanging:
            for connection in self._connections:
                self._send(connection.writer, {"method": "props", "params": changed})

    # ---- the bulb ----------------------------------------------------------------------------

    def _execute(self, method: str, params: list[Any]) -> tuple[list[Any], dict[str, Any]]:
        """The result of a command, and the properties it changed."""
        if method not in self.methods:
            raise Refused(-1, "method not supported")
        if method == "get_prop":
            return [_prop_text(self.state.get(str(name), "")) for name in params], {}
        if method in ON_ONLY and self.state["power"] != "on":
            raise general_error()
        handler: Callable[[list[Any]], dict[str, Any]] = getattr(self, f"_{method}")
        try:
            return ["ok"], handler(params)
        except (IndexError, TypeError, ValueError):  # too few parameters, or of the wrong kind
            raise general_error() from None

    def _set_rgb(self, params: list[Any]) -> dict[str, Any]:
        _transition(params[1:])
        return self._change(color_mode=1, rgb=_within(params[0], 1, 0xFFFFFF))

    def _set_hsv(self, params: list[Any]) -> dict[str, Any]:
        _transition(params[2:])
        return self._change(color_mode=3, hue=_within(params[0], 0, 359), sat=_within(params[1], 0, 100))

    def _set_ct_abx(self, params: list[Any]) -> dict[str, Any]:
        _transition(params[1:])
        return self._change(color_mode=2, ct=_within(params[0], 1700, 6500))

    def _set_bright(self, params: list[Any]) -> dict[str, Any]:
        _transition(params[1:])
        return self._change(bright=_within(params[0], 1, 100))

    def _set_power(self, params: list[Any]) -> dict[str, Any]:
        if params[0] not in ("on", "off"):
            raise general_error()
        _transition(params[1:3])
        mode = params[3] if len(params) > 3 else 0
        if mode not in (0, *POWER_MODES):
            raise general_error()
        return self._change(power=params[0], **({"color_mode": POWER_MODES[mode]} if mode else {}))

    def _toggle(self, params: list[Any]) -> dict[str, Any]:
        return self._change(power="off" if self.state["power"] == "on" else "on")

    def _set_scene(self, params: list[Any]) -> dict[str, Any]:
        kind, values = params[0], params[1:]
        if kind == "cf":
            changed = self._change(power="on")
            return {**changed, **self._start_flow(values)}
        scenes = {"color": (1, ("rgb", 1, 0xFFFFFF)), "ct": (2, ("ct", 1700, 6500)),
                  "hsv": (3, ("hue", 0, 359), ("sat", 0, 100))}
        if kind not in scenes or len(values) != len(scenes[kind]):
            raise general_error()
        mode, *props = scenes[kind]
        colour = {name: _within(value, low, high) for (name, low, high), value in zip(props, values, strict=False)}
        return self._change(power="on", color_mode=mode, **colour, bright=_within(values[-1], 1, 100))

    def _start_cf(self, params: list[Any]) -> dict[str, Any]:
        return self._start_flow(params)

    def _stop_cf(self, params: list[Any]) -> dict[str, Any]:
        return self._change()

    def _set_default(self, params: list[Any]) -> dict[str, Any]:
        return {}

    def _set_name(self, params: list[Any]) -> dict[str, Any]:
        return self._change(name=str(params[0]))

    def _change(self, **props: Any) -> dict[str, Any]:
        """Set properties as a command does: any command stops a running flow. The changes made."""
        if self.state["flowing"]:
            self._stop_flow()
            props = {"flowing": 0, **props}
        return self._set(props)

    def _set(self, props: dict[str, Any]) -> dict[str, Any]:
        changed = {k: v for k, v in props.items() if self.state.get(k) != v}
        self.state.update(changed)
        if self.state["power"] == "off" and self.state["flowing"]:
            self._stop_flow()
            changed["flowing"] = self.state["flowing"] = 0
        if any(k in SHOWN_PROPS for k in changed):
            self.changes.append((time.monotonic(), {k: self.state[k] for k in SHOWN_PROPS}))
        return changed

    # ---- colour flows ------------------------------------------------------------------------

    def _start_flow(self, params: list[Any]) -> dict[str, Any]:
        count, action, steps = _flow(params)
        if self.state["power"] != "on":
            raise general_error()
        self._stop_flow()
        before = {k: self.state[k] for k in COLOR_PROPS}
        flow_params = ",".join(str(v) for v in (count, action, *itertools.chain(*steps)))
        changed = self._set({"flowing": 1, "flow_params": flow_params})
        self._flow = asyncio.get_running_loop().create_task(self._play(count, action, steps, before))
        return changed

    def _stop_flow(self) -> None:
        if self._flow is not None:
            self._flow.cancel()
            self._flow = None

    async def _play(self, count: int, action: int, steps: list[Step], before: dict[str, Any]) -> None:
        numbers = itertools.count() if count == FOREVER else range(count)
        for number in numbers:
            duration, mode, value, brightness = steps[number % len(steps)]
            self._set(_step(mode, value, brightness))
            await asyncio.sleep(duration / 1000)
        self._flow = None
        ending = {RECOVER: before, STAY: {}, OFF: {"power": "off"}}[action]
        self._notify(self._set({"flowing": 0, **ending}))


def _flow(params: list[Any]) -> tuple[int, int, list[Step]]:
    """A start_cf's count, action and steps; a general error when they are not a flow."""
    try:
        count, action, expression = int(params[0]), int(params[1]), str(params[2])
        values = [int(v) for v in expression.split(",")]
    except (IndexError, ValueError):
        raise general_error() from None
    steps = [(values[i], values[i + 1], values[i + 2], values[i + 3]) for i in range(0, len(values) - 3, 4)]
    if len(values) % 4 or not steps or action not in (RECOVER, STAY, OFF) or count < 0:
        raise general_error()
    if any(duration < 50 or mode not in (1, 2, SLEEP_STEP) for duration, mode, _, _ in steps):
        raise general_error()
    return count, action, steps


def _step(mode: int, value: int, brightness: int) -> dict[str, Any]:
    """What one flow step sets."""
    if mode == SLEEP_STEP:
        return {}
    colour = {"color_mode": 1, "rgb": value} if mode == 1 else {"color_mode": 2, "ct": value}
    return colour if brightness == -1 else {**colour, "bright": brightness}


def _transition(params: list[Any]) -> None:
    """Check an [effect, duration] pair: "sudden", or "smooth" over at least 30 ms."""
    with contextlib.suppress(IndexError, ValueError, TypeError):
        effect, duration = params[0], int(params[1])
        if effect == "sudden" or (effect == "smooth" and duration >= 30):
            return
    raise general_error()


def _within(value: Any, low: int, high: int) -> int:
    if not isinstance(value, int) or not low <= value <= high:
        raise general_error()
    return value


def _prop_text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)
