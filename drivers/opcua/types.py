"""OPC UA scalar types as this project writes them: which Python values fit which
``VariantType``, shared by the driver (before it writes) and the simulated machine (before
it latches a recipe)."""

from __future__ import annotations

import math
import sys

from asyncua import ua

V = ua.VariantType

#: Whole-number variant types and their ranges.
INTEGERS: dict[ua.VariantType, tuple[int, int]] = {
    V.SByte: (-(2**7), 2**7 - 1),
    V.Byte: (0, 2**8 - 1),
    V.Int16: (-(2**15), 2**15 - 1),
    V.UInt16: (0, 2**16 - 1),
    V.Int32: (-(2**31), 2**31 - 1),
    V.UInt32: (0, 2**32 - 1),
    V.Int64: (-(2**63), 2**63 - 1),
    V.UInt64: (0, 2**64 - 1),
}
#: Floating-point variant types and their largest finite magnitude.
FLOATS: dict[ua.VariantType, float] = {
    V.Float: 3.4028234663852886e38,
    V.Double: sys.float_info.max,
}
#: Every scalar type a recipe variable may have.
SCALARS = frozenset({V.Boolean, V.String, *INTEGERS, *FLOATS})


def coerce(vtype: ua.VariantType, value: object) -> bool | int | float | str:
    """``value`` as the Python type asyncua encodes as ``vtype`` (range-checked).

    Raises:
        TypeError: a value of another kind (text for a number, a number for text or
            Boolean), or a type outside :data:`SCALARS`.
        ValueError: a number outside the type's range, or not whole for an integer type.
    """
    if vtype is V.Boolean:
        if not isinstance(value, bool):
            raise TypeError("expected true or false")
        return value
    if vtype is V.String:
        if not isinstance(value, str):
            raise TypeError("expected text")
        return value
    if vtype not in INTEGERS and vtype not in FLOATS:
        raise TypeError(f"{vtype.name} is not a scalar type this project writes")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("expected a number")
    if vtype in INTEGERS:
        low, high = INTEGERS[vtype]
        if isinstance(value, float) and not value.is_integer():
            raise ValueError("not a whole number")
        if not low <= value <= high:
            raise ValueError(f"outside {low}..{high}")
        return int(value)
    if abs(value) > FLOATS[vtype] or not math.isfinite(value):  # a huge int: no isfinite
        raise ValueError(f"not a finite number within +-{FLOATS[vtype]:g}")
    return float(value)


def fits(vtype: ua.VariantType, value: object) -> bool:
    """Whether ``value`` is already a valid value of ``vtype`` (no conversion: an int for
    an integer type, a float or int for a float type)."""
    if vtype in INTEGERS and isinstance(value, float):
        return False
    try:
        coerce(vtype, value)
    except (TypeError, ValueError):
        return False
    return True
