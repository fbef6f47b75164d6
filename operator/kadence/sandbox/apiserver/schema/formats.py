"""The string `format`s that kube-apiserver checks in custom resources (kube-openapi strfmt).

Numeric formats (int32, int64, float, double) are not range-checked by the apiserver, and
formats it does not know are ignored; both are therefore accepted here too.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from typing import Callable
from urllib.parse import urlparse

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME_PART = re.compile(r"^([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))$")
_UUID = {
    "uuid": re.compile(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$", re.I),
    "uuid3": re.compile(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?3[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}$", re.I),
    "uuid4": re.compile(
        r"^[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$", re.I
    ),
    "uuid5": re.compile(
        r"^[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$", re.I
    ),
}
_HOSTNAME = re.compile(
    r"^([a-zA-Z0-9]((-?[a-zA-Z0-9]{0,62})?)|([a-zA-Z0-9](([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.)){1,}"
    r"([a-zA-Z]){2,63})$"
)
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")
_MAC = re.compile(
    r"^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$|^([0-9a-fA-F]{2}[:-]){7}[0-9a-fA-F]{2}$"
    r"|^([0-9a-fA-F]{2}[:-]){19}[0-9a-fA-F]{2}$|^([0-9a-fA-F]{4}\.){2}[0-9a-fA-F]{4}$"
)
_HEXCOLOR = re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_RGBCOLOR = re.compile(
    r"^rgb\(\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*,\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])"
    r"\s*,\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*\)$"
)
_BSON_OBJECT_ID = re.compile(r"^[0-9a-fA-F]{24}$")
_SSN = re.compile(r"^\d{3}[- ]?\d{2}[- ]?\d{4}$")

# Go's time.ParseDuration: a signed sequence of decimal numbers with units.
_GO_DURATION = re.compile(r"^[-+]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+$")
# strfmt's lenient form: "3 days", "1 week 2 hours"...
_HUMAN_DURATION_PART = re.compile(r"(\d+)\s*([A-Za-zµ]+)")
_HUMAN_UNITS = {
    "ns", "nanosecond", "nanoseconds", "us", "µs", "microsecond", "microseconds", "ms",
    "millisecond", "milliseconds", "s", "sec", "second", "seconds", "m", "min", "minute",
    "minutes", "h", "hr", "hour", "hours", "d", "day", "days", "w", "wk", "week", "weeks",
}


def is_date(text: str) -> bool:
    if not _DATE.match(text):
        return False
    year, month, day = (int(part) for part in text.split("-"))
    if not 1 <= month <= 12 or day < 1:
        return False
    days_in_month = [31, 29 if _leap(year) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    return day <= days_in_month[month - 1]


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def is_date_time(text: str) -> bool:
    if len(text) < 4:
        return False
    parts = text.lower().split("t")
    if len(parts) < 2 or not is_date(parts[0]):
        return False
    match = _TIME_PART.match(parts[1])
    if not match:
        return False
    return match[1] <= "23" and match[2] <= "59" and match[3] <= "59"


def is_duration(text: str) -> bool:
    if text == "0" or _GO_DURATION.match(text):
        return True
    return any(
        unit.lower() in _HUMAN_UNITS for _, unit in _HUMAN_DURATION_PART.findall(text)
    )


def is_byte(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def is_cidr(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return "/" in text


def is_uri(text: str) -> bool:
    """Go's url.ParseRequestURI: an absolute URI or an absolute path."""
    if not text or any(ch in text for ch in " \t\n"):
        return False
    if text.startswith("/"):
        return True
    parsed = urlparse(text)
    return bool(parsed.scheme) and re.match(r"^[A-Za-z][A-Za-z0-9+.-]*$", parsed.scheme) is not None


def is_hostname(text: str) -> bool:
    return len(text) <= 255 and _HOSTNAME.match(text) is not None


def _regex(pattern: re.Pattern[str]) -> Callable[[str], bool]:
    return lambda text: pattern.match(text) is not None


CHECKERS: dict[str, Callable[[str], bool]] = {
    "date": is_date,
    "date-time": is_date_time,
    "datetime": is_date_time,
    "duration": is_duration,
    "byte": is_byte,
    "ipv4": is_ipv4,
    "ipv6": is_ipv6,
    "cidr": is_cidr,
    "uri": is_uri,
    "hostname": is_hostname,
    "email": _regex(_EMAIL),
    "mac": _regex(_MAC),
    "hexcolor": _regex(_HEXCOLOR),
    "rgbcolor": _regex(_RGBCOLOR),
    "bsonobjectid": _regex(_BSON_OBJECT_ID),
    "ssn": _regex(_SSN),
    **{name: _regex(pattern) for name, pattern in _UUID.items()},
    "password": lambda text: True,
}


def check(format_name: str, text: str) -> bool:
    """Whether `text` is valid for `format_name`; unknown formats accept everything."""
    checker = CHECKERS.get(format_name)
    return checker is None or checker(text)
