"""Lamp URLs: parse and print are exact inverses, printing hides secrets, bad URLs say why."""

import pytest

from lamplighter.drivers.base import LampUrl, redact
from lamplighter.drivers.registry import build_driver
from lamplighter.drivers.virtual import VirtualDriver
from lamplighter.errors import LampUrlError
from lamplighter.model import LAMP_OFF, LampState


@pytest.mark.parametrize("url", [
    "virtual://desk",
    "virtual://shelf?on=true&color=warmwhite&brightness=40",
    "console://log",
    "console://",
    "hue://appkey@10.0.0.2/lights/3",
    "wled://10.0.0.31:8080",
    "hass://user:pa55@ha.local:8123/light.desk?transition=0",
    "ifttt://KEY@Office_Lamp",
    "wled://[fe80::1]:8080",
])
def test_print_of_parse_is_the_same_url(url: str) -> None:
    assert LampUrl.parse(url).text(privacy=False) == url


@pytest.mark.parametrize(("url", "shown"), [
    ("hue://appkey@10.0.0.2/lights/3", "hue://****@10.0.0.2/lights/3"),
    ("hass://user:pa55@ha.local:8123/light.desk", "hass://****:****@ha.local:8123/light.desk"),
    ("webhook://example.org/hook?token=abc&x=1", "webhook://example.org/hook?token=****&x=1"),
    ("virtual://desk", "virtual://desk"),
])
def test_printing_with_privacy_hides_secrets(url: str, shown: str) -> None:
    assert LampUrl.parse(url).text(privacy=True) == shown
    assert redact(url) == shown


def test_unparseable_url_is_redacted_in_the_message() -> None:
    with pytest.raises(LampUrlError) as caught:
        build_driver("hue://secretkey@bridge:99999/lights/1")
    assert "secretkey" not in str(caught.value) and "port" in str(caught.value)


@pytest.mark.parametrize(("url", "needle"), [
    ("desk", "not a lamp URL"),
    ("bulb://x", "no driver for bulb://"),
    ("virtual://", "needs a name"),
    ("virtual://desk?colour=red", "unknown option 'colour'"),
    ("virtual://desk?color=rde", "unknown colour"),
    ("virtual://desk?brightness=150", "0-100"),
])
def test_bad_lamp_urls_name_the_problem(url: str, needle: str) -> None:
    with pytest.raises(LampUrlError, match=needle):
        build_driver(url)


async def test_virtual_lamp_starts_in_the_state_its_url_gives() -> None:
    assert await build_driver("virtual://desk").read_state() == LAMP_OFF
    shelf = build_driver("virtual://shelf?on=true&color=warmwhite&brightness=40")
    assert isinstance(shelf, VirtualDriver)
    assert await shelf.read_state() == LampState(on=True, color="#ffd8a8", brightness=40)
