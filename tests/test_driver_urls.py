"""Device lamp URLs: parse and print round-trip, printing hides keys and tokens, bad URLs say what is wrong."""

from __future__ import annotations

import pytest

from lamplighter.drivers.hue import HueDriver, HueGroupDriver
from lamplighter.drivers.registry import build_driver
from lamplighter.errors import LampUrlError

URLS = [
    # (URL, as printed with privacy, driver class name)
    ("lifx://192.168.1.40?serial=d073d5123456", "lifx://192.168.1.40?serial=d073d5123456", "LifxDriver"),
    ("lifx://192.168.1.40:56701?serial=d073d5123456&timeout=5", "lifx://192.168.1.40:56701?serial=d073d5123456&timeout=5",
     "LifxDriver"),
    ("lifx://192.168.1.40", "lifx://192.168.1.40", "LifxDriver"),
    ("wled://10.0.0.31", "wled://10.0.0.31", "WledDriver"),
    ("wled://strip.local:8080?timeout=2.5", "wled://strip.local:8080?timeout=2.5", "WledDriver"),
    ("hue://1a2B3c4D5e6F7g8H9i0J@192.168.1.2/lights/3", "hue://****@192.168.1.2/lights/3", "HueDriver"),
    ("hue://appkey@192.168.1.2:8443/lights/3b2f4c1e-8d9a-4b5c-9e7f-0a1b2c3d4e5f?timeout=5",
     "hue://****@192.168.1.2:8443/lights/3b2f4c1e-8d9a-4b5c-9e7f-0a1b2c3d4e5f?timeout=5", "HueDriver"),
    ("hue://appkey@bridge.local/groups/1", "hue://****@bridge.local/groups/1", "HueGroupDriver"),
    ("webhook://nodered.local:1880/lamp?token=s3cret", "webhook://nodered.local:1880/lamp?token=****", "WebhookDriver"),
    ("webhook://example.org", "webhook://example.org", "WebhookDriver"),
    ("webhook+https://user:pa55@example.org/hooks/lamp?timeout=3", "webhook+https://****:****@example.org/hooks/lamp?timeout=3",
     "SecureWebhookDriver"),
    ("ifttt://dQw4w9WgXcQ-key@office_lamp", "ifttt://****@office_lamp", "IftttDriver"),
    ("ifttt://KEY@lamplighter?base_url=http://127.0.0.1:8080&timeout=20",
     "ifttt://****@lamplighter?base_url=http://127.0.0.1:8080&timeout=20", "IftttDriver"),
]


@pytest.mark.parametrize(("url", "shown", "kind"), URLS)
def test_every_device_url_prints_back_exactly_and_hides_its_secrets(url: str, shown: str, kind: str) -> None:
    driver = build_driver(url)
    assert type(driver).__name__ == kind
    assert driver.url(privacy=False) == url
    assert driver.url() == shown
    assert build_driver(driver.url(privacy=False)).url(privacy=False) == url


def test_a_hue_group_is_paced_as_hue_asks_one_command_a_second() -> None:
    assert (HueDriver.min_interval, HueGroupDriver.min_interval) == (0.1, 1.0)


@pytest.mark.parametrize(("url", "needle"), [
    ("lifx://", "needs the bulb's IP address"),
    ("lifx://bulb.local?serial=d073d5123456", "needs the bulb's IP address and port"),
    ("lifx://192.168.1.40?serial=xyz", "serial must be 12 hex digits"),
    ("lifx://192.168.1.40?serail=d073d5123456", "unknown option 'serail' (options: serial, timeout)"),
    ("lifx://192.168.1.40?timeout=soon", "timeout must be a number of seconds"),
    ("wled://", "needs the strip's address"),
    ("wled://10.0.0.31/json", "takes only an address"),
    ("wled://10.0.0.31?segment=1", "unknown option 'segment'"),
    ("wled://10.0.0.31?timeout=0", "timeout must be a number of seconds from 0 to 120"),
    ("hue://192.168.1.2/lights/3", "needs the application key"),
    ("hue://key@192.168.1.2/light/3", "path must be /lights/ID or /groups/ID"),
    ("hue://key@192.168.1.2/lights/", "path must be /lights/ID or /groups/ID"),
    ("hue://key@192.168.1.2/lights/3?transition=4", "unknown option 'transition'"),
    ("webhook://", "needs a host"),
    ("webhook://example.org/hook?tokne=x", "unknown option 'tokne' (options: timeout, token)"),
    ("ifttt://office_lamp", "needs the Webhooks key"),
    ("ifttt://KEY@office_lamp/extra", "must be ifttt://KEY@EVENT"),
    ("ifttt://KEY@office_lamp?base_url=ftp://relay", "base_url must be an http:// or https:// address"),
])
def test_bad_device_urls_name_the_problem(url: str, needle: str) -> None:
    with pytest.raises(LampUrlError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        build_driver(url)


@pytest.mark.parametrize("url", ["hue://s3cretkey@192.168.1.2/lamps/3", "ifttt://s3cretkey@bad/path",
                                 "webhook://example.org/hook?token=s3cretkey&bad=1"])
def test_a_bad_url_is_reported_without_its_secret(url: str) -> None:
    with pytest.raises(LampUrlError) as caught:
        build_driver(url)
    assert "s3cretkey" not in str(caught.value) and "****" in str(caught.value)
