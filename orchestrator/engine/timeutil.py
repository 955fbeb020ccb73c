"""Time helpers: aware UTC datetimes, Kestra's ISO-8601 text and durations."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

_DURATION = re.compile(
    r"^(?P<sign>[-+]?)P(?:(?P<days>[-+]?\d+(?:[.,]\d+)?)D)?"
    r"(?:T(?:(?P<hours>[-+]?\d+(?:[.,]\d+)?)H)?(?:(?P<minutes>[-+]?\d+(?:[.,]\d+)?)M)?"
    r"(?:(?P<seconds>[-+]?\d+(?:[.,]\d+)?)S)?)?$",
    re.IGNORECASE,
)


def now() -> datetime:
    """The current instant, at millisecond precision (what Kestra's database backends keep)."""
    moment = datetime.now(timezone.utc)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def iso(moment: datetime | None) -> str | None:
    """An instant as Kestra prints it from its database: ISO-8601 UTC, milliseconds, ``Z``."""
    if moment is None:
        return None
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def parse_duration(text: str) -> timedelta:
    """Parse an ISO-8601 duration (``PT30S``, ``PT1H30M``, ``P1D``); weeks/months/years are refused."""
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if not match or text.strip().upper() in ("P", "PT") or text.strip().upper().endswith("T"):
        raise ValueError(f"Text cannot be parsed to a Duration: {text}")
    parts = {k: float(v.replace(",", ".")) for k, v in match.groupdict().items() if v and k != "sign"}
    delta = timedelta(days=parts.get("days", 0), hours=parts.get("hours", 0),
                      minutes=parts.get("minutes", 0), seconds=parts.get("seconds", 0))
    return -delta if match.group("sign") == "-" else delta


def format_duration(delta: timedelta) -> str:
    """Java's Duration.toString(): PT1H2M3.5S, PT0S."""
    total = delta.total_seconds()
    if total == 0:
        return "PT0S"
    sign = "-" if total < 0 else ""
    total = abs(total)
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    out = "PT"
    if hours:
        out += f"{sign}{int(hours)}H"
    if minutes:
        out += f"{sign}{int(minutes)}M"
    if seconds:
        text = f"{seconds:.9f}".rstrip("0").rstrip(".")
        out += f"{sign}{text}S"
    return out


def instant_text(moment: datetime) -> str:
    """Java's ``Instant.toString()``: no fraction when zero, else 3, 6 or 9 digits (user values)."""
    moment = moment.astimezone(timezone.utc)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        fraction = f"{moment.microsecond:06d}"
        text += "." + (fraction[:3] if fraction.endswith("000") else fraction)
    return text + "Z"
