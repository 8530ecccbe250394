"""Colour arithmetic the device drivers share: `#rrggbb` to and from HSV and CIE xy, percent scales.

A LampState says a colour (`#rrggbb`) and a brightness (0-100) separately. Devices that
take hue, saturation and brightness (LIFX) or chromaticity and brightness (Hue) get the
colour's own value folded into the brightness: `#800000` at 100 % is red at half
brightness. Reading back gives the colour at full value and the brightness apart.
"""

from __future__ import annotations

import colorsys

RGB = tuple[int, int, int]

WHITE_POINT = (0.3127, 0.3290)  # D65, what Hue reports for white
# Wide-gamut RGB D65 conversion matrices as published by Philips for Hue.
_TO_XYZ = ((0.664511, 0.154324, 0.162028), (0.283881, 0.668433, 0.047685), (0.000088, 0.072310, 0.986039))
_FROM_XYZ = ((1.656492, -0.354851, -0.255038), (-0.707196, 1.655397, 0.036152), (0.051713, -0.121364, 1.011530))


def to_rgb(color: str) -> RGB:
    """`#ff8000` -> (255, 128, 0)."""
    value = int(color.lstrip("#"), 16)
    return (value >> 16) & 0xFF, (value >> 8) & 0xFF, value & 0xFF


def to_hex(rgb: RGB) -> str:
    """(255, 128, 0) -> `#ff8000`."""
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def to_hsv(color: str) -> tuple[float, float, float]:
    """Hue in degrees (0-360), saturation and value (0-1)."""
    hue, saturation, value = colorsys.rgb_to_hsv(*(c / 255 for c in to_rgb(color)))
    return hue * 360, saturation, value


def from_hsv(hue: float, saturation: float) -> str:
    """The colour of a hue (degrees) and saturation at full value."""
    return _hex_of_unit(colorsys.hsv_to_rgb(hue / 360 % 1.0, saturation, 1.0))


def to_xy(color: str) -> tuple[float, float]:
    """CIE 1931 chromaticity of a colour, the way Hue wants it (white point for black)."""
    linear = [_linearize(c / 255) for c in to_rgb(color)]
    x, y, z = (sum(m * c for m, c in zip(row, linear, strict=True)) for row in _TO_XYZ)
    total = x + y + z
    return (round(x / total, 4), round(y / total, 4)) if total else WHITE_POINT


def from_xy(x: float, y: float) -> str:
    """The colour at full value of a CIE 1931 chromaticity."""
    if y <= 0:
        return "#ffffff"
    xyz = (x / y, 1.0, (1.0 - x - y) / y)
    linear = [max(0.0, sum(m * c for m, c in zip(row, xyz, strict=True))) for row in _FROM_XYZ]
    top = max(linear) or 1.0
    return _hex_of_unit(tuple(_delinearize(c / top) for c in linear))


def value_of(color: str) -> float:
    """How bright the colour itself is (0-1): 1.0 for `#ff0000`, 0.5 for `#800000`."""
    return max(to_rgb(color)) / 255


def scale(percent: float, full: float) -> float:
    """A 0-100 percentage on a device's 0-`full` scale."""
    return percent * full / 100


def percent(value: float, full: float) -> int:
    """A device's 0-`full` level as a whole 0-100 percentage."""
    return round(value * 100 / full)


def _hex_of_unit(rgb: tuple[float, ...]) -> str:
    red, green, blue = (round(min(max(c, 0.0), 1.0) * 255) for c in rgb)
    return to_hex((red, green, blue))


def _linearize(c: float) -> float:
    return ((c + 0.055) / 1.055) ** 2.4 if c > 0.04045 else c / 12.92


def _delinearize(c: float) -> float:
    return 1.055 * c ** (1 / 2.4) - 0.055 if c > 0.0031308 else 12.92 * c
