"""Finding lamps on the local network, for `lamplighter discover`.

Each protocol is asked the way its Home Assistant integration asks, through the same library:

    LIFX      lifx-async: a GetService broadcast to UDP 56700, then each bulb's label and product
    WiZ       pywizlight: a registration broadcast to UDP 38899 (sent from 38899), then each module name
    Yeelight  yeelight: an SSDP M-SEARCH to 239.255.255.250:1982, answered with the bulb's capabilities
    Kasa      python-kasa (an optional extra): its discovery broadcasts to UDP 9999, 20002 and 20004
    Govee     govee-local-api: a scan to 239.255.255.250:4001, answered to our UDP 4002
    Hue, WLED zeroconf: the `_hue._tcp` and `_wled._tcp` mDNS services

All protocols are asked at once. Each listens for `timeout` seconds (devices cannot say when
the last of them has answered) and may then ask the devices it found a question or two (a
label, a model), all within a short grace; a scanner reports each device as it answers, so
what arrived in time is kept even when a protocol overruns. A protocol whose library is
missing is skipped with the command that installs it, and one that fails (a port in use, no
route for a broadcast) is reported as failed; neither hides the other protocols' lamps.

Every result carries a lamp URL in the grammar of our drivers: `lifx://IP?serial=d073d5xxxxxx`,
`wiz://IP`, `yeelight://IP`, `kasa://IP`, `govee://IP`, `wled://IP` (ports only where they are
not the standard ones). Some URLs hold placeholders the user must fill in (`Found.todo`):
a Hue bridge's needs the app key the bridge hands out when its link button is pressed and a
light's number (`hue://APPKEY@IP/lights/ID`); a newer Kasa device's needs the owner's
TP-Link account (`kasa://USER:PASSWORD@IP`).

`Target` says where to ask: by default each protocol's own broadcast or multicast address;
a given address (the subnet's broadcast, one lamp's IP, or 127.0.0.1 for emulators) replaces
it (except that Yeelight keeps its multicast group for a broadcast address), and mDNS then
browses on the interface that reaches that address. Emulators may listen
on other ports (`Target.ports`), and the URLs found then name those ports, so they reach
the same emulator; WiZ (38899) and Yeelight (1982) ports are fixed by their libraries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from lamplighter.drivers.registry import EXTRAS

if TYPE_CHECKING:
    from kasa import Device as KasaDevice
    from zeroconf import InterfaceChoice
    from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

log = logging.getLogger(__name__)

ANY_BROADCAST = "255.255.255.255"
SSDP_GROUP = "239.255.255.250"  # the multicast group Yeelight and Govee listen on
GRACE = 2.0  # seconds past the timeout for the questions asked of devices found late
ASK_TIMEOUT = 1.0  # seconds for one question to one device found (its label, its model)
DEFAULT_PORTS = {"lifx": 56700, "kasa": 9999, "govee": 4001, "govee-reply": 4002, "govee-command": 4003}
YEELIGHT_PORT = 55443
GOVEE_PORT_OPTIONS = (("scan_port", "govee"), ("listen_port", "govee-reply"), ("command_port", "govee-command"))
HUE_PORT = 443
WLED_PORT = 80
HUE_SERVICE = "_hue._tcp.local."
WLED_SERVICE = "_wled._tcp.local."


@dataclass(frozen=True)
class Found:
    """One device that answered: the lamp URL for it and what it says about itself."""

    kind: str  # the driver's scheme
    url: str
    name: str = ""  # the label the user gave it, where the device knows one
    model: str = ""
    detail: str = ""  # what else identifies it: a serial, a MAC address, a bridge id
    todo: str = ""  # what the user must still fill into the URL (a Hue app key, a TP-Link login)

    @property
    def complete(self) -> bool:
        return not self.todo


@dataclass(frozen=True)
class Target:
    """Where to ask: None for each protocol's own broadcast or multicast address; ports for emulators."""

    address: str | None = None
    ports: Mapping[str, int] = field(default_factory=dict)

    def port(self, name: str) -> int:
        return self.ports.get(name, DEFAULT_PORTS[name])

    def address_or(self, default: str) -> str:
        return self.address or default


