"""The one exception hierarchy of Lamplighter.

    LamplighterError
    ├── ConfigError          the configuration file or a value in it is wrong
    │   └── LampUrlError     a lamp URL does not parse for its driver
    ├── EventError           an event is malformed (bad level, missing title, ...)
    │   └── PayloadError     a body refused before parsing: too deep, too large, not JSON
    ├── AuthError            a request's token or signature is missing or wrong
    ├── StoreError           the journal could not be read or written
    └── DriverError          a device could not be reached or refused a command
        └── DeviceOffline    the device is unreachable right now

Every error carries a message meant for a person: it names the thing that is wrong.
"""


class LamplighterError(Exception):
    """Base class: catch this to catch everything Lamplighter raises on purpose."""


class ConfigError(LamplighterError):
    """A configuration problem. `problems` lists each as (path, message)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{path}: {msg}" if path else msg for path, msg in problems))


class LampUrlError(ConfigError):
    """A lamp URL that its driver cannot parse."""

    def __init__(self, url_shown: str, message: str) -> None:
        super().__init__([("", f"{url_shown}: {message}")])


class EventError(LamplighterError):
    """An event that cannot be accepted; `field` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class PayloadError(EventError):
    """A body refused before it was parsed; `too_large` is True when its size is what is wrong."""

    def __init__(self, message: str, *, too_large: bool = False) -> None:
        self.too_large = too_large
        super().__init__("body", message)


class LampBusy(LamplighterError):
    """A lamp test was asked of a lamp that is showing a real signal."""


class AuthError(LamplighterError):
    """A source refused a request's credentials; the message says which check failed."""


class StoreError(LamplighterError):
    """The durable store failed; the event was not accepted."""


class DriverError(LamplighterError):
    """A device command failed."""


class DeviceOffline(DriverError):
    """The device did not answer; the lamp is shown as offline."""
