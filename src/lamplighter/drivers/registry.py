"""Which driver serves which URL scheme: the built-ins plus any installed plug-ins.

A third-party package adds a driver with an entry point in the group
`lamplighter.drivers`, named after its scheme and pointing at a Driver subclass.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from lamplighter.drivers.base import Driver, LampUrl
from lamplighter.drivers.console import ConsoleDriver
from lamplighter.drivers.virtual import VirtualDriver
from lamplighter.errors import LampUrlError
from lamplighter.model import load_class

ENTRY_POINT_GROUP = "lamplighter.drivers"

# scheme -> Driver class, or "module:Class" imported only when a lamp uses that scheme,
# so start-up stays fast and a missing device library affects only its lamps.
BUILT_IN: dict[str, str | type[Driver]] = {
    VirtualDriver.scheme: VirtualDriver,
    ConsoleDriver.scheme: ConsoleDriver,
    "lifx": "lamplighter.drivers.lifx:LifxDriver",
    "wled": "lamplighter.drivers.wled:WledDriver",
    "hue": "lamplighter.drivers.hue:HueDriver",
    "webhook": "lamplighter.drivers.webhook:WebhookDriver",
    "webhook+https": "lamplighter.drivers.webhook:SecureWebhookDriver",
    "ifttt": "lamplighter.drivers.ifttt:IftttDriver",
    "yeelight": "lamplighter.drivers.yeelight:YeelightDriver",
    "govee": "lamplighter.drivers.govee:GoveeDriver",
    "wiz": "lamplighter.drivers.wiz:WizDriver",
    "kasa": "lamplighter.drivers.kasa:KasaDriver",
    "z2m": "lamplighter.drivers.zigbee2mqtt:Zigbee2MqttDriver",
    "tasmota": "lamplighter.drivers.tasmota:TasmotaDriver",
    "tasmota+http": "lamplighter.drivers.tasmota:TasmotaHttpDriver",
    "hass": "lamplighter.drivers.hass:HassDriver",
    "hass+https": "lamplighter.drivers.hass:HassDriver",
    "blink1": "lamplighter.drivers.blink1:Blink1Driver",
    "sound": "lamplighter.drivers.sound:SoundDriver",
}


@cache
def driver_classes() -> dict[str, str | type[Driver]]:
    plugins = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return {**plugins, **BUILT_IN}


# Device libraries that are optional extras (python-kasa is GPL): scheme -> (package, extra).
EXTRAS = {"kasa": ("python-kasa", "kasa"), "blink1": ("blink1 and hidapi", "blink1")}


def is_driver_scheme(scheme: str) -> bool:
    """Whether a driver serves this scheme. A built-in one is known without scanning every installed
    package's entry points (tens of ms at start-up); a plug-in cannot replace it anyway."""
    return scheme in BUILT_IN or scheme in driver_classes()


def load_driver_class(scheme: str) -> type[Driver]:
    found = BUILT_IN.get(scheme) or driver_classes()[scheme]
    return found if isinstance(found, type) else load_class(found, Driver)  # type: ignore[type-abstract]


def _missing_library(url: LampUrl, error: ModuleNotFoundError) -> LampUrlError:
    """A driver whose device library is not installed: say which, and how to install it."""
    if url.scheme in EXTRAS:
        package, extra = EXTRAS[url.scheme]
        return LampUrlError(url.text(), f"{url.scheme}:// needs {package}, an optional extra: "
                                        f"pip install 'lamplighter[{extra}]'")
    return LampUrlError(url.text(), f"{url.scheme}:// needs the Python package {error.name!r}: reinstall Lamplighter")


def build_driver(url: str) -> Driver:
    """The driver for a lamp URL; LampUrlError names the URL (redacted) and the problem."""
    parsed = LampUrl.parse(url)
    if not is_driver_scheme(parsed.scheme):
        known = ", ".join(f"{s}://" for s in sorted(driver_classes()))
        raise LampUrlError(parsed.text(), f"no driver for {parsed.scheme}:// (installed: {known})")
    try:
        driver_class = load_driver_class(parsed.scheme)
    except ModuleNotFoundError as exc:
        raise _missing_library(parsed, exc) from None
    return driver_class.from_url(parsed)
