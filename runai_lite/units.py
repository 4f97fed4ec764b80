"""Quantities researchers type, read as Run:ai reads them.

`G`/`GB` are decimal (10^9 bytes), `Gi`/`GiB` binary (2^30 bytes); a bare number is bytes.
"""

from __future__ import annotations

import math
import re

from .errors import UserError

MiB = 1024**2
GiB = 1024**3

_DECIMAL = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}

_SIZE = re.compile(r"^(?P<num>\d+(?:\.\d+)?|\.\d+)\s*(?P<unit>[KMGT]i?)?(?P<b>[Bb])?$")

ACCEPTED_SIZES = "a size such as 4G, 10GB, 500M, 500MB, 10Gi, 10GiB, 512Mi or a plain number of bytes"

# Beyond this no GPU exists; also keeps int(float) conversions exact and bounded.
_MAX_BYTES = 2**60


def parse_size(text: str) -> int:
    """Parse a memory size into bytes. Raises `UserError` naming the accepted forms."""
    raw = text
    text = (text or "").strip()
    match = _SIZE.match(text)
    if not match:
        raise UserError(f"invalid size {raw!r}", f"expected {ACCEPTED_SIZES}")
    unit = match["unit"] or ""
    if match["b"] and unit == "" and match["b"] == "b":
        raise UserError(f"invalid size {raw!r}: 'b' means bits", f"expected {ACCEPTED_SIZES}")
    multiplier = _BINARY.get(unit) or _DECIMAL.get(unit)
    if multiplier is None:  # pragma: no cover - the regex admits only known units
        raise UserError(f"invalid size {raw!r}", f"expected {ACCEPTED_SIZES}")
    number = float(match["num"])
    if not math.isfinite(number) or number * multiplier > _MAX_BYTES:
        raise UserError(f"size {raw!r} is too large", f"expected {ACCEPTED_SIZES}")
    value = round(number * multiplier)
    if value <= 0:
        raise UserError(f"size {raw!r} must be greater than zero", f"expected {ACCEPTED_SIZES}")
    return value


def bytes_to_mib(value: int) -> int:
    """Whole MiB, rounded up, so a limit derived from a request never undercuts it."""
    return -(-value // MiB)


def format_bytes(value: int) -> str:
    """Human form for display: decimal units as researchers typed them (`10GB`, `500MB`)."""
    if value < 0:
        raise ValueError("negative size")
    for unit, size in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if value >= size:
            number = value / size
            return f"{number:.3g}{unit}" if number < 100 else f"{number:.0f}{unit}"
    return f"{value}B"


def format_size_as_typed(value: int) -> str:
    """A size a researcher typed, in the units they most likely typed it in: binary (`500Mi`,
    `10Gi`) when it is whole MiB and not whole decimal megabytes, else decimal (`10GB`)."""
    if value % MiB == 0 and value % 10**6 != 0:
        return f"{value // GiB}Gi" if value % GiB == 0 else f"{value // MiB}Mi"
    return format_bytes(value)


def format_mib(mib: int) -> str:
    """Display MiB the way nvidia-smi does for small values, GiB for large ones."""
    if mib >= 1024:
        gib = mib / 1024
        return f"{gib:.2f}".rstrip("0").rstrip(".") + "GiB"
    return f"{mib}MiB"