class Session:
    """One discovery run: where to ask, how long to listen, and the mDNS listener the protocols share.

    One zeroconf instance browses for every mDNS service at once (two on one host slow each
    other's answers by a second).
    """

    def __init__(self, target: Target, timeout: float) -> None:
        self.target = target
        self.timeout = timeout
        self._zeroconf: AsyncZeroconf | None = None

    def zeroconf(self) -> AsyncZeroconf:
        from zeroconf import IPVersion
        from zeroconf.asyncio import AsyncZeroconf

        if self._zeroconf is None:
            self._zeroconf = AsyncZeroconf(interfaces=_interfaces(self.target), ip_version=IPVersion.V4Only)
        return self._zeroconf

    async def close(self) -> None:
        if self._zeroconf is not None:
            await self._zeroconf.async_close()


Report = Callable[[Found], None]
ScanFunction = Callable[[Session, Report], Awaitable[None]]


@dataclass(frozen=True)
class Scanner:
    """One protocol: its driver's scheme, its name for people, the package it needs, how to ask."""

    kind: str
    title: str
    package: str
    scan: ScanFunction


@dataclass(frozen=True)
class Outcome:
    """What one protocol's scan gave: the devices found, or why it was skipped or failed."""

    scanner: Scanner
    found: tuple[Found, ...] = ()
    skipped: str = ""
    failed: str = ""


class Progress(Protocol):
    """Told of every device as it is found and of every protocol as it finishes."""

    def found(self, scanner: Scanner, count: int) -> None: ...

    def finished(self, outcome: Outcome) -> None: ...


async def scan(scanners: Iterable[Scanner], target: Target, timeout: float, progress: Progress) -> list[Outcome]:
    """Ask every protocol at once; one outcome per scanner, in the order given."""
    session = Session(target, timeout)
    try:
        return list(await asyncio.gather(*(_run(scanner, session, progress) for scanner in scanners)))
    finally:
        await session.close()


async def _run(scanner: Scanner, session: Session, progress: Progress) -> Outcome:
    found: dict[str, Found] = {}

    def report(device: Found) -> None:
        if device.url not in found:
            found[device.url] = device
            progress.found(scanner, len(found))

    skipped = failed = ""
    try:
        async with asyncio.timeout(session.timeout + GRACE):
            await scanner.scan(session, report)
    except TimeoutError:
        log.debug("%s overran its grace; what answered in time is kept", scanner.title)
    except ModuleNotFoundError as exc:
        skipped = _install_hint(scanner, exc)
    except Exception as exc:  # one protocol's trouble must not hide the other protocols' lamps
        log.debug("%s discovery failed", scanner.title, exc_info=True)
        failed = f"{type(exc).__name__}: {exc}"
    outcome = Outcome(scanner, tuple(found.values()), skipped, failed)
    progress.finished(outcome)
    return outcome


def _install_hint(scanner: Scanner, error: ModuleNotFoundError) -> str:
    if scanner.kind in EXTRAS:
        package, extra = EXTRAS[scanner.kind]
        return f"{package} is not installed, an optional extra: pip install 'lamplighter[{extra}]'"
    return f"{scanner.package} is not installed (no module {error.name!r}): reinstall Lamplighter"


def host_port(host: str, port: int | None = None, standard: int | None = None) -> str:
    """`host` or `host:port` for a URL: the port only when it is not the protocol's standard one."""
    shown = f"[{host}]" if ":" in host else host
    return shown if port in (None, standard) else f"{shown}:{port}"


# ---- LIFX ----------------------------------------------------------------------------------


async def scan_lifx(session: Session, report: Report) -> None:
    from lifx import LifxError, Light, discover

    target = session.target
    devices = discover(timeout=session.timeout, broadcast_address=target.address_or(ANY_BROADCAST),
                       port=target.port("lifx"), device_timeout=ASK_TIMEOUT)
    async with contextlib.aclosing(devices):
        async for device in devices:
            if not isinstance(device, Light):  # a LIFX Switch: relays, no light to show a colour
                await device.close()
                continue
            try:
                label = await device.get_label()
            except LifxError:
                label = ""
            finally:
                await device.close()
            url = f"lifx://{host_port(device.ip, device.port, DEFAULT_PORTS['lifx'])}?serial={device.serial}"
            report(Found("lifx", url, label, device.model or "", f"serial {device.serial}"))


# ---- WiZ -----------------------------------------------------------------------------------


async def scan_wiz(session: Session, report: Report) -> None:
    from pywizlight.discovery import find_wizlights

    bulbs = await find_wizlights(wait_time=session.timeout, broadcast_address=session.target.address_or(ANY_BROADCAST))
    modules = await asyncio.gather(*(_wiz_module(bulb.ip_address) for bulb in bulbs))
    for bulb, module in zip(bulbs, modules, strict=True):
        report(Found("wiz", f"wiz://{host_port(bulb.ip_address)}", "", module, f"MAC {bulb.mac_address}"))


async def _wiz_module(ip: str) -> str:
    """The bulb's module name (its model, e.g. ESP01_SHRGB_03), or "" if it does not say in time."""
    from pywizlight import wizlight
    from pywizlight.exceptions import WizLightError

    bulb = wizlight(ip)
    try:
        async with asyncio.timeout(ASK_TIMEOUT):
            config = await bulb.getBulbConfig()
        return str(config.get("result", {}).get("moduleName", ""))
    except (WizLightError, TimeoutError):
        return ""
    finally:
        await bulb.async_close()


# ---- Yeelight ------------------------------------------------------------------------------


async def scan_yeelight(session: Session, report: Report) -> None:
    loop = asyncio.get_running_loop()
    with _yeelight_search(session.target.address, session.timeout) as sock:
        sock.setblocking(False)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(session.timeout):
                while True:
                    answer, _ = await loop.sock_recvfrom(sock, 65507)
                    if found := _yeelight_found(answer):
                        report(found)


def _yeelight_search(address: str | None, timeout: float) -> socket.socket:
    """The socket that sent the M-SEARCH: to one bulb's address, else to Yeelight's multicast group."""
    from yeelight.ssdp_discover import send_discovery_packet

    unicast = address is not None and not is_broadcast(address)
    sock: socket.socket = send_discovery_packet(timeout, ip_address=address if unicast else SSDP_GROUP)
    return sock


def _yeelight_found(answer: bytes) -> Found | None:
    """A bulb from its answer to the M-SEARCH (an HTTP-like header block), None if it is not one."""
    from yeelight.ssdp_discover import parse_capabilities

    try:
        capabilities: dict[str, str] = parse_capabilities(answer)
    except (ValueError, UnicodeDecodeError):
        return None
    location = urlsplit(capabilities.get("Location", ""))
    if location.scheme != "yeelight" or not location.hostname:
        return None
    url = f"yeelight://{host_port(location.hostname, location.port, YEELIGHT_PORT)}"
    return Found("yeelight", url, capabilities.get("name", ""), capabilities.get("model", ""),
                 f"id {capabilities.get('id', '?')}")


# ---- Kasa ----------------------------------------------------------------------------------


async def scan_kasa(session: Session, report: Report) -> None:
    from kasa import Discover

    target = session.target
    port = target.port("kasa")

    async def on_discovered(device: KasaDevice) -> None:
        report(_kasa_found(device, port))

    devices = await Discover.discover(target=target.address_or(ANY_BROADCAST), on_discovered=on_discovered,
                                      discovery_timeout=max(1, math.ceil(session.timeout)),
                                      port=target.ports.get("kasa"), timeout=math.ceil(ASK_TIMEOUT))
    for device in devices.values():
        await device.disconnect()


def _kasa_found(device: KasaDevice, port: int) -> Found:
    from kasa import DeviceEncryptionType

    name, model, detail = device.alias or "", device.model, f"MAC {device.mac}"
    if device.config.connection_type.encryption_type is DeviceEncryptionType.Xor:
        return Found("kasa", f"kasa://{host_port(device.host, port, DEFAULT_PORTS['kasa'])}", name, model, detail)
    return Found("kasa", f"kasa://USER:PASSWORD@{host_port(device.host)}", name, model, detail,
                 todo="USER:PASSWORD, your TP-Link account (an @ in it written %40)")


# ---- Govee ---------------------------------------------------------------------------------


async def scan_govee(session: Session, report: Report) -> None:
    from govee_local_api import GoveeController, GoveeDevice

    target = session.target
    moved = "&".join(f"{option}={target.port(name)}" for option, name in GOVEE_PORT_OPTIONS if name in target.ports)
    query = f"?{moved}" if moved else ""

    def on_found(device: GoveeDevice, is_new: bool) -> bool:
        report(Found("govee", f"govee://{host_port(device.ip)}{query}", "", device.sku, f"device {device.fingerprint}"))
        return True

    controller = GoveeController(broadcast_address=target.address_or(SSDP_GROUP),
                                 broadcast_port=target.port("govee"), listening_port=target.port("govee-reply"),
                                 device_command_port=target.port("govee-command"),
                                 discovery_enabled=True, discovery_interval=1, update_enabled=False,
                                 discovered_callback=on_found)
    await controller.start()
    try:
        await asyncio.sleep(session.timeout)  # the scan is repeated every second meanwhile
    finally:
        await controller.cleanup().wait()


# ---- Hue and WLED, by mDNS -------------------------------------------------------------------


async def scan_hue(session: Session, report: Report) -> None:
    def bridge(info: AsyncServiceInfo, address: str) -> Found:
        url = f"hue://APPKEY@{host_port(address, info.port, HUE_PORT)}/lights/ID"
        return Found("hue", url, _instance(info, HUE_SERVICE), _txt(info, "modelid"),
                     f"bridge {_txt(info, 'bridgeid')}", todo="APPKEY and the light's number (ID): see how above")

    await _browse(session, HUE_SERVICE, bridge, report)


async def scan_wled(session: Session, report: Report) -> None:
    def strip(info: AsyncServiceInfo, address: str) -> Found:
        url = f"wled://{host_port(address, info.port, WLED_PORT)}"
        return Found("wled", url, _instance(info, WLED_SERVICE), "WLED", f"MAC {_txt(info, 'mac')}")

    await _browse(session, WLED_SERVICE, strip, report)


async def _browse(session: Session, service: str, found: Callable[[AsyncServiceInfo, str], Found],
                  report: Report) -> None:
    """Browse `service` for the session's timeout, resolving each instance to its address as it appears."""
    from zeroconf import ServiceStateChange, Zeroconf
    from zeroconf.asyncio import AsyncServiceBrowser

    names: asyncio.Queue[str] = asyncio.Queue()

    def on_change(zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange) -> None:
        if state_change is ServiceStateChange.Added:
            names.put_nowait(name)

    zeroconf = session.zeroconf()
    browser = AsyncServiceBrowser(zeroconf.zeroconf, [service], handlers=[on_change])
    try:
        async with asyncio.TaskGroup() as resolving:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(session.timeout):
                    while True:
                        name = await names.get()
                        resolving.create_task(_resolve(zeroconf, service, name, found, report))
    finally:
        await browser.async_cancel()


async def _resolve(zeroconf: AsyncZeroconf, service: str, name: str,
                   found: Callable[[AsyncServiceInfo, str], Found], report: Report) -> None:
    from zeroconf import IPVersion
    from zeroconf.asyncio import AsyncServiceInfo

    info = AsyncServiceInfo(service, name)
    if await info.async_request(zeroconf.zeroconf, ASK_TIMEOUT * 1000):
        addresses = info.parsed_addresses(IPVersion.V4Only)
        if addresses:
            report(found(info, addresses[0]))


def _interfaces(target: Target) -> list[str] | InterfaceChoice:
    """Every interface, or only the one that reaches the target address."""
    from zeroconf import InterfaceChoice

    return InterfaceChoice.All if target.address is None else [local_address_towards(target.address)]


def local_address_towards(address: str) -> str:
    """This machine's address on the interface that reaches `address`."""
    with _probe(address) as (probe, destination):
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        probe.connect(destination)
        return str(probe.getsockname()[0])


def is_broadcast(address: str) -> bool:
    """Whether `address` is a broadcast address here (which a socket may reach only with SO_BROADCAST)."""
    with _probe(address) as (probe, destination):
        try:
            probe.connect(destination)
        except PermissionError:
            return True
        return False


@contextlib.contextmanager
def _probe(address: str) -> Iterator[tuple[socket.socket, Any]]:
    """A UDP socket to ask the kernel how it would reach `address` (connecting it sends nothing)."""
    family, kind, _, _, destination = socket.getaddrinfo(address, 9, type=socket.SOCK_DGRAM)[0]
    with socket.socket(family, kind) as probe:
        yield probe, destination


def _instance(info: AsyncServiceInfo, service: str) -> str:
    """The instance part of a service name: "Kitchen" of "Kitchen._wled._tcp.local."."""
    return info.name.removesuffix(f".{service}")


def _txt(info: AsyncServiceInfo, key: str) -> str:
    value = info.properties.get(key.encode())
    return value.decode(errors="replace") if value else ""


SCANNERS = (
    Scanner("lifx", "LIFX", "lifx-async", scan_lifx),
    Scanner("wiz", "WiZ", "pywizlight", scan_wiz),
    Scanner("yeelight", "Yeelight", "yeelight", scan_yeelight),
    Scanner("kasa", "Kasa", "python-kasa", scan_kasa),
    Scanner("govee", "Govee", "govee-local-api", scan_govee),
    Scanner("hue", "Hue", "zeroconf", scan_hue),
    Scanner("wled", "WLED", "zeroconf", scan_wled),
)
